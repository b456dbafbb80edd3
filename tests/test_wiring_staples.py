"""Wiring of the staples: each method hands its loss the pairs and targets its paper names.

The pure losses are checked against the authors' code in `tests/test_losses_staples.py`;
these tests check what each method's `compute_loss` feeds them. Each one calls
`compute_loss` in evaluation mode (no teacher or queue update) on hand-made outputs, so
every view, projection, prediction and teacher projection is known, and compares the
loss with the paper's pairing written out here: BYOL and MoCo v3 predict the teacher's
projection of the *other* view; SimSiam the other view's stop-gradient projection;
MoCo v2's keys come from the second view and its negatives from the queue (and its
one-sided `call` sends view 1 to the encoder only, view 2 to the teacher only); NNCLR swaps
in the nearest neighbour of each view's projection from its support set; Barlow Twins
and VICReg use the method's own weights. Each test fails under one of the staples'
breakages in `tools/mutations.py`.
"""

import keras
import numpy as np
import pytest
from keras import ops

from kerassl import losses
from tests.conftest import tiny_encoder
from tests.test_losses_staples import moco_v2_reference
from tests.test_staples import (
    make_barlow_twins,
    make_byol,
    make_moco_v2,
    make_moco_v3,
    make_nnclr,
    make_simsiam,
)

N, D = 6, 8  # images per view, projection size (tests.test_staples.SMALL)


def built(make, **kwargs):
    model = make(tiny_encoder(), **kwargs)
    model.build((None, 16, 16, 3))
    return model


def outputs(*names, seed=0):
    """Hand-made training outputs: two views of N images each, stacked as `call` stacks them."""
    rng = np.random.default_rng(seed)
    made = {name: rng.normal(size=(2 * N, D)).astype("float32") for name in names}
    made["features"] = rng.normal(size=(2 * N, 16)).astype("float32")
    return made


def filled_bank(bank, seed):
    """Fills a memory bank with known unit rows; returns them."""
    rows = np.random.default_rng(seed).normal(size=(bank.size, D)).astype("float32")
    rows /= np.linalg.norm(rows, axis=-1, keepdims=True)
    bank.bank.assign(rows)
    bank.filled.assign(bank.size)
    return rows


def halves(array):
    return array[:N], array[N:]


def loss_of(model, y_pred):
    images = np.zeros((N, 16, 16, 3), "float32")
    return float(ops.convert_to_numpy(model.compute_loss(images, y_pred=y_pred, training=False)))


def value(tensor):
    return float(ops.convert_to_numpy(tensor))


def test_byol_predicts_the_teacher_projection_of_the_other_view():
    model = built(make_byol)
    y_pred = outputs("projections", "predictions", "teacher_projections")
    p1, p2 = halves(y_pred["predictions"])
    t1, t2 = halves(y_pred["teacher_projections"])
    expected = value(losses.byol_loss(p1, p2, t1, t2))  # D(p1, t2) + D(p2, t1)
    np.testing.assert_allclose(loss_of(model, y_pred), expected, rtol=1e-5)
    # The pairing matters: the same view's target, or the online projection, gives another loss.
    assert abs(expected - value(losses.byol_loss(p1, p2, t2, t1))) > 1e-2


def test_moco_v3_contrasts_each_query_with_the_keys_of_the_other_view():
    model = built(make_moco_v3)
    y_pred = outputs("projections", "predictions", "teacher_projections")
    q1, q2 = halves(y_pred["predictions"])
    k1, k2 = halves(y_pred["teacher_projections"])
    t = model.temperature
    expected = value(losses.moco_v3_loss(q1, k2, t)) + value(losses.moco_v3_loss(q2, k1, t))
    np.testing.assert_allclose(loss_of(model, y_pred), expected, rtol=1e-5)


def test_moco_v2_queries_the_first_view_against_keys_of_the_second_and_the_queue():
    model = built(make_moco_v2)
    queue = filled_bank(model.queue, seed=1)
    # One-sided: `call` gives the loss view 1's projections and view 2's keys, N rows each.
    y_pred = {name: rows[:N] for name, rows in outputs("projections", "teacher_projections").items()}
    q1, k2 = y_pred["projections"], y_pred["teacher_projections"]
    expected = moco_v2_reference(q1, k2, queue, model.temperature)
    np.testing.assert_allclose(loss_of(model, y_pred), expected, rtol=1e-5)


