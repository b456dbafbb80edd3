"""Benchmarks kerassl against lightly: SimCLR, MAE and DINO throughput and kNN quality.

Usage:
    python benchmarks/run.py --suite smoke            # seconds; what the test runs
    python benchmarks/run.py --suite cpu              # throughput rows + quality rows (hours)
    python benchmarks/run.py --suite cpu --only quality --rows mae,dino     # MAE and DINO quality
    python benchmarks/run.py --suite cpu --only throughput
    python benchmarks/run.py --suite cpu --only throughput --rows mae,dino   # the ViT methods only
    python benchmarks/run.py --suite gpu              # on a GPU machine: full CIFAR-10 (SimCLR
                                                      # 200 epochs, MAE and DINO 100 epochs)

Every configuration runs in its own process, one after another: the kerassl
side with this interpreter (`KERAS_BACKEND` set per row), the lightly side with
the peer virtual environment `benchmarks/.peer-venv` (PyTorch, torchvision and
lightly; created on first use, never a dependency of kerassl). Results go to
`benchmarks/results/<date>-<suite>.json` (rewritten after every row, so an
interrupted run keeps what it measured) and a Markdown table beside it.
See benchmarks/README.md for what each row measures.
"""

import argparse
import datetime
import json
import os
import pathlib
import platform
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
PEER_VENV = HERE / ".peer-venv"
PEER_PACKAGES = ("torch==2.14.1", "torchvision==0.29.1", "lightly")

# lightly's CIFAR-10 benchmark recipe (docs/source/getting_started/benchmarks/
# cifar10_benchmark.py): both sides train with exactly these settings.
RECIPE = {
    "encoder": "resnet18",
    "image_size": 32,
    "batch_size": 256,
    "projection_hidden_dim": 512,
    "projection_dim": 128,
    "temperature": 0.5,
    "learning_rate": 0.06,  # x batch_size / 256
    "momentum": 0.9,
    "weight_decay": 5e-4,
    "jitter_strength": 0.5,
    "knn_k": 200,
    "knn_temperature": 0.1,
    "seed": 0,
    "precision": "float32",
    "num_workers": 1,  # lightly's DataLoader workers: one beside 2 compute threads on 2 cores
    "method": "simclr",
}

# The MAE and DINO throughput rows: ViT-tiny at CIFAR size on both sides
# (kerassl.vit.vit_tiny(image_size=32, patch_size=4); torchvision's
# VisionTransformer with the same sizes on the lightly side).
VIT = {
    "encoder": "vit",
    "image_size": 32,
    "patch_size": 4,
    "hidden_dim": 192,
    "depth": 12,
    "num_heads": 3,
    "mlp_dim": 768,
    "batch_size": 256,
    "seed": 0,
    "precision": "float32",
    "num_workers": 1,
}

# Each ViT method's recipe: kerassl's defaults, which both sides are given explicitly
# (the kerassl side records any that differ from its class's defaults).
METHOD_RECIPES = {
    "mae": {
        "mask_ratio": 0.75,
        "decoder_dim": 128,
        "decoder_depth": 2,
        "decoder_num_heads": 4,
        "normalize_targets": True,
        "learning_rate": 1.5e-4,  # AdamW
        "weight_decay": 0.05,
    },
    "dino": {
        "head_hidden_dim": 2048,
        "head_bottleneck_dim": 256,
        "head_output_dim": 4096,
        "student_temperature": 0.1,
        "teacher_temperature": 0.04,
        "center_momentum": 0.9,
        "momentum_start": 0.996,
        "num_local_crops": 6,
        "local_crop_size": 12,  # kerassl.methods.dino.default_local_crop_size(32, 4)
        "global_crop_scale": [0.4, 1.0],
        "local_crop_scale": [0.05, 0.4],
        "jitter_strength": 0.5,
        "gradient_clip_norm": 3.0,
        "learning_rate": 5e-4,  # AdamW
        "weight_decay": 0.04,
    },
}
VIT_METHODS = tuple(METHOD_RECIPES)

