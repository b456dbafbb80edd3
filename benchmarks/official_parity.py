"""Parity of every converted family against its transformers reference (the committed fixtures).

    KERAS_BACKEND=tensorflow .venv/bin/python benchmarks/official_parity.py
    KERAS_BACKEND=jax .venv/bin/python benchmarks/official_parity.py

Prints the max abs difference of the features at the native size and at two
other sizes (48 and 24 px, position embeddings interpolated), and of MAE's
decoder pixels and loss with transformers' noise. The fixtures and their
reference outputs come from tests/fixtures/make_official_fixtures.py.
"""

import pathlib

import keras
import numpy as np
from keras import ops

from kerassl.zoo import convert

DATA = pathlib.Path(__file__).resolve().parents[1] / "tests" / "data" / "official"
FIXTURES = ("dino_vit", "dino_vit_bin", "msn", "mae", "ijepa", "dinov2", "dinov2_swiglu", "dinov2_registers")


def main():
    print(f"backend {keras.config.backend()}")
    print("| fixture | native 32 px | 48 px | 24 px |")
    print("| --- | --- | --- | --- |")
    for folder in (DATA / name for name in FIXTURES):
        ref = np.load(folder / "reference.npz")
        cells = []
        for key, size in (("native", None), ("larger", 48), ("smaller", 24)):
            encoder = convert.encoder_from_folder(folder, image_size=size)
            out = ops.convert_to_numpy(encoder(ops.convert_to_tensor(ref[f"images_{key}"]), training=False))
            cells.append(f"{np.abs(out - ref[f'features_{key}']).max():.1e}")
        print(f"| {folder.name} | " + " | ".join(cells) + " |")
    ref = np.load(DATA / "mae" / "reference.npz")
    mae = convert.method_from_folder(DATA / "mae")
    images = ops.convert_to_tensor(ref["method_images"])
    out = mae.masked_forward(images, training=False, noise=ops.convert_to_tensor(ref["method_noise"]))
    pixels = np.abs(ops.convert_to_numpy(out["predictions"]) - ref["method_logits"]).max()
    loss = abs(float(mae.compute_loss(x=images, y_pred=out)) - float(ref["method_loss"]))
    print(f"\nMAE method: decoder pixels {pixels:.1e}, loss {loss:.1e}")


if __name__ == "__main__":
    main()
