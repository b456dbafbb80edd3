"""Conversion time and peak memory of a full-size ViT-B/16 official-layout checkpoint: kerassl vs transformers.

A ViT-B/16 with random weights (DINO's `facebook/dino-vitb16` config, 224 px,
86 M parameters) is written with transformers' `save_pretrained` to a folder
outside the repository (never committed). Each side then loads it in a fresh
process, so every peak is its own:

- transformers: `ViTModel.from_pretrained(folder)` (torch, the reference);
- kerassl: `kerassl.zoo.convert.encoder_from_folder(folder)` (safetensors into
  NumPy, build, assign), and the same from `pytorch_model.bin` through the
  tensors-only reader.

Both sides also embed the same 4 images; the max abs difference of the CLS
features is the full-size parity figure.

    python benchmarks/convert_official.py --peer-python /work/peer-venv/bin/python

Results: benchmarks/results/convert-official/<date>.json and .md.
"""

import argparse
import datetime
import json
import pathlib
import resource
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
IMAGENET = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])


def peak_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def images():
    import numpy as np

    return np.random.default_rng(0).uniform(0, 1, (4, 224, 224, 3)).astype("float32")


def make(folder):
    """Peer side: the random checkpoint, as save_pretrained writes it, plus a .bin copy."""
    import torch
    import transformers
    from safetensors.torch import load_file

    torch.manual_seed(0)
    model = transformers.ViTModel(transformers.ViTConfig(image_size=224, patch_size=16)).eval()
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    (folder / "preprocessor_config.json").write_text(json.dumps(
        {"image_mean": IMAGENET[0], "image_std": IMAGENET[1], "crop_size": {"height": 224, "width": 224}}))
    binary = folder.parent / (folder.name + "-bin")
    binary.mkdir(exist_ok=True)
    for name in ("config.json", "preprocessor_config.json"):
        (binary / name).write_bytes((folder / name).read_bytes())
    torch.save(load_file(folder / "model.safetensors"), binary / "pytorch_model.bin")
    return {"parameters": sum(p.numel() for p in model.parameters()),
            "safetensors_bytes": (folder / "model.safetensors").stat().st_size}


def transformers_side(folder):
    import numpy as np
    import torch
    import transformers

    torch.set_num_threads(2)
    before = peak_mib()
    start = time.perf_counter()
    model = transformers.ViTModel.from_pretrained(folder).eval()
    seconds = time.perf_counter() - start
    loaded_peak = peak_mib()
    x = (images() - np.array(IMAGENET[0], "float32")) / np.array(IMAGENET[1], "float32")
    with torch.no_grad():
        cls = model(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).last_hidden_state[:, 0].numpy()
    np.save(folder.parent / "reference_cls.npy", cls)
    return {"load_s": seconds, "rss_after_imports_mib": before, "peak_after_load_mib": loaded_peak,
            "transformers": transformers.__version__, "torch": torch.__version__}


def kerassl_side(folder):
    import keras
    import numpy as np

    from kerassl.zoo import convert

    before = peak_mib()
    start = time.perf_counter()
    encoder = convert.encoder_from_folder(folder)
    seconds = time.perf_counter() - start
    loaded_peak = peak_mib()  # before the timing of an eager read below, which would raise the peak
    start = time.perf_counter()
    tensors = convert.read_checkpoint(folder)
    read_s = time.perf_counter() - start
    del tensors
    out = {"read_s": read_s, "convert_s": seconds, "rss_after_imports_mib": before,
           "peak_after_load_mib": loaded_peak, "backend": keras.config.backend(), "keras": keras.__version__,
           "parameters": int(encoder.count_params())}
    reference = folder.parent / "reference_cls.npy"
    if reference.is_file():
        features = np.asarray(encoder.predict(images(), verbose=0))
        out["max_abs_diff_vs_transformers"] = float(np.abs(features - np.load(reference)).max())
    return out


def run_side(python, side, folder, env=None):
    import os

    result = subprocess.run([python, __file__, "--side", side, "--folder", str(folder)], capture_output=True,
                            text=True, env={**os.environ, **(env or {})}, cwd=ROOT)
    if result.returncode:
        raise RuntimeError(f"{side} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peer-python", default="/work/peer-venv/bin/python")
    parser.add_argument("--folder", default="/tmp/kerassl-bench-vitb16/checkpoint")
    parser.add_argument("--side", choices=["make", "transformers", "kerassl"])
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "convert-official"))
    args = parser.parse_args()
    folder = pathlib.Path(args.folder)
    if args.side:
        side = {"make": make, "transformers": transformers_side, "kerassl": kerassl_side}[args.side]
        print(json.dumps(side(folder)))
        return
    import os

    results = {"date": datetime.date.today().isoformat(), "checkpoint": "ViT-B/16, 224 px, random weights",
               "load_average_before": os.getloadavg()}
    results["made"] = run_side(args.peer_python, "make", folder)
    results["transformers"] = run_side(args.peer_python, "transformers", folder)
    for backend in ("tensorflow", "jax"):
        results[f"kerassl_{backend}"] = run_side(sys.executable, "kerassl", folder, {"KERAS_BACKEND": backend})
    binary = folder.parent / (folder.name + "-bin")
    results["kerassl_tensorflow_bin"] = run_side(sys.executable, "kerassl", binary, {"KERAS_BACKEND": "tensorflow"})
    results["load_average_after"] = os.getloadavg()
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{results['date']}.json").write_text(json.dumps(results, indent=2) + "\n")
    rows = ["| side | load/convert s | peak RSS MiB | RSS after imports MiB | max abs diff |", "| --- | --- | --- | --- | --- |"]
    t = results["transformers"]
    rows.append(f"| transformers {t['transformers']} from_pretrained | {t['load_s']:.2f} | {t['peak_after_load_mib']:.0f} | "
                f"{t['rss_after_imports_mib']:.0f} | reference |")
    for key in ("kerassl_tensorflow", "kerassl_jax", "kerassl_tensorflow_bin"):
        k = results[key]
        rows.append(f"| {key} (read {k['read_s']:.2f} s) | {k['convert_s']:.2f} | {k['peak_after_load_mib']:.0f} | "
                    f"{k['rss_after_imports_mib']:.0f} | {k.get('max_abs_diff_vs_transformers', float('nan')):.2e} |")
    rows.append(f"\nLoad average (1 min) before/after: {results['load_average_before'][0]:.1f} / "
                f"{results['load_average_after'][0]:.1f} on {os.cpu_count()} cores (a shared machine: times are noisy).")
    (out / f"{results['date']}.md").write_text("\n".join(rows) + "\n")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