SUITES = {
    "smoke": {
        "description": "tiny: pipeline check in seconds (small convnet, synthetic data)",
        "throughput": {"encoder": "small_convnet", "batch_size": 32, "warmup_steps": 1,
                       "timed_steps": 2},
        "quality": {"encoder": "small_convnet", "batch_size": 32, "data": "synthetic",
                    "train_size": 128, "test_size": 64, "epochs": 1, "knn_k": 10},
        # ViT rows: a 2-block ViT of width 32 at 16 px, one warm-up and one timed step.
        "vit": {"image_size": 16, "hidden_dim": 32, "depth": 2, "num_heads": 2, "mlp_dim": 64,
                "batch_size": 8, "warmup_steps": 1, "timed_steps": 1},
        "dino": {"head_hidden_dim": 64, "head_bottleneck_dim": 32, "head_output_dim": 128,
                 "local_crop_size": 8},  # default_local_crop_size(16, 4)
        # MAE and DINO quality rows: that ViT on 32 random images, one epoch (4 steps).
        "vit_quality": {"data": "synthetic", "train_size": 32, "test_size": 16, "epochs": 1,
                        "knn_k": 5},
        "peer": {},
        "peer_simclr": {"encoder": "resnet18", "batch_size": 16},  # lightly has no small convnet
        "full_grid": False,
    },
    "cpu": {
        "description": "this CPU: throughput rows, then SimCLR on 10,000 CIFAR-10 images for 5 "
                       "epochs, MAE and DINO on 5,000 for 2 (a pipeline check)",
        "throughput": {"warmup_steps": 2, "timed_steps": 5},
        "quality": {"data": "cifar10", "train_size": 10000, "test_size": 10000, "epochs": 5},
        "vit": {"timed_steps": 3},  # a DINO step of ViT-tiny takes tens of seconds here
        # MAE and DINO quality: a pipeline check, not a comparison. At this budget
        # neither side is expected to learn (measured on kerassl: MAE kNN 0.263 ->
        # 0.232 after 80 steps, DINO 0.239 -> 0.241 after 16 steps).
        "vit_quality": {"data": "cifar10", "train_size": 5000, "test_size": 10000, "epochs": 2},
        "peer": {},
        "full_grid": True,
    },
    "gpu": {
        "description": "one GPU: throughput rows, then SimCLR (200 epochs), MAE and DINO (100 "
                       "epochs each) on all 50,000 CIFAR-10 images",
        "throughput": {"warmup_steps": 5, "timed_steps": 20},
        "quality": {"data": "cifar10", "train_size": 50000, "test_size": 10000, "epochs": 200},
        "vit": {},
        # MAE and DINO quality: the comparison (the cpu suite's is a pipeline check).
        "vit_quality": {"data": "cifar10", "train_size": 50000, "test_size": 10000, "epochs": 100},
        "peer": {"num_workers": 8},
        "full_grid": True,
    },
}


def throughput_rows(suite, backend):
    """(row name, side, overrides, extra environment) for each throughput row."""
    return simclr_throughput_rows(suite, backend) + [
        row for method in VIT_METHODS for row in vit_throughput_rows(suite, backend, method)
    ]


