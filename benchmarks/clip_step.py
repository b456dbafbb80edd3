"""Images/s of a CLIP training step: ResNet-18 (CIFAR stem) + a 4-block text transformer.

32x32 RGB images, batch 256, captions from CIFAR-10 class names with the
default templates (word tokenizer, max_length 32), embed_dim 256. Synthetic
pixels: throughput does not depend on what the images show. Prints one JSON
line with the median step time after warm-up and the load average (the
machine may be shared).

Usage:
    python benchmarks/clip_step.py [--batch 256] [--warmup 3] [--steps 5]
    KERAS_BACKEND=jax python benchmarks/clip_step.py --encoder small_convnet
"""

import argparse
import json
import os
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
from step_timer import StepTimer  # noqa: E402
import numpy as np  # noqa: E402

from kerassl import backbones, captions  # noqa: E402
from kerassl.methods.clip import CLIP  # noqa: E402
from kerassl.text import TextEncoder, Tokenizer  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--encoder", default="resnet18", choices=("resnet18", "small_convnet"))
    parser.add_argument("--jit", action="store_true", help="jit_compile=True (XLA)")
    args = parser.parse_args()

    keras.utils.set_random_seed(0)
    count = args.batch * (args.warmup + args.steps)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(count, 32, 32, 3)).astype("uint8")
    texts = captions.captions_from_labels(rng.integers(0, 10, count), captions.CIFAR10_NAMES)
    tokenizer = Tokenizer.from_texts(texts, max_length=32)
    encoder = getattr(backbones, args.encoder)(input_shape=(32, 32, 3))
    text_encoder = TextEncoder(tokenizer.vocab_size, max_length=32, width=256, depth=4, num_heads=4)
    clip = CLIP(encoder, text_encoder, embed_dim=256, tokenizer=tokenizer)
    clip.compile(optimizer=keras.optimizers.AdamW(5e-4), jit_compile=args.jit or "auto")

    timer = StepTimer()
    started = time.perf_counter()
    clip.fit(images, texts, batch_size=args.batch, epochs=1, shuffle=False, verbose=0,
             callbacks=[timer])
    step = float(np.median(timer.times[args.warmup:]))
    print(json.dumps({
        "benchmark": "clip_step",
        "backend": keras.config.backend(),
        "encoder": args.encoder,
        "text_encoder": "TextEncoder(width=256, depth=4, heads=4, max_length=32)",
        "batch": args.batch,
        "jit_compile": bool(clip.jit_compile),
        "median_step_s": round(step, 3),
        "images_per_s": round(args.batch / step, 1),
        "first_step_s": round(timer.times[0], 1),
        "total_s": round(time.perf_counter() - started, 1),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
    }))


if __name__ == "__main__":
    main()
