"""How much of a ResNet-18 training step is BatchNormalization, in float32 and bfloat16?

Usage: python benchmarks/profile_batchnorm.py [--batch 256] [--steps 5]

A supervised `fit` step of kerassl's ResNet-18 (CIFAR stem) + Dense(10), SGD,
on `--batch` 32x32 images, TensorFlow backend (`jit_compile=False`, the fast
path on this CPU). Each variant runs in this one process, so the figures are
ratios against the stock float32 step measured beside them:

  keras      the encoder as kerassl builds it (keras.layers.BatchNormalization,
             which upcasts bfloat16 inputs to float32 and computes moments and
             the normalization as separate ops);
  scaleshift moments in float32, then the normalization folded into one
             multiply-add in the compute dtype (no float32 copy of the output);
  identity   every BatchNormalization replaced by nothing: the rest of the step,
             an upper bound on what any normalization change could save.

for float32 and mixed_bfloat16. Prints JSON: median wall and CPU seconds per step.
"""

import argparse
import json
import os
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import ops  # noqa: E402

import kerassl.backbones  # noqa: E402
from step_timer import StepTimer  # noqa: E402


class ScaleShiftBatchNorm(keras.layers.BatchNormalization):
    """BatchNormalization whose output is one multiply-add in the input's dtype."""

    def call(self, inputs, training=None, mask=None):
        axes = [i for i in range(len(inputs.shape)) if i != self.axis % len(inputs.shape)]
        if training and self.trainable:
            mean, variance = ops.moments(ops.cast(inputs, "float32"), axes=axes)
            self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
            self.moving_variance.assign(
                self.moving_variance * self.momentum + variance * (1.0 - self.momentum)
            )
        else:
            mean, variance = self.moving_mean, self.moving_variance
        scale = ops.rsqrt(variance + self.epsilon) * ops.cast(self.gamma, "float32")
        shift = ops.cast(self.beta, "float32") - mean * scale
        return inputs * ops.cast(scale, inputs.dtype) + ops.cast(shift, inputs.dtype)


class NoNormalization(keras.layers.Layer):
    """Passes its input through (stands in for a removed BatchNormalization)."""

    def call(self, inputs, training=None, mask=None):
        return inputs


def encoder(variant):
    model = kerassl.backbones.resnet18(input_shape=(32, 32, 3), stem="cifar")
    if variant == "keras":
        return model

    def clone(layer):
        if not isinstance(layer, keras.layers.BatchNormalization):
            return layer.__class__.from_config(layer.get_config())
        if variant == "identity":
            return NoNormalization(name=layer.name)
        return ScaleShiftBatchNorm.from_config(layer.get_config())

    return keras.models.clone_model(model, clone_function=clone)


def step_time(variant, precision, x, y, batch, warmup):
    keras.mixed_precision.set_global_policy("mixed_bfloat16" if precision == "bfloat16" else "float32")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([encoder(variant), keras.layers.Dense(10, dtype="float32")])
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=False)
    timer = StepTimer()
    model.fit(x, y, batch_size=batch, epochs=1, shuffle=False, verbose=0, callbacks=[timer])
    return {"wall_s": round(float(np.median(timer.times[warmup:])), 4),
            "cpu_s": round(float(np.median(timer.cpu_times[warmup:])), 4)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=5, help="timed steps (after 2 warm-up)")
    parser.add_argument("--variants", default="keras,scaleshift,identity")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    count = args.batch * (args.steps + 2)
    x = rng.random((count, 32, 32, 3), dtype=np.float32)
    y = rng.integers(0, 10, count)
    results = {"backend": keras.config.backend(), "batch": args.batch,
               "load_average_start": os.getloadavg()}
    for precision in ("float32", "bfloat16"):
        for variant in args.variants.split(","):
            results[f"{variant} {precision}"] = step_time(variant, precision, x, y, args.batch, 2)
            print(f"{variant} {precision}: {results[f'{variant} {precision}']}", flush=True)
    base = results["keras float32"]["wall_s"]
    results["speedup_vs_keras_float32"] = {
        k: round(base / v["wall_s"], 3) for k, v in results.items() if isinstance(v, dict) and "wall_s" in v
    }
    results["load_average_end"] = os.getloadavg()
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
