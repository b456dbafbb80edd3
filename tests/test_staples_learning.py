"""The staples learn: each method's encoder beats random inits by kNN on MNIST (slow).

One recipe for all (`staple_on_mnist`): 2,000 MNIST training images,
small_convnet(width 16, 64 pooled features), BYOL's asymmetric views at
28 px with crop scale (0.4, 1) and no flips (a mirrored digit is another
shape), heads a quarter of the papers' width or less, AdamW(1e-3), batch
128, 20 epochs = 320 steps; kNN (k=20) with the first 1,000 training images
as bank and 1,000 test images as queries, against the mean of 5 random
inits (the DINO tests' protocol, tests/test_dino.py). `python -m
tests.test_staples_learning [name ...]` prints every method's figures.
"""

import sys

from tests.conftest import shared_data_file  # noqa: F401, I001  (first: it sets up the local Hub before keras)

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import kerassl  # noqa: E402
from tests.random_inits import mnist_convnet, mnist_knn, mnist_random_inits, mnist_subset  # noqa: E402


def views(seed):
    return dict(
        augmenter=kerassl.augment.byol_augmenter(28, 1, view=1, scale=(0.4, 1.0), flip=False, seed=seed),
        second_augmenter=kerassl.augment.byol_augmenter(28, 1, view=2, scale=(0.4, 1.0), flip=False, seed=seed),
    )


def swav_views(seed):
    return dict(
        augmenter=kerassl.augment.byol_augmenter(28, 1, view=1, scale=(0.4, 1.0), flip=False, seed=seed),
        local_augmenter=kerassl.augment.byol_augmenter(12, 1, view=2, scale=(0.1, 0.4), flip=False, seed=seed + 1),
    )


# Short-run settings per method (teachers start at momentum 0.99: 0.996 barely moves in 320 steps).
RECIPES = {
    "byol": lambda e, s: kerassl.BYOL(
        e, 512, 128, 512, momentum_start=0.99, seed=s, **views(s)),
    "moco_v3": lambda e, s: kerassl.MoCo(
        e, "v3", 512, 128, prediction_hidden_dim=512, temperature=0.2, momentum_start=0.99, seed=s, **views(s)),
    "moco_v2": lambda e, s: kerassl.MoCo(
        e, "v2", 512, 128, temperature=0.2, queue_size=1024, momentum_start=0.99, momentum_end=0.99, seed=s,
        **views(s)),
    "simsiam": lambda e, s: kerassl.SimSiam(
        e, 512, 512, projection_layers=2, prediction_hidden_dim=128, seed=s, **views(s)),
    "barlow_twins": lambda e, s: kerassl.BarlowTwins(e, 512, 512, seed=s, **views(s)),
    "vicreg": lambda e, s: kerassl.VICReg(e, 512, 512, seed=s, **views(s)),
    "nnclr": lambda e, s: kerassl.NNCLR(e, 512, 128, 512, queue_size=1024, seed=s, **views(s)),
    "swav": lambda e, s: kerassl.SwAV(
        e, 512, 128, num_prototypes=100, num_local_crops=2, freeze_prototypes_steps=16, seed=s, **swav_views(s)),
}


def encoder_fn():
    return mnist_convnet()


def knn_on_mnist(encoder):
    return mnist_knn(encoder)


def random_init_scores(seed=0, count=5):
    """kNN of `count` random-init encoders; the first is the init training starts from."""
    return mnist_random_inits(seed, count)["random_inits"]


def staple_on_mnist(name, seed=0, epochs=20, baselines=None):
    (x, _), _ = mnist_subset()
    knn = knn_on_mnist
    baselines = baselines or random_init_scores(seed)
    keras.utils.set_random_seed(seed)
    model = RECIPES[name](encoder_fn(), seed)
    model.compile(optimizer=keras.optimizers.AdamW(1e-3))
    history = model.fit(x, batch_size=128, epochs=epochs, verbose=0).history
    result = dict(
        method=name, random_init=baselines[0], random_init_mean=float(np.mean(baselines)), knn=knn(model.encoder),
        embedding_std=history["embedding_std"][-1], loss=history["loss"][-1],
    )
    print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in result.items()}, flush=True)
    return result


# Measured with `python -m tests.test_staples_learning` on TensorFlow (2 shared cores,
# load 11-15, 2026-12-04; about 3 min per method): random inits 0.561 (the one trained)
# and 0.592 mean of 5. kNN after training, and embedding_std * sqrt(projection dim)
# (1 for embeddings spread on the sphere, 0 at collapse):
#   byol 0.688 (0.81), simsiam 0.756 (0.99), barlow_twins 0.827 (0.81), vicreg 0.833 (0.84),
#   moco_v3 0.831 (1.00), moco_v2 0.806 (0.97), nnclr 0.810 (1.00), swav 0.723 (0.93).
# Each test asserts about half the measured gain over the random-init mean, and
# embedding_std * sqrt(dim) > 0.3. `make test-slow` runs them on TensorFlow only.
# On JAX (KERAS_BACKEND=jax, same recipe, 2026-12-04; JAX draws other inits: 0.728 for
# the one trained, 0.627 mean of 5): barlow_twins 0.818 (std x sqrt(512) 0.81), byol
# 0.565 (0.78): BYOL ended below both its own init and the mean; not investigated.
# The other six were not run on JAX.
MEASURED = {  # name: (margin over the random-init mean, projection dim)
    "byol": (0.05, 128),
    "simsiam": (0.08, 512),
    "barlow_twins": (0.12, 512),
    "vicreg": (0.12, 512),
    "moco_v3": (0.12, 128),
    "moco_v2": (0.10, 128),
    "nnclr": (0.10, 128),
    "swav": (0.06, 128),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(MEASURED))
def test_encoder_beats_random_inits_by_knn_on_mnist(name):
    margin, dim = MEASURED[name]
    result = staple_on_mnist(name)  # the random inits are measured once per process
    assert result["embedding_std"] * dim**0.5 > 0.3, result
    assert result["knn"] > result["random_init_mean"] + margin, result


if __name__ == "__main__":
    scores = random_init_scores()
    for method in sys.argv[1:] or sorted(RECIPES):
        staple_on_mnist(method, baselines=scores)
