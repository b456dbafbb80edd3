"""A full-size OpenAI CLIP ViT-B/32 with random weights: kerassl's conversion against transformers.

Two sides, each in a fresh process so its peak memory is its own:

    /work/peer-venv/bin/python benchmarks/clip_full_size.py peer  --dir /tmp/clip-b32
    .venv/bin/python           benchmarks/clip_full_size.py kerassl --dir /tmp/clip-b32

The peer side (torch + transformers + open_clip, never a kerassl dependency)
writes a `CLIPModel` with the configuration of `openai/clip-vit-base-patch32`
(random weights, OpenAI's full 49408-token BPE vocabulary from the open-clip-torch
wheel) with `save_pretrained`, times `CLIPModel.from_pretrained` on it and stores
its outputs on fixed images and captions. The kerassl side times
`kerassl.zoo.convert.method_from_folder`-style conversion (read + build + assign)
and reports the max abs difference of image/text embeddings and logits.
Both print one JSON line.
"""

import argparse
import json
import pathlib
import resource
import sys
import time

CAPTIONS = ["a photo of a cat.", "a diagram of a transformer, drawn by hand!", "Zürich at night 🌃"]
MEAN = [0.48145466, 0.4578275, 0.40821073]
STD = [0.26862954, 0.26130258, 0.27577711]


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def images():
    import numpy as np

    return np.random.default_rng(0).random((2, 224, 224, 3), dtype=np.float32)


def peer(folder):
    import numpy as np
    import torch
    import transformers

    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
    from tests.fixtures.make_clip_fixtures import randomize, write_bpe_files

    if not (folder / "model.safetensors").is_file():
        write_bpe_files(folder)
        torch.manual_seed(0)
        model = transformers.CLIPModel(transformers.CLIPConfig(
            text_config=dict(bos_token_id=0, eos_token_id=2, pad_token_id=1),
            vision_config=dict(patch_size=32), projection_dim=512,
        )).eval()
        randomize(model)
        model.save_pretrained(str(folder))
        transformers.CLIPTokenizer.from_pretrained(str(folder)).save_pretrained(str(folder))
        transformers.CLIPImageProcessor().save_pretrained(str(folder))
        del model
    start = time.perf_counter()
    model = transformers.CLIPModel.from_pretrained(str(folder)).eval()
    load_s = time.perf_counter() - start
    tokenizer = transformers.CLIPTokenizer.from_pretrained(str(folder))
    tokens = tokenizer(CAPTIONS, padding="max_length", max_length=77, return_tensors="pt")
    pixels = (images() - np.array(MEAN, "float32")) / np.array(STD, "float32")
    with torch.no_grad():
        out = model(**tokens, pixel_values=torch.from_numpy(pixels.transpose(0, 3, 1, 2).copy()))
    np.savez(folder / "reference.npz", image_embeds=out.image_embeds.numpy(),
             text_embeds=out.text_embeds.numpy(), logits=out.logits_per_image.numpy(),
             input_ids=tokens["input_ids"].numpy())
    params = sum(p.numel() for p in model.parameters())
    return {"side": "transformers", "load_s": round(load_s, 2), "peak_rss_mib": round(peak_rss_mib()),
            "parameters": params, "torch": torch.__version__, "transformers": transformers.__version__}


def kerassl_side(folder):
    import keras
    import numpy as np

    from kerassl.zoo.convert import clip, read_folder

    start = time.perf_counter()
    config, tensors, preprocessor = read_folder(folder)
    read_s = time.perf_counter() - start
    files = {name: folder / name for name in clip.TOKENIZER_FILES}
    model = clip.method_from_checkpoint(config, tensors, preprocessor, files)
    convert_s = time.perf_counter() - start
    del tensors
    reference = np.load(folder / "reference.npz")
    ids = model.tokenizer(CAPTIONS)
    same_ids = all(
        ours[: int(np.argmax(theirs)) + 1].tolist() == theirs[: int(np.argmax(theirs)) + 1].tolist()
        for ours, theirs in zip(ids, reference["input_ids"])
    )
    image_z, text_z = model.encode_image(images()), model.encode_text(CAPTIONS)
    scale = float(keras.ops.convert_to_numpy(model.logit_scale()))
    diff = lambda a, b: float(np.abs(np.asarray(a, "float64") - b).max())  # noqa: E731
    return {"side": "kerassl", "backend": keras.config.backend(), "read_s": round(read_s, 2),
            "convert_s": round(convert_s, 2), "peak_rss_mib": round(peak_rss_mib()),
            "parameters": int(model.count_params()), "same_token_ids": same_ids,
            "image_embeds_max_abs_diff": diff(image_z, reference["image_embeds"]),
            "text_embeds_max_abs_diff": diff(text_z, reference["text_embeds"]),
            "logits_max_abs_diff": diff(scale * image_z @ text_z.T, reference["logits"])}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("side", choices=("peer", "kerassl"))
    parser.add_argument("--dir", type=pathlib.Path, default=pathlib.Path("/tmp/kerassl-clip-b32"))
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    print(json.dumps(peer(args.dir) if args.side == "peer" else kerassl_side(args.dir)))


if __name__ == "__main__":
    main()
