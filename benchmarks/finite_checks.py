"""What the full-data finite/range check costs next to a training epoch.

Run: .venv/bin/python benchmarks/finite_checks.py
Times `check_numpy_images` (every image, in chunks) on float32 arrays, and one
SimCLR epoch of a small convnet on the same images: the ratio is an upper bound
(a ResNet-18 epoch is far longer; FACTS.md: 25 min for 50,000 CIFAR images).
"""

import time

import numpy as np

import kerassl
from kerassl.images import check_numpy_images


def main(count=2000, size=32):
    rng = np.random.default_rng(0)
    images = rng.random((count, size, size, 3), dtype="float32")
    start = time.perf_counter()
    check_numpy_images(images)
    check = time.perf_counter() - start
    big = rng.random((50_000, size, size, 3), dtype="float32")
    start = time.perf_counter()
    check_numpy_images(big)
    check_50k = time.perf_counter() - start
    model = kerassl.SimCLR(kerassl.backbones.small_convnet(input_shape=(size, size, 3)), 128, 64, seed=0)
    model.compile(optimizer="adam")
    model.fit(images[:256], batch_size=128, epochs=1, verbose=0)  # trace once
    start = time.perf_counter()
    model.fit(images, batch_size=128, epochs=1, verbose=0)
    epoch = time.perf_counter() - start
    print(f"check of {count} float32 {size}x{size} images: {check * 1000:.1f} ms")
    print(f"check of 50,000 float32 images: {check_50k:.2f} s")
    print(f"small-convnet SimCLR epoch on {count} images: {epoch:.1f} s (check and snapshots included)")
    print(f"check / epoch: {check / epoch:.4f}")
    print(f"check of 50,000 / ResNet-18 epoch of 50,000 (25 min, FACTS.md): {check_50k / 1500:.5f}")
    # The per-batch snapshot StopOnNonFiniteLoss keeps (device copies of every variable).
    from kerassl.nonfinite import StopOnNonFiniteLoss

    resnet = kerassl.SimCLR(kerassl.backbones.resnet18(input_shape=(32, 32, 3)), seed=0)
    resnet.compile(optimizer="adam")
    callback = StopOnNonFiniteLoss()
    callback.set_model(resnet)
    callback._snapshot()
    start = time.perf_counter()
    for _ in range(20):
        callback._snapshot()
    snapshot = (time.perf_counter() - start) / 20
    step = 256 / 34  # s per batch of 256, ResNet-18 SimCLR on TensorFlow (FACTS.md: 34 img/s)
    print(f"ResNet-18 SimCLR snapshot per batch: {snapshot * 1000:.1f} ms = {snapshot / step:.5f} of a batch-256 step")


if __name__ == "__main__":
    main()