def test_symmetric_moco_v2_averages_both_directions_against_the_queue_before_the_step():
    model = built(make_moco_v2, symmetric=True, queue_size=4 * N)
    queue = filled_bank(model.queue, seed=1)
    y_pred = outputs("projections", "teacher_projections")
    q1, q2 = halves(y_pred["projections"])
    k1, k2 = halves(y_pred["teacher_projections"])
    t = model.temperature
    expected = 0.5 * (moco_v2_reference(q1, k2, queue, t) + moco_v2_reference(q2, k1, queue, t))
    np.testing.assert_allclose(loss_of(model, y_pred), expected, rtol=1e-5)
    assert abs(expected - 0.5 * (moco_v2_reference(q1, k1, queue, t) + moco_v2_reference(q2, k2, queue, t))) > 1e-2
    # A training step scores both terms against the same queue, then enqueues view 2's
    # keys and view 1's (2N rows) over the oldest rows.
    images = np.zeros((N, 16, 16, 3), "float32")
    trained = value(model.compute_loss(images, y_pred=y_pred, training=True))
    np.testing.assert_allclose(trained, expected, rtol=1e-5)
    unit = lambda z: z / np.linalg.norm(z, axis=-1, keepdims=True)  # noqa: E731
    bank = ops.convert_to_numpy(model.queue.bank)
    np.testing.assert_allclose(bank[: 2 * N], np.concatenate([unit(k2), unit(k1)]), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(bank[2 * N :], queue[2 * N :])
    assert int(ops.convert_to_numpy(model.queue.pointer)) == 2 * N


class Negative(keras.layers.Layer):
    """A fixed second "view": 1 - images, so each view's outputs can be told apart."""

    def call(self, images, training=None):
        return 1.0 - images


@pytest.mark.parametrize("symmetric", [False, True])
def test_one_sided_moco_v2_sends_view_1_to_the_encoder_and_view_2_to_the_teacher(symmetric):
    model = built(make_moco_v2, symmetric=symmetric, augmenter=keras.layers.Identity(), second_augmenter=Negative())
    view1 = np.random.default_rng(0).uniform(size=(N, 16, 16, 3)).astype("float32")
    view2 = 1.0 - view1
    y_pred = model(view1, training=True)  # the first step: the teacher starts as the student

    def projections(views):  # what the online encoder and projector make of `views`, as one batch
        features = model.encoder(views, training=True)
        return ops.convert_to_numpy(model.projection_head(features, training=True))

    if symmetric:  # both views through both networks
        online = teacher = projections(np.concatenate([view1, view2]))
    else:  # view 1 through the encoder alone, view 2 through the teacher alone
        online, teacher = projections(view1), projections(view2)
    assert tuple(y_pred["features"].shape) == (len(online), 16)
    np.testing.assert_allclose(ops.convert_to_numpy(y_pred["projections"]), online, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(ops.convert_to_numpy(y_pred["teacher_projections"]), teacher, rtol=1e-4, atol=1e-5)


def test_simsiam_predicts_the_other_views_projection():
    model = built(make_simsiam)
    y_pred = outputs("projections", "predictions")
    p1, p2 = halves(y_pred["predictions"])
    z1, z2 = halves(y_pred["projections"])
    expected = value(losses.simsiam_loss(p1, p2, z1, z2))
    np.testing.assert_allclose(loss_of(model, y_pred), expected, rtol=1e-5)
    assert abs(expected - value(losses.simsiam_loss(p1, p2, z2, z1))) > 1e-2


def test_nnclr_swaps_in_each_projections_nearest_neighbour_from_the_support_set():
    model = built(make_nnclr)
    support = filled_bank(model.support_set, seed=2)
    y_pred = outputs("projections", "predictions")
    z1, z2 = halves(y_pred["projections"])
    p1, p2 = halves(y_pred["predictions"])

    def nearest(z):  # cosine similarity; the support rows are unit vectors
        return support[np.argmax((z / np.linalg.norm(z, axis=-1, keepdims=True)) @ support.T, axis=1)]

    t = model.temperature
    expected = 0.5 * (value(losses.nnclr_loss(nearest(z1), p2, t)) + value(losses.nnclr_loss(nearest(z2), p1, t)))
    np.testing.assert_allclose(loss_of(model, y_pred), expected, rtol=1e-5)


def test_barlow_twins_uses_its_own_off_diagonal_weight():
    model = built(make_barlow_twins, off_diagonal_weight=0.5)
    y_pred = outputs("projections")
    z1, z2 = halves(y_pred["projections"])
    expected = value(losses.barlow_twins(z1, z2, 0.5))
    np.testing.assert_allclose(loss_of(model, y_pred), expected, rtol=1e-5)
    assert abs(expected - value(losses.barlow_twins(z1, z2, 0.0))) > 1e-2


@pytest.mark.parametrize("weights", [(25.0, 25.0, 1.0), (1.0, 5.0, 3.0)])
def test_vicreg_weighs_its_three_terms_with_its_own_weights(weights):
    from tests.test_staples import make_vicreg

    invariance, variance, covariance = weights
    model = built(make_vicreg, invariance_weight=invariance, variance_weight=variance,
                  covariance_weight=covariance)
    y_pred = outputs("projections")
    z1, z2 = halves(y_pred["projections"])
    expected = value(losses.vicreg(z1, z2, invariance, variance, covariance))
    np.testing.assert_allclose(loss_of(model, y_pred), expected, rtol=1e-5)
    # ... and reports each term as its metric.
    _, terms = losses.vicreg(z1, z2, invariance, variance, covariance, return_terms=True)
    reported = [value(t.result()) for t in (model.invariance_tracker, model.variance_tracker, model.covariance_tracker)]
    np.testing.assert_allclose(reported, [value(term) for term in terms], rtol=1e-5)

