"""SimCLR step time over batch sizes 64-1024: how much NT-Xent's (2N)^2 logits cost.

A tiny encoder (two convolutions, 16x16 RGB) so the encoder's linear cost is
small and the quadratic loss shows; the loss alone (`nt_xent` forward and
backward on random 128-d projections) is timed beside the whole step.
Prints one JSON line per batch size; the machine may be shared, so the
figures are rough.

    python benchmarks/ntxent_batch_sweep.py [--steps 3] [--batches 64,128,256,512,1024]
"""

import argparse
import json
import time

import keras
import numpy as np

import kerassl


def tiny_encoder():
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same", activation="relu")(inputs)
    x = keras.layers.Conv2D(32, 3, strides=2, padding="same", activation="relu")(x)
    return keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x))


def time_calls(fn, steps):
    fn()  # trace / compile
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batches", default="64,128,256,512,1024")
    args = parser.parse_args()
    import tensorflow as tf

    for batch in (int(b) for b in args.batches.split(",")):
        model = kerassl.SimCLR(tiny_encoder(), projection_hidden_dim=128, projection_dim=128, seed=0)
        model.compile(optimizer="sgd", jit_compile=False)
        images = np.random.default_rng(0).integers(0, 256, (batch, 16, 16, 3)).astype("uint8")
        step = time_calls(lambda: model.train_on_batch(images), args.steps)
        z1 = tf.random.normal((batch, 128))
        z2 = tf.random.normal((batch, 128))

        @tf.function
        def loss_step():
            with tf.GradientTape() as tape:
                tape.watch([z1, z2])
                loss = kerassl.losses.nt_xent(z1, z2, 0.5)
            return tape.gradient(loss, [z1, z2])

        loss_only = time_calls(loss_step, args.steps)
        print(json.dumps({
            "batch": batch, "step_s": round(step, 4), "ntxent_fwd_bwd_s": round(loss_only, 4),
            "ntxent_share": round(loss_only / step, 3), "images_per_s": round(batch / step, 1),
        }), flush=True)


if __name__ == "__main__":
    main()
