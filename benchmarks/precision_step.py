"""Step time of one method in one precision policy (one process per row: policies leak).

    python benchmarks/precision_step.py simclr mixed_bfloat16 [--batch 64] [--steps 3]

Small models so each row takes seconds: a small convnet (simclr, dino, rotnet,
jigsaw, autoencoder) or ViT-tiny (mae, dino-vit) at 32x32, batch 64. Prints one
JSON line. On a shared CPU the figures are rough; compare ratios of one run.
"""

import argparse
import json
import time

import keras
import numpy as np


def build(name):
    import kerassl

    convnet = lambda: kerassl.backbones.small_convnet(input_shape=(32, 32, 3))  # noqa: E731
    vit = lambda: kerassl.backbones.vit_tiny(image_size=32, patch_size=4)  # noqa: E731
    return {
        "simclr": lambda: kerassl.SimCLR(convnet(), seed=0),
        "dino": lambda: kerassl.DINO(convnet(), head_output_dim=1024, seed=0),
        "mae": lambda: kerassl.MAE(vit(), seed=0),
        "rotnet": lambda: kerassl.RotNet(convnet(), seed=0),
        "jigsaw": lambda: kerassl.Jigsaw(kerassl.backbones.small_convnet(input_shape=(None, None, 3)), seed=0),
        "autoencoder": lambda: kerassl.Autoencoder(convnet(), seed=0),
        "gan": lambda: kerassl.GAN(image_shape=(32, 32, 3), seed=0),
    }[name]()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("method")
    parser.add_argument("policy")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    keras.config.set_dtype_policy(args.policy)
    model = build(args.method)
    if args.method == "gan":
        model.compile()
    else:
        model.compile(optimizer="adam", jit_compile=False)
    images = np.random.default_rng(0).integers(0, 256, (args.batch, 32, 32, 3)).astype("uint8")
    start = time.perf_counter()
    model.train_on_batch(images)
    first = time.perf_counter() - start
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        model.train_on_batch(images)
        times.append(time.perf_counter() - start)
    print(json.dumps({"method": args.method, "policy": args.policy, "batch": args.batch,
                      "first_step_s": round(first, 2), "step_s": round(float(np.median(times)), 4)}))


if __name__ == "__main__":
    main()
