"""The baseline of every "beats random init" learning test: the mean of several inits.

A random convnet's kNN accuracy varies widely with its draw (small_convnet on 2,000
MNIST images, seeds 0-9 on JAX: 0.547-0.728), so a single init is no baseline: unchanged
code once failed against a lucky draw on JAX. Tests compare with the mean of five.
"""

import keras
import numpy as np


def random_init_knn(encoder_fn, knn, seed, count=5):
    """kNN accuracies of `count` random inits (seeds `seed`, `seed + 1`, ...).

    Args:
        encoder_fn: callable() -> a fresh encoder.
        knn: callable(encoder) -> float.
        seed: int. The first entry is the init that a test trains from.
        count: int.

    Returns:
        dict with `random_init` (the first draw), `random_init_mean` and `random_inits`.
    """
    scores = []
    for offset in range(count):
        keras.utils.set_random_seed(seed + offset)
        scores.append(float(knn(encoder_fn())))
    return dict(random_init=scores[0], random_init_mean=float(np.mean(scores)), random_inits=scores)
