"""Where a SimCLR step spends its time, on the current Keras backend.

Usage:
    KERAS_BACKEND=jax python benchmarks/profile_step.py --batch 64
    KERAS_BACKEND=tensorflow python benchmarks/profile_step.py --batch 64 --jit

Times, each as a median of wall and CPU seconds over a few steps after warm-up:
  supervised  ResNet-18 (CIFAR stem) + Dense(10), `fit` with SGD: the encoder's
              forward and backward pass and nothing SimCLR-specific.
  forward     the encoder alone, inference (`predict_on_batch`).
  simclr      `kerassl.SimCLR.fit`, views made in the step (the benchmark row).
  simclr_noaug  the same with an identity augmenter: the step minus the views.
  conv_*      single Conv2D layers of ResNet-18 in a `fit` step, to spot a slow
              convolution (strided convs' input gradients are the usual suspect
              on XLA CPU).
Run with different `XLA_FLAGS` or thread settings to compare them.
"""

import argparse
import json
import os
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
import numpy as np  # noqa: E402

import kerassl  # noqa: E402
import kerassl.augment  # noqa: E402
import kerassl.backbones  # noqa: E402


class Timer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.wall, self.cpu = [], []

    def on_train_batch_begin(self, batch, logs=None):
        self.t, self.c = time.perf_counter(), time.process_time()

    def on_train_batch_end(self, batch, logs=None):
        float((logs or {}).get("loss", 0.0))
        self.wall.append(time.perf_counter() - self.t)
        self.cpu.append(time.process_time() - self.c)


def timed_fit(model, x, y, batch, steps, jit):
    timer = Timer()
    model.fit(x[: batch * steps], None if y is None else y[: batch * steps], batch_size=batch,
              epochs=1, shuffle=False, verbose=0, callbacks=[timer])
    return timer


def summary(wall, cpu, warmup):
    return {"wall_s": round(float(np.median(wall[warmup:])), 4),
            "cpu_s": round(float(np.median(cpu[warmup:])), 4),
            "first_s": round(wall[0], 2)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=4, help="timed + 1 warm-up")
    parser.add_argument("--jit", action="store_true", help="jit_compile=True (always on JAX)")
    parser.add_argument("--parts", default="supervised,forward,simclr,simclr_noaug,conv")
    parser.add_argument("--precision", default="float32")
    args = parser.parse_args()
    if args.precision == "bfloat16":
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    backend = keras.config.backend()
    jit = True if backend == "jax" else args.jit
    parts = args.parts.split(",")
    rng = np.random.default_rng(0)
    b, steps = args.batch, args.steps
    images = rng.integers(0, 256, (b * steps, 32, 32, 3), dtype=np.uint8)
    floats = images.astype("float32") / 255.0
    labels = rng.integers(0, 10, b * steps)
    results = {"backend": backend, "jit_compile": jit, "batch": b,
               "xla_flags": os.environ.get("XLA_FLAGS", "")}
    keras.utils.set_random_seed(0)

    if "supervised" in parts or "forward" in parts:
        encoder = kerassl.backbones.resnet18(input_shape=(32, 32, 3), stem="cifar")
        classifier = keras.Sequential([encoder, keras.layers.Dense(10)])
        classifier.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                           loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                           jit_compile=jit)
        if "supervised" in parts:
            # Two images per SimCLR example: 2b images per step, as in SimCLR.
            x2, y2 = np.concatenate([floats, floats]), np.concatenate([labels, labels])
            t = timed_fit(classifier, x2, y2, 2 * b, steps, jit)
            results["supervised_2b"] = summary(t.wall, t.cpu, 1)
        if "forward" in parts:
            wall, cpu = [], []
            for i in range(steps):
                t, c = time.perf_counter(), time.process_time()
                np.asarray(encoder.predict_on_batch(floats[:b]))
                wall.append(time.perf_counter() - t)
                cpu.append(time.process_time() - c)
            results["forward_b"] = summary(wall, cpu, 1)

    for part, augmenter in (("simclr", "default"), ("simclr_noaug", "identity")):
        if part not in parts:
            continue
        keras.utils.set_random_seed(0)
        encoder = kerassl.backbones.resnet18(input_shape=(32, 32, 3), stem="cifar")
        aug = (kerassl.augment.simclr_augmenter(32, jitter_strength=0.5, blur_probability=0.0, seed=0)
               if augmenter == "default" else keras.Sequential([keras.layers.Identity()]))
        model = kerassl.SimCLR(encoder, projection_hidden_dim=512, augmenter=aug, seed=0)
        model.compile(optimizer=keras.optimizers.SGD(0.06, momentum=0.9), jit_compile=jit)
        t = timed_fit(model, images, None, b, steps, jit)
        results[part] = summary(t.wall, t.cpu, 1)
        results[part]["jit_compile_resolved"] = model.jit_compile

    if "conv" in parts:
        # (input size, in channels, out channels, stride) of ResNet-18's conv shapes.
        for size, cin, cout, stride in ((32, 64, 64, 1), (32, 64, 128, 2), (16, 128, 128, 1),
                                        (16, 128, 256, 2), (8, 256, 512, 2), (4, 512, 512, 1)):
            x = rng.random((2 * b * steps, size, size, cin), dtype=np.float32)
            layer_model = keras.Sequential([
                keras.Input((size, size, cin)),
                keras.layers.Conv2D(cout, 3, strides=stride, padding="same", use_bias=False),
                keras.layers.GlobalAveragePooling2D(),
            ])
            layer_model.compile(optimizer="sgd", loss="mse", jit_compile=jit)
            y = np.zeros((len(x), cout), "float32")
            t = timed_fit(layer_model, x, y, 2 * b, steps, jit)
            results[f"conv_{size}px_{cin}to{cout}_s{stride}"] = summary(t.wall, t.cpu, 1)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
