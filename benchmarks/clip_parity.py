"""Parity of the converted tiny CLIP against transformers' CLIPModel (the committed fixtures).

    KERAS_BACKEND=tensorflow .venv/bin/python benchmarks/clip_parity.py
    KERAS_BACKEND=jax .venv/bin/python benchmarks/clip_parity.py

Prints the max abs difference of image embeddings, text embeddings, logits and
the vision tower's pooled features, at the native 32 px and at 48 px (position
embeddings resized as `interpolate_pos_encoding=True` does). The fixtures come
from tests/fixtures/make_clip_fixtures.py; the full-size check is
benchmarks/clip_full_size.py.
"""

import json
import pathlib

import keras
import numpy as np

from kerassl.zoo.convert import clip
from kerassl.zoo.convert.weights import read_checkpoint

DATA = pathlib.Path(__file__).resolve().parents[1] / "tests" / "data" / "official_clip"
CAPTIONS = ["a photo of a cat.", "a photo of a dog!", "the red car, parked", "", "café in paris"]


def main():
    tiny = DATA / "tiny"
    config = json.loads((tiny / "config.json").read_text())
    preprocessor = json.loads((tiny / "preprocessor_config.json").read_text())
    tensors = read_checkpoint(tiny / "model.safetensors")
    files = {name: tiny / name for name in clip.TOKENIZER_FILES}
    ref = np.load(DATA / "tiny_reference.npz")
    diff = lambda a, b: float(np.abs(np.asarray(a, "float64") - b).max())  # noqa: E731
    print(f"backend {keras.config.backend()}")
    print("| size | image embeds | text embeds | logits | pooled vision features | encoder (load_encoder) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for size in (32, 48):
        model = clip.method_from_checkpoint(config, tensors, preprocessor, files, image_size=size)
        encoder = clip.encoder_from_checkpoint(config, tensors, preprocessor, image_size=size)
        images = ref[f"images_{size}"]
        image_z = model.encode_image(images)
        text_z = model.encode_text(model.tokenizer(CAPTIONS))
        scale = float(keras.ops.convert_to_numpy(model.logit_scale()))
        cells = [
            diff(image_z, ref[f"image_embeds_{size}"]),
            diff(text_z, ref["text_embeds"]),
            diff(scale * image_z @ text_z.T, ref[f"logits_per_image_{size}"]),
            diff(model.predict(images, verbose=0), ref[f"vision_features_{size}"]),
            diff(encoder.predict(images, verbose=0), ref[f"image_embeds_{size}"]),
        ]
        print(f"| {size} px | " + " | ".join(f"{c:.1e}" for c in cells) + " |")


if __name__ == "__main__":
    main()