def simclr_throughput_rows(suite, backend):
    """The SimCLR rows (ResNet-18), float32 and bfloat16 in the full grid."""
    if not SUITES[suite]["full_grid"]:
        jit = backend == "jax"
        return [
            (f"kerassl {backend} jit {'on' if jit else 'off'} float32", "kerassl",
             {"backend": backend, "jit_compile": jit}, {}),
            ("lightly loader+step float32", "lightly", {"mode": "loader"}, {}),
            ("lightly step alone float32", "lightly", {"mode": "step"}, {}),
        ]
    rows = []
    for precision in ("float32", "bfloat16"):
        rows += [
            (f"kerassl tensorflow jit off {precision}", "kerassl",
             {"backend": "tensorflow", "jit_compile": False, "precision": precision}, {}),
            (f"kerassl tensorflow jit on {precision}", "kerassl",
             {"backend": "tensorflow", "jit_compile": True, "precision": precision}, {}),
            (f"kerassl jax jit on {precision}", "kerassl",
             {"backend": "jax", "jit_compile": True, "precision": precision}, {}),
            (f"lightly loader+step {precision}", "lightly",
             {"mode": "loader", "precision": precision}, {}),
            (f"lightly step alone {precision}", "lightly",
             {"mode": "step", "precision": precision}, {}),
        ]
    # An un-jitted JAX step runs op by op: minutes per step, so a short row.
    rows.append(("kerassl jax jit off float32", "kerassl",
                 {"backend": "jax", "jit_compile": False, "warmup_steps": 1, "timed_steps": 2}, {}))
    return rows


def vit_throughput_rows(suite, backend, method):
    """One ViT method's rows ("mae ..." or "dino ..."): float32, and bfloat16 too on a GPU."""
    if SUITES[suite]["full_grid"]:
        kerassl = [("tensorflow", False), ("tensorflow", True), ("jax", True)]
    else:
        kerassl = [(backend, backend == "jax")]
    rows = []
    for precision in ("float32", "bfloat16") if suite == "gpu" else ("float32",):
        rows += [
            (f"{method} kerassl {name} jit {'on' if jit else 'off'} {precision}", "kerassl",
             {"method": method, "backend": name, "jit_compile": jit, "precision": precision}, {})
            for name, jit in kerassl
        ] + [
            (f"{method} lightly loader+step {precision}", "lightly",
             {"method": method, "mode": "loader", "precision": precision}, {}),
            (f"{method} lightly step alone {precision}", "lightly",
             {"method": method, "mode": "step", "precision": precision}, {}),
        ]
    return rows


def quality_rows(suite, backend):
    """(row name, side, overrides, extra environment) for each quality row.

    SimCLR's rows first ("kerassl ...", "lightly"), then each ViT method's
    ("mae kerassl ...", "mae lightly", "dino ..."), one kerassl row each.
    """
    kerassl_backend = "tensorflow" if suite == "cpu" else backend
    # XLA pays off on accelerators; on this CPU TensorFlow's own kernels are faster.
    jit = suite == "gpu" or kerassl_backend == "jax"
    kerassl = f"kerassl {kerassl_backend} jit {'on' if jit else 'off'}"
    rows = [
        (kerassl, "kerassl", {"backend": kerassl_backend, "jit_compile": jit}, {}),
        ("lightly", "lightly", {}, {}),
    ]
    for method in VIT_METHODS:
        rows += [
            (f"{method} {kerassl}", "kerassl",
             {"method": method, "backend": kerassl_backend, "jit_compile": jit}, {}),
            (f"{method} lightly", "lightly", {"method": method}, {}),
        ]
    return rows


def machine_info():
    info = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "load_average_start": [round(x, 2) for x in os.getloadavg()],
        "note": "The CPU may be shared with other work; see each row's load averages",
    }
    try:
        cpuinfo = pathlib.Path("/proc/cpuinfo").read_text()
        for line in cpuinfo.splitlines():
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
        flags = next((ln for ln in cpuinfo.splitlines() if ln.startswith("flags")), "").split()
        info["cpu_flags"] = sorted(
            f for f in flags if f in {"avx2", "avx512f", "avx512_bf16", "avx512_vnni",
                                      "amx_bf16", "amx_tile", "amx_int8"}
        )
        mem = pathlib.Path("/proc/meminfo").read_text().split("\n", 1)[0].split()
        info["memory_gib"] = round(int(mem[1]) / 2**20, 1)
    except (OSError, StopIteration, IndexError, ValueError):
        pass
    try:
        info["gpu"] = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=20, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        info["gpu"] = None
    return info


