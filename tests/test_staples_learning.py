"""SimCLR and the staples learn: each encoder beats random inits by kNN on MNIST (slow).

One recipe for all (`staple_on_mnist`): 2,000 MNIST training images,
small_convnet(width 16, 64 pooled features), BYOL's asymmetric views at
28 px with crop scale (0.4, 1) and no flips (a mirrored digit is another
shape; SimCLR: its own views with the same crops), heads a quarter of the
papers' width or less, AdamW(1e-3), 160 steps (5 epochs at batch 64 or 10
at 128) or 320 (MoCo v2: 10 epochs at 64; BYOL: 20 at 128), per method in
`EPOCHS` and `BATCH_SIZES`; kNN (k=20) with the first 1,000 training images
as bank and 1,000 test images as queries, against the mean of 5 random inits
(the DINO tests' protocol, tests/test_dino.py). `python -m
tests.test_staples_learning [name ...] [--seed S] [--epochs E] [--batch-size B]`
prints every method's figures.
"""

import time

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
    "simclr": lambda e, s: kerassl.SimCLR(
        e, 512, 128, temperature=0.2, seed=s,
        augmenter=kerassl.augment.simclr_augmenter(28, 1, scale=(0.4, 1.0), flip=False, seed=s)),
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


def staple_on_mnist(name, seed=0, epochs=None, batch_size=None, baselines=None):
    epochs = epochs or EPOCHS[name]
    batch_size = batch_size or BATCH_SIZES.get(name, 128)
    (x, _), _ = mnist_subset()
    knn = knn_on_mnist
    baselines = baselines or random_init_scores(seed)
    keras.utils.set_random_seed(seed)
    model = RECIPES[name](encoder_fn(), seed)
    model.compile(optimizer=keras.optimizers.AdamW(1e-3))
    start = time.perf_counter()
    history = model.fit(x, batch_size=batch_size, epochs=epochs, verbose=0).history
    result = dict(
        method=name, epochs=epochs, batch_size=batch_size, fit_seconds=time.perf_counter() - start,
        random_init=baselines[0],
        random_init_mean=float(np.mean(baselines)), knn=knn(model.encoder),
        embedding_std=history.get("embedding_std", [None])[-1], loss=history["loss"][-1],
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
#
# 10 epochs (160 steps) instead of 20, for CI's time (2026-12-07, idle machine, one TF and
# one JAX process side by side, `python -m tests.test_staples_learning --epochs 10 --seed S`),
# kNN (gain over the mean of its 5 inits) for seeds 0 / 1:
#   TF (means 0.592 / 0.597): simclr 0.812 (+0.220) / 0.796 (+0.199), barlow_twins 0.795
#   (+0.203) / 0.718 (+0.121), vicreg 0.787 (+0.195) / 0.728 (+0.131), moco_v3 0.756 (+0.164)
#   / 0.741 (+0.144), nnclr 0.721 (+0.129) / 0.659 (+0.062), simsiam 0.665 (+0.073) / 0.684
#   (+0.087); and the three that keep 20 epochs: moco_v2 0.762 (+0.170) / 0.642 (+0.045),
#   swav 0.633 (+0.041) / 0.662 (+0.065), byol 0.586 (-0.006) / 0.580 (-0.017).
#   JAX (means 0.627 / 0.609): simclr 0.815 (+0.188) / 0.831 (+0.222), barlow_twins 0.789
#   (+0.162) / 0.737 (+0.128), vicreg 0.745 (+0.118) / 0.752 (+0.143), moco_v3 0.748 (+0.121)
#   / 0.755 (+0.146), nnclr 0.718 (+0.091) / 0.749 (+0.140), simsiam 0.694 (+0.067) / 0.670
#   (+0.061); moco_v2 0.697 (+0.070) / 0.712 (+0.103), swav 0.675 (+0.048) / 0.653 (+0.044),
#   byol 0.594 (-0.033) / 0.570 (-0.039).
# So the six whose gains stay clear at 160 steps trained 10 epochs; BYOL, MoCo v2 and SwAV
# kept 20 until the measurements of 2026-12-08 below. SimCLR (no slow test of its own outside
# the TF-only demo) joined here with these figures. embedding_std * sqrt(dim) at 10 epochs:
# 0.80-1.00 (SimCLR logs none); at the budgets of 2026-12-08 below: 0.78-0.99.
# Each test asserts about half the smallest gain measured over the random-init mean on its
# backend, at its epochs, and embedding_std * sqrt(dim) > 0.3.
#
# 2026-12-08 (idle machine, one TF and one JAX process side by side), for CI's time:
# - MoCo v2 at batch 64 for 10 epochs (320 steps of half the images: its step is one-sided,
#   so each is cheap; fit 30-46 s against 80-90 s for 20 epochs at 128), `--batch-size 64
#   --epochs 10`, seeds 0 / 1: TF 0.744 (+0.152) / 0.705 (+0.108), JAX 0.750 (+0.123) /
#   0.743 (+0.134); embedding_std * sqrt(128) 0.95.
# - SwAV at 10 epochs of 128, from the figures above: the smallest gain is +0.041 (TF) and
#   +0.044 (JAX), so its margin is 0.02. (At batch 64 for 10 epochs it gains +0.070 TF and
#   +0.077 JAX on seed 0, but takes as long as 20 epochs at 128.)
# - BYOL keeps 20 epochs at 128. Tried at 10 epochs of 128, seed 0: momentum 0.99 constant,
#   TF 0.589 (-0.003), JAX 0.619 (-0.008); 0.9 constant, JAX 0.567 (-0.060). At 10 epochs of
#   64 (320 steps), seeds 0 / 1: TF 0.675 (+0.083) / 0.592 (-0.005), JAX 0.628 (+0.001) /
#   0.637 (+0.028).
# - SimCLR, Barlow Twins, VICReg and MoCo v3 at batch 64 for 5 epochs: the same 160 steps
#   on half the images each (fit about 25 s on TF against about 40 s), `--batch-size 64
#   --epochs 5`, kNN (gain over the mean of its 5 inits) for seeds 0 / 1:
#   TF: simclr 0.804 (+0.212) / 0.799 (+0.202), barlow_twins 0.745 (+0.153) / 0.672 (+0.075),
#   vicreg 0.750 (+0.158) / 0.677 (+0.080), moco_v3 0.748 (+0.156) / 0.714 (+0.117).
#   JAX: simclr 0.805 (+0.178) / 0.798 (+0.189), barlow_twins 0.765 (+0.138) / 0.706 (+0.097),
#   vicreg 0.760 (+0.133) / 0.693 (+0.084), moco_v3 0.723 (+0.096) / 0.735 (+0.126).
#   SimSiam and NNCLR keep batch 128: at 64 SimSiam did not learn (TF +0.016 / -0.008, JAX
#   +0.007 / +0.000) and NNCLR's gain shrank (TF +0.114 / +0.032, JAX +0.069 on seed 0).
EPOCHS = dict(  # epochs of 2,000 images: 16 steps at batch 128, 32 at 64 (`BATCH_SIZES`)
    simclr=5, barlow_twins=5, vicreg=5, moco_v3=5, nnclr=10, simsiam=10, moco_v2=10, swav=10, byol=20,
)
BATCH_SIZES = dict(simclr=64, barlow_twins=64, vicreg=64, moco_v3=64, moco_v2=64)  # the others: 128
MEASURED = {  # name: ({backend: margin over the random-init mean}, projection dim or None)
    "simclr": (dict(tensorflow=0.10, jax=0.09), None),
    "byol": (dict(tensorflow=0.05, jax=0.0), 128),
    "simsiam": (dict(tensorflow=0.03, jax=0.03), 512),
    "barlow_twins": (dict(tensorflow=0.04, jax=0.05), 512),
    "vicreg": (dict(tensorflow=0.04, jax=0.04), 512),
    "moco_v3": (dict(tensorflow=0.06, jax=0.05), 128),
    "moco_v2": (dict(tensorflow=0.05, jax=0.06), 128),
    "nnclr": (dict(tensorflow=0.03, jax=0.04), 128),
    "swav": (dict(tensorflow=0.02, jax=0.02), 128),
}


def by_cost(name):
    """Sort key, the longest test first: more epochs of the 2,000 images, then larger batches."""
    return (-EPOCHS[name], -BATCH_SIZES.get(name, 128), name)


# The longest first: pytest-xdist cannot take a worker's last queued tests from it, so a
# long test at the end of one queue leaves the other worker idle (80 s at the end of
# `make test-slow-jax` on 2026-12-08, with SwAV last).
@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(MEASURED, key=by_cost))
def test_encoder_beats_random_inits_by_knn_on_mnist(name):
    margins, dim = MEASURED[name]
    if keras.config.backend() not in margins:
        pytest.skip(f"{name}'s margin was not measured on {keras.config.backend()}")
    margin = margins[keras.config.backend()]
    result = staple_on_mnist(name)  # the random inits are measured once per process
    if dim is not None:
        assert result["embedding_std"] * dim**0.5 > 0.3, result
    assert result["knn"] > result["random_init_mean"] + margin, result


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Prints each staple's kNN against its random inits.")
    parser.add_argument("methods", nargs="*", default=sorted(RECIPES))
    parser.add_argument("--seed", type=int, default=0, help="the init trained and the first of the 5 inits")
    parser.add_argument("--epochs", type=int, default=None, help="default: each method's in EPOCHS")
    parser.add_argument("--batch-size", type=int, default=None, help="default: BATCH_SIZES, else 128")
    args = parser.parse_args()
    scores = random_init_scores(args.seed)
    for method in args.methods:
        staple_on_mnist(
            method, seed=args.seed, epochs=args.epochs, batch_size=args.batch_size, baselines=scores)
