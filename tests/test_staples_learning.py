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
# and 0.592 mean of 5. kNN after training (gain over the mean), and
# embedding_std * sqrt(projection dim) (1 for embeddings spread on the sphere, 0 at collapse):
#   byol 0.688 (+0.096; 0.81), simsiam 0.756 (+0.164; 0.99), barlow_twins 0.827 (+0.235; 0.81),
#   vicreg 0.833 (+0.241; 0.84), moco_v3 0.831 (+0.239; 1.00), moco_v2 0.806 (+0.214; 0.97),
#   nnclr 0.810 (+0.218; 1.00), swav 0.723 (+0.131; 0.93).
# moco_v2 after its step became one-sided (view 1 through the encoder only, view 2 through
# the teacher only; 2026-12-06, load 12-14, `pytest -m slow -k moco_v2`): 0.832 (+0.240; 0.97).
# On JAX (KERAS_BACKEND=jax, same recipe, 2026-12-06, load 5-10, 5-8 min per method under
# that load; JAX draws other inits: 0.728 for the one trained, 0.627 mean of 5):
#   byol 0.643 (+0.016; 0.80), simsiam 0.705 (+0.078; 0.99), barlow_twins 0.818 (+0.191; 0.81,
#   2026-12-04), vicreg 0.824 (+0.197; 0.84), moco_v3 0.806 (+0.179; 1.00), moco_v2 0.810 (+0.183; 0.97,
#   before the one-sided step; after it 0.801, +0.174, 0.96, load 2-3), nnclr 0.794 (+0.167; 1.00),
#   swav 0.731 (+0.104; 0.93).
# Seed 1 (inits 1-5; the trained init is seed 1's; idle machine, 2026-12-06, about 1 min per
# method on TF and 1.5 on JAX), kNN after training (gain over the mean of its 5 inits):
#   TF, mean 0.597: byol 0.661 (+0.064), simsiam 0.773 (+0.176), barlow_twins 0.793 (+0.196),
#   vicreg 0.788 (+0.191), moco_v3 0.809 (+0.212), moco_v2 0.786 (+0.189), nnclr 0.802 (+0.205),
#   swav 0.823 (+0.226).
#   JAX, mean 0.609: byol 0.651 (+0.042), simsiam 0.768 (+0.159), barlow_twins 0.813 (+0.204),
#   vicreg 0.829 (+0.220), moco_v3 0.822 (+0.213), moco_v2 0.814 (+0.205), nnclr 0.835 (+0.226),
#   swav 0.772 (+0.163).
# Every margin below is under both seeds' gains on its backend.
# BYOL variants tried on JAX, seed 0: momentum from 0.96 0.622; AdamW(3e-3) 0.654 (+0.027):
# neither fixes it, so BYOL keeps its recipe and on JAX asserts only that it beats the mean.
# BYOL on JAX: no backend bug found. With identical initial weights (saved on TF, loaded on
# JAX) and deterministic views (identity / Rescaling(0.7, 0.1)), BYOL's per-step loss agrees
# between the backends within 0.004 at each of 24 steps (3.9396 -> 0.8872 TF, 0.8871 JAX), and
# the EMA teacher equals m t + (1 - m) s exactly on both (BatchNorm moving statistics
# included in the EMA, as designed). What differs is the random draws (inits, views): from
# JAX's lucky first init (0.728) the same 320 steps end at 0.643, below that init.
# Each test asserts about half the measured gain over the random-init mean on its backend,
# and embedding_std * sqrt(dim) > 0.3.
MEASURED = {  # name: ({backend: margin over the random-init mean}, projection dim)
    "byol": (dict(tensorflow=0.05, jax=0.0), 128),
    "simsiam": (dict(tensorflow=0.08, jax=0.04), 512),
    "barlow_twins": (dict(tensorflow=0.12, jax=0.10), 512),
    "vicreg": (dict(tensorflow=0.12, jax=0.10), 512),
    "moco_v3": (dict(tensorflow=0.12, jax=0.09), 128),
    "moco_v2": (dict(tensorflow=0.10, jax=0.09), 128),
    "nnclr": (dict(tensorflow=0.10, jax=0.08), 128),
    "swav": (dict(tensorflow=0.06, jax=0.05), 128),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(MEASURED))
def test_encoder_beats_random_inits_by_knn_on_mnist(name):
    margins, dim = MEASURED[name]
    if keras.config.backend() not in margins:
        pytest.skip(f"{name}'s margin was not measured on {keras.config.backend()}")
    margin = margins[keras.config.backend()]
    result = staple_on_mnist(name)  # the random inits are measured once per process
    assert result["embedding_std"] * dim**0.5 > 0.3, result
    assert result["knn"] > result["random_init_mean"] + margin, result


if __name__ == "__main__":
    scores = random_init_scores()
    for method in sys.argv[1:] or sorted(RECIPES):
        staple_on_mnist(method, baselines=scores)