def peer_python():
    return PEER_VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def ensure_peer_venv():
    """Creates benchmarks/.peer-venv with torch, torchvision and lightly if missing."""
    python = peer_python()
    check = [str(python), "-c", "import torch, torchvision, lightly"]
    if python.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return python
    print(f"creating the peer environment {PEER_VENV} ({' '.join(PEER_PACKAGES)}) ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", *PEER_PACKAGES], check=True)
    return python


def run_row(name, side, config, env_extra, timeout, python_for):
    """Runs one configuration in a fresh process; returns its result dict."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", **env_extra)
    if side == "kerassl":
        env["KERAS_BACKEND"] = config["backend"]
        script = HERE / "kerassl_side.py"
    else:
        script = HERE / "peer_lightly.py"
    with tempfile.TemporaryDirectory() as tmp:
        out = pathlib.Path(tmp) / "result.json"
        started = time.time()
        try:
            proc = subprocess.run(
                [str(python_for[side]), str(script), json.dumps(config), str(out)],
                env=env, capture_output=True, text=True, timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            return {"error": f"timed out after {timeout} s"}
        if proc.returncode != 0 or not out.exists():
            tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
            return {"error": f"exit code {proc.returncode}", "stderr_tail": tail}
        result = json.loads(out.read_text())
    result["process_wall_s"] = round(time.time() - started, 1)
    return result


def fmt(value, digits=1):
    return "-" if value is None else f"{value:.{digits}f}"


def markdown(report):
    lines = [
        f"# kerassl vs lightly, suite `{report['suite']}`, {report['date']}",
        "",
        f"Machine: {report['machine'].get('cpu_model', '?')}, {report['machine']['cpu_count']} cores"
        f"{', GPU ' + report['machine']['gpu'] if report['machine'].get('gpu') else ''}; "
        f"load average at start {report['machine']['load_average_start']}. "
        f"{report['machine']['note']}.",
        "",
    ]
    for method, rows in group_by_method(report["throughput"]):
        lines += throughput_section(report, method, rows)
    for method, rows in group_by_method(report["quality"]):
        lines += quality_section(report, method, rows)
    return "\n".join(lines)


def row_method(row):
    """The method a row trains ("simclr" for rows written before the key existed)."""
    return row["config"].get("method", "simclr")


def group_by_method(rows):
    """[(method, rows of that method)] in order of first appearance."""
    groups = {}
    for row in rows:
        groups.setdefault(row_method(row), []).append(row)
    return list(groups.items())


METHOD_TITLES = {"simclr": "SimCLR", "mae": "MAE", "dino": "DINO"}


def describe_throughput(method, config):
    """One sentence on what a method's throughput rows run."""
    size = config["image_size"]
    if method == "simclr":
        return f"{config['encoder']}, batch {config['batch_size']}, {size}x{size}, two views."
    vit = (f"ViT (patch {config['patch_size']}, width {config['hidden_dim']}, depth "
           f"{config['depth']}, {config['num_heads']} heads, MLP {config['mlp_dim']}), batch "
           f"{config['batch_size']}, {size}x{size}")
    if method == "mae":
        return (f"{vit}; mask ratio {config['mask_ratio']}, decoder width {config['decoder_dim']}, "
                f"depth {config['decoder_depth']}, {config['decoder_num_heads']} heads, "
                "loss on the hidden patches; AdamW.")
    return (f"{vit}; 2 global crops of {size} px and {config['num_local_crops']} local crops of "
            f"{config['local_crop_size']} px, the EMA teacher on the global crops, head "
            f"{config['head_hidden_dim']}-{config['head_bottleneck_dim']}-"
            f"{config['head_output_dim']}; AdamW.")


