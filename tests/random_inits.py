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


def mnist_subset():
    """The MNIST subset of the learning tests: 2,000 training and 1,000 test images."""
    from tests.conftest import shared_data_file
    import kerassl

    return kerassl.datasets.mnist(path=shared_data_file("mnist.npz"), train_limit=2000, test_limit=1000)


def mnist_knn(encoder):
    """kNN (k=20) of the MNIST learning tests: the first 1,000 training images as bank, 1,000 test queries."""
    import kerassl

    (x, y), (x_test, y_test) = mnist_subset()
    return kerassl.evaluate.knn_accuracy(encoder, x[:1000], y[:1000], x_test, y_test, k=20, verbose=False)


def mnist_convnet(input_shape=(28, 28, 1)):
    """small_convnet(width 16, 64 pooled features), the encoder of the MNIST learning tests."""
    import kerassl

    return kerassl.backbones.small_convnet(input_shape=input_shape, width=16, feature_dim=None)


_MNIST_INITS = {}


def mnist_random_inits(seed=0, count=5):
    """`random_init_knn` of `mnist_convnet` under `mnist_knn`, computed once per process.

    RotNet, Jigsaw, DINO, the autoencoder and the eight staples all start from
    these inits and score with this kNN, so one test session measures them once
    (5 kNN evaluations instead of 5 per test). The weights do not depend on
    the declared input size, so Jigsaw's (None, None, 1) encoder draws the same.
    """
    key = (keras.config.backend(), seed, count)
    if key not in _MNIST_INITS:
        _MNIST_INITS[key] = random_init_knn(mnist_convnet, mnist_knn, seed, count)
    return dict(_MNIST_INITS[key], random_inits=list(_MNIST_INITS[key]["random_inits"]))
