"""What feeding NumPy data in a (seed, epoch) order costs next to Keras's own shuffle.

Run: KERAS_BACKEND=tensorflow .venv/bin/python benchmarks/seeded_order.py
Times `fit(..., shuffle=True)` of SimCLR on uint8 images with the seeded order
(`kerassl.methods.resume.SeededOrder`, what `fit` does for a method with a seed)
and with Keras's array path (the order switched off), alternating the two and
keeping the median epoch of each. Two encoders: a small convnet (a realistic
step) and a one-layer one, where feeding the data is most of the step.

Measured (TensorFlow, 2 CPU cores shared with three other test runs, load ~7,
2,048 images, median of 3): one conv layer 1.01 s vs 1.00 s per epoch (ratio
1.01); small convnet 26.2 s vs 41.0 s (ratio 0.64: no slowdown, but the
machine was too loaded for that figure to mean more).
"""

import statistics
import sys
import time

import keras
import numpy as np

import kerassl
import kerassl.methods.base as base

SEEDED = base.seeded_order


def keras_order(x, y, seed, fit_kwargs, steps_per_execution=1):
    return x, y, fit_kwargs


def one_layer(shape):
    inputs = keras.Input(shape)
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu")(inputs)
    return keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x))


def epoch_seconds(make_encoder, images, order, epochs=2, batch_size=256):
    base.seeded_order = order
    model = kerassl.SimCLR(make_encoder(images.shape[1:]), 64, 32, seed=0)
    model.compile(optimizer="adam")
    model.fit(images[: 2 * batch_size], batch_size=batch_size, epochs=1, verbose=0)  # trace once
    start = time.perf_counter()
    model.fit(images, batch_size=batch_size, epochs=epochs, verbose=0)
    base.seeded_order = SEEDED
    return (time.perf_counter() - start) / epochs


def main(count=2048, size=32, repeats=3):
    images = np.random.default_rng(0).integers(0, 256, (count, size, size, 3)).astype("uint8")
    encoders = {
        "small_convnet": lambda shape: kerassl.backbones.small_convnet(input_shape=shape),
        "one conv layer": one_layer,
    }
    print(f"backend {keras.config.backend()}, {count} uint8 {size}x{size} images, batch 256")
    for name, make in encoders.items():
        times = {"seeded": [], "keras": []}
        for _ in range(repeats):
            times["keras"].append(epoch_seconds(make, images, keras_order))
            times["seeded"].append(epoch_seconds(make, images, SEEDED))
        seeded, plain = statistics.median(times["seeded"]), statistics.median(times["keras"])
        print(f"{name}: epoch {seeded:.2f} s seeded vs {plain:.2f} s Keras's shuffle, ratio {seeded / plain:.3f}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