def describe_quality(method, config):
    """One sentence on what a method's quality rows train and score."""
    budget = (f"{config['train_size']} {config['data']} training images, {config['epochs']} "
              f"epochs, batch {config['batch_size']}")
    knn = (f"weighted kNN (k={config['knn_k']}, T={config['knn_temperature']}) with the "
           f"training images as bank and {config['test_size']} test images as queries")
    if method == "simclr":
        return f"SimCLR, {config['encoder']}, {budget}; {knn}."
    scored = ("the teacher's class token (the student's in its own column)" if method == "dino"
              else "the encoder's class token")
    return (f"{METHOD_TITLES.get(method, method)}, {describe_throughput(method, config)[:-1]}; "
            f"{budget}; {knn}, on {scored}.")


def quality_section(report, method, rows):
    """Markdown lines: one method's kNN table, ratios against lightly's row of that method."""
    key = "quality" if method == "simclr" else f"{method}_quality"
    config = report["config"].get(key, rows[0]["config"])
    student = method == "dino"
    lines = [
        f"## {METHOD_TITLES.get(method, method)} kNN accuracy at equal budget",
        "",
        describe_quality(method, config),
        "",
        "| row | kNN accuracy | " + ("student kNN | " if student else "")
        + "random init | ratio vs lightly | train time (min) | images/s | peak RSS (MiB) |",
        "| --- | ---: | " + ("---: | " if student else "") + "---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        r = row["result"]
        if "error" in r:
            lines.append(f"| {row['name']} | error: {r['error']} | |" + (" |" if student else "")
                         + " | | | |")
            continue
        lines.append(
            f"| {row['name']} | {r['knn_accuracy']:.3f} | "
            + (f"{fmt(r.get('knn_accuracy_student'), 3)} | " if student else "")
            + f"{r['knn_accuracy_random_init']:.3f} | "
            f"{fmt(row.get('ratio_vs_lightly'), 3)} | {r['train_s'] / 60:.1f} | "
            f"{fmt(r['train_images_per_s'])} | {fmt(r['peak_rss_mib'], 0)} |"
        )
    return lines + [""]


def throughput_section(report, method, rows):
    """Markdown lines: one method's throughput table."""
    key = "throughput" if method == "simclr" else f"{method}_throughput"
    config = report["config"].get(key, rows[0]["config"])
    lines = [
        f"## {METHOD_TITLES.get(method, method)} train-step throughput",
        "",
        describe_throughput(method, config) + " Median of the timed steps after warm-up. "
        "Wall ratio: kerassl images/s over lightly loader+step of the same method (the way "
        "a lightly user trains); CPU ratio: kerassl images/CPU-s over lightly's step alone "
        "of the same method (no augmentation); both at the same precision.",
        "",
        "| row | images/s | images/CPU-s | wall ratio | CPU ratio | first step (s) "
        "| peak RSS (MiB) | load avg |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        r = row["result"]
        if "error" in r:
            lines.append(f"| {row['name']} | error: {r['error']} | | | | | | |")
            continue
        lines.append(
            f"| {row['name']} | {fmt(r['images_per_s'])} | {fmt(r.get('images_per_cpu_s'))} | "
            f"{fmt(row.get('ratio_vs_lightly'), 2)} | "
            f"{fmt(row.get('cpu_ratio_vs_lightly_step'), 2)} | {fmt(r['first_step_s'])} | "
            f"{fmt(r['peak_rss_mib'], 0)} | {r['load_average_end'][0]:.1f} |"
        )
    return lines + [""]


def lightly_result(rows, method, precision, mode):
    """The result of lightly's row of this method, precision and mode; {} if none."""
    for row in rows:
        config = row["config"]
        if (row["side"] == "lightly" and row_method(row) == method
                and config.get("precision", "float32") == precision and config.get("mode") == mode):
            return row["result"]
    return {}


def add_ratios(report):
    """Ratios of each kerassl row to lightly's rows of the same method and precision."""
    for row in report["throughput"]:
        if row["side"] != "kerassl":
            continue
        method, precision = row_method(row), row["config"].get("precision", "float32")
        peer = lightly_result(report["throughput"], method, precision, "loader")
        if "images_per_s" in peer and "images_per_s" in row["result"]:
            row["ratio_vs_lightly"] = row["result"]["images_per_s"] / peer["images_per_s"]
        # CPU seconds of the loader row miss its worker process, so the CPU
        # ratio is taken against lightly's step alone (views for free): a
        # conservative figure for kerassl, whose steps include the views.
        peer = lightly_result(report["throughput"], method, precision, "step")
        if "images_per_cpu_s" in peer and "images_per_cpu_s" in row["result"]:
            row["cpu_ratio_vs_lightly_step"] = (
                row["result"]["images_per_cpu_s"] / peer["images_per_cpu_s"]
            )
    for row in report["quality"]:
        if row["side"] != "kerassl":
            continue
        peer = next((r["result"] for r in report["quality"]
                     if r["side"] == "lightly" and row_method(r) == row_method(row)), {})
        if "knn_accuracy" in peer and "knn_accuracy" in row["result"]:
            row["ratio_vs_lightly"] = row["result"]["knn_accuracy"] / peer["knn_accuracy"]


def write_atomic(path, text):
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False) as tmp:
        tmp.write(text)
    os.chmod(tmp.name, 0o644)
    os.replace(tmp.name, path)


def base_configs(suite, args):
    """The base configuration of each kind of row, with the command line's overrides.

    Keys: "throughput" and "quality" (SimCLR), "<method>_throughput" and
    "<method>_quality" (the ViT methods). The command line's --train-size,
    --test-size and --epochs override every quality configuration.
    """
    configs = {task: dict(RECIPE, task=task, **suite[task]) for task in ("throughput", "quality")}
    for task in ("throughput", "quality"):
        if args.cifar10:
            configs[task]["cifar10"] = args.cifar10
    steps = {k: configs["throughput"][k] for k in ("warmup_steps", "timed_steps")}
    for method in VIT_METHODS:
        config = dict(VIT, **METHOD_RECIPES[method], task="throughput", method=method, **steps)
        config.update(suite.get("vit", {}))
        config.update(suite.get(method, {}))
        configs[f"{method}_throughput"] = config
        # Quality: the same ViT and recipe, the suite's data and budget, the kNN of SimCLR's.
        config = dict(VIT, **METHOD_RECIPES[method], task="quality", method=method,
                      knn_k=RECIPE["knn_k"], knn_temperature=RECIPE["knn_temperature"])
        config.update({k: v for k, v in suite.get("vit", {}).items()
                       if k not in ("warmup_steps", "timed_steps")})
        config.update(suite.get(method, {}))
        config.update(suite.get("vit_quality", {}))
        if args.cifar10:
            config["cifar10"] = args.cifar10
        configs[f"{method}_quality"] = config
    cli = {
        "throughput": {"warmup_steps": args.warmup_steps, "timed_steps": args.timed_steps},
        "quality": {"train_size": args.train_size, "test_size": args.test_size,
                    "epochs": args.epochs},
    }
    for key, config in configs.items():
        values = cli["quality" if key.endswith("quality") else "throughput"]
        config.update({k: v for k, v in values.items() if v is not None})
    return configs


def config_key(task, overrides):
    """Which base configuration a row starts from."""
    method = overrides.get("method", "simclr")
    return task if method == "simclr" else f"{method}_{task}"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--suite", choices=sorted(SUITES), default="smoke")
    parser.add_argument("--only", choices=("all", "throughput", "quality"), default="all")
    parser.add_argument("--sides", default="kerassl,lightly",
                        help="comma-separated: kerassl, lightly")
    parser.add_argument("--rows", default="",
                        help="run only rows whose name contains one of these comma-separated words")
    parser.add_argument("--skip", default="",
                        help="leave out rows whose name contains one of these comma-separated words")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the rows that would run, and exit")
    parser.add_argument("--out", default=str(HERE / "results"), help="folder for the results")
    parser.add_argument("--cifar10", default=None, help="path of cifar10-jpeg.tar.gz")
    parser.add_argument("--warmup-steps", type=int, default=None, help="override the suite's")
    parser.add_argument("--timed-steps", type=int, default=None, help="override the suite's")
    parser.add_argument("--train-size", type=int, default=None,
                        help="override the suite's number of training images (quality)")
    parser.add_argument("--test-size", type=int, default=None,
                        help="override the suite's number of kNN queries (quality)")
    parser.add_argument("--epochs", type=int, default=None, help="override the suite's (quality)")
    parser.add_argument("--render", metavar="JSON", default=None,
                        help="only rewrite the Markdown table of an existing results file")
    parser.add_argument("--timeout", type=int, default=None,
                        help="seconds per row (default: 15 min throughput, none for quality)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.render:
        path = pathlib.Path(args.render)
        report = json.loads(path.read_text())
        add_ratios(report)
        write_atomic(path.with_suffix(".md"), markdown(report))
        return report
    sides = {s.strip() for s in args.sides.split(",") if s.strip()}
    unknown = sides - {"kerassl", "lightly"}
    if unknown:
        raise SystemExit(f"--sides takes kerassl and/or lightly; got {sorted(unknown)}")
    suite = SUITES[args.suite]
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    date = datetime.date.today().isoformat()
    out_dir = pathlib.Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / f"{date}-{args.suite}.json"
    md_path = out_dir / f"{date}-{args.suite}.md"

    configs = base_configs(suite, args)
    rows = []
    if args.only in ("all", "throughput"):
        rows += [("throughput",) + r for r in throughput_rows(args.suite, backend)]
    if args.only in ("all", "quality"):
        rows += [("quality",) + r for r in quality_rows(args.suite, backend)]
    words = [w.strip() for w in args.rows.split(",") if w.strip()]
    rows = [r for r in rows if r[2] in sides and (not words or any(w in r[1] for w in words))]
    skipped = [w.strip() for w in args.skip.split(",") if w.strip()]
    rows = [r for r in rows if not any(w in r[1] for w in skipped)]
    if args.dry_run:
        for task, name, side, *_ in rows:
            print(f"{task}: {name} ({side})")
        return {"rows": [r[1] for r in rows]}

    python_for = {"kerassl": pathlib.Path(sys.executable)}
    if any(r[2] == "lightly" for r in rows):
        python_for["lightly"] = ensure_peer_venv()

    report = {
        "suite": args.suite,
        "description": suite["description"],
        "date": date,
        "machine": machine_info(),
        "config": configs,
        "throughput": [],
        "quality": [],
    }
    for task, name, side, overrides, env_extra in rows:
        config = dict(configs[config_key(task, overrides)], **overrides)
        if side == "lightly":
            config.update(suite["peer"])
            if config["method"] == "simclr":
                config.update(suite.get("peer_simclr", {}))
        timeout = args.timeout or (900 if task == "throughput" else None)
        print(f"[{time.strftime('%H:%M:%S')}] {task}: {name} ...", flush=True)
        result = run_row(name, side, config, env_extra, timeout, python_for)
        summary = result.get("error") or (
            f"{result['images_per_s']:.1f} images/s" if task == "throughput"
            else f"kNN {result['knn_accuracy']:.3f} (random init {result['knn_accuracy_random_init']:.3f})"
        )
        print(f"    {summary}", flush=True)
        report[task].append({"name": name, "side": side, "config": config,
                             "env": env_extra, "result": result})
        add_ratios(report)
        report["machine"]["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
        write_atomic(json_path, json.dumps(report, indent=1))
        write_atomic(md_path, markdown(report))
    print(f"wrote {json_path} and {md_path}")
    return report


if __name__ == "__main__":
    main()
