"""The staple methods end to end: the shared harness on each, their defaults, teacher and queues."""

import keras
import numpy as np
import pytest

import kerassl
from tests.method_harness import run_method_test, tiny_data

SMALL = dict(projection_hidden_dim=16, projection_dim=8)


def make_byol(encoder, **kwargs):
    return kerassl.BYOL(encoder, prediction_hidden_dim=16, seed=0, **{**SMALL, **kwargs})


def make_moco_v3(encoder, **kwargs):
    return kerassl.MoCo(encoder, prediction_hidden_dim=16, seed=0, **{**SMALL, **kwargs})


def make_moco_v2(encoder, **kwargs):
    return kerassl.MoCo(encoder, version="v2", queue_size=12, seed=0, **{**SMALL, **kwargs})


def make_simsiam(encoder, **kwargs):
    return kerassl.SimSiam(encoder, prediction_hidden_dim=4, seed=0, **{**SMALL, **kwargs})


def make_barlow_twins(encoder, **kwargs):
    return kerassl.BarlowTwins(encoder, seed=0, **{**SMALL, **kwargs})


def make_vicreg(encoder, **kwargs):
    return kerassl.VICReg(encoder, seed=0, **{**SMALL, **kwargs})


def make_nnclr(encoder, **kwargs):
    return kerassl.NNCLR(encoder, prediction_hidden_dim=16, queue_size=12, seed=0, **{**SMALL, **kwargs})


def make_swav(encoder, **kwargs):
    kwargs.setdefault("num_prototypes", 10)
    kwargs.setdefault("num_local_crops", 2)
    kwargs.setdefault("queue_size", 16)
    kwargs.setdefault("freeze_prototypes_steps", 1)
    return kerassl.SwAV(encoder, seed=0, **{**SMALL, **kwargs})


TEACHER_METRICS = ("embedding_std", "teacher_momentum")
METHODS = {
    "byol": (make_byol, TEACHER_METRICS),
    "moco_v3": (make_moco_v3, TEACHER_METRICS),
    "moco_v2": (make_moco_v2, TEACHER_METRICS),
    "simsiam": (make_simsiam, ("embedding_std",)),
    "barlow_twins": (make_barlow_twins, ("embedding_std",)),
    "vicreg": (make_vicreg, ("embedding_std", "invariance", "variance", "covariance")),
    "nnclr": (make_nnclr, ("embedding_std",)),
    "swav": (make_swav, ("embedding_std",)),
}
# The four input kinds cost a compiled step each (10 s and more on JAX): run them
# for one method with a teacher and one with a queue; the others fit on uint8 arrays.
DATA_VARIANTS = ("byol", "swav")


@pytest.mark.parametrize("name", sorted(METHODS))
def test_method_contract(name, make_encoder, tmp_path):
    make, metrics = METHODS[name]
    run_method_test(make, make_encoder, tmp_path, expected_metrics=metrics, data_variants=name in DATA_VARIANTS)
