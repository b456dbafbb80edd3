"""The gathered forms of NT-Xent and the CLIP loss: local anchors against the global batch.

Split a batch in R slices; the mean over slices of each slice's loss (its rows
as anchors, the whole batch as candidates, labels offset by slice) must be the
one-device loss on the whole batch, which `tests/test_losses.py` and
`tests/test_clip.py` check against NumPy. The helpers of `kerassl.distributed`
are identities on one device.
"""

import keras
import numpy as np
import pytest

from kerassl import distributed, losses
from kerassl.losses.clip import clip_loss


def split_mean(loss_fn, a, b, replicas):
    rows = len(a) // replicas
    values = [
        keras.ops.convert_to_numpy(
            loss_fn(a[r * rows:(r + 1) * rows], b[r * rows:(r + 1) * rows], a, b, r * rows)
        )
        for r in range(replicas)
    ]
    return float(np.mean(values))


@pytest.mark.parametrize("replicas", [1, 2, 4])
@pytest.mark.parametrize("temperature", [0.1, 0.5])
def test_gathered_nt_xent_averages_to_the_global_loss(replicas, temperature):
    rng = np.random.default_rng(replicas)
    z1, z2 = (rng.normal(size=(8, 5)).astype("float32") for _ in range(2))
    full = float(keras.ops.convert_to_numpy(losses.nt_xent(z1, z2, temperature)))
    split = split_mean(
        lambda a, b, ga, gb, offset: losses.nt_xent(a, b, temperature, ga, gb, offset), z1, z2, replicas
    )
    np.testing.assert_allclose(split, full, rtol=1e-5)


@pytest.mark.parametrize("replicas", [1, 2, 4])
def test_gathered_clip_loss_averages_to_the_global_loss(replicas):
    rng = np.random.default_rng(replicas)
    images, texts = (rng.normal(size=(8, 5)).astype("float32") for _ in range(2))
    full = float(keras.ops.convert_to_numpy(clip_loss(images, texts, 10.0)))
    split = split_mean(lambda a, b, ga, gb, offset: clip_loss(a, b, 10.0, ga, gb, offset), images, texts, replicas)
    np.testing.assert_allclose(split, full, rtol=1e-5)


def test_masked_logits_are_minus_infinity_not_a_large_constant():
    assert losses.MASK_VALUE == float("-inf")
    z = np.ones((4, 3), "float32")  # identical embeddings: every logit ties with the masked one
    assert np.isfinite(keras.ops.convert_to_numpy(losses.nt_xent(z, z, 0.1)))
    assert np.isfinite(keras.ops.convert_to_numpy(losses.uniformity(z)))


def test_one_gathered_view_without_the_other_is_refused():
    z = np.ones((4, 3), "float32")
    with pytest.raises(ValueError, match="both"):
        losses.nt_xent(z, z, 0.5, batch_z1=z)
    with pytest.raises(ValueError, match="both"):
        clip_loss(z, z, 1.0, batch_images=z)


def test_helpers_are_identities_on_one_device():
    x = keras.ops.ones((4, 2))
    assert distributed.num_replicas() == 1 and distributed.device_count() == 1
    assert distributed.all_gather(x) is x and distributed.mean_across_replicas(x) is x
    assert distributed.scale_for_replicas(x) is x and distributed.replica_index() == 0
    assert distributed.gather_batch(x, x) == (None, None, 0)
    assert distributed.check_batch_divides(7) == 1


def test_random_streams_and_clipping_change_nothing_on_one_device():
    """One device: a covered SeedGenerator draws what an untouched one draws, its state
    advances the same, and a clipping optimizer clips as Keras does."""
    covered, plain = keras.random.SeedGenerator(7), keras.random.SeedGenerator(7)
    layer = keras.layers.Layer()
    layer.generator = covered
    assert distributed.per_replica_random_streams(layer) == 1
    assert distributed.per_replica_random_streams(layer) == 1  # idempotent
    for _ in range(2):
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(keras.random.uniform((5,), seed=covered)),
            keras.ops.convert_to_numpy(keras.random.uniform((5,), seed=plain)),
        )
    np.testing.assert_array_equal(np.array(covered.state), np.array(plain.state))
    grads = [keras.ops.convert_to_tensor(np.full((3,), 4.0, "float32"))]
    optimizer = distributed.clip_after_summing(keras.optimizers.SGD(global_clipnorm=1.0))
    clipped = keras.ops.convert_to_numpy(optimizer._clip_gradients(grads)[0])
    np.testing.assert_allclose(clipped, np.full((3,), 1 / np.sqrt(3)), rtol=1e-6)
    assert distributed.logs_for_multi_worker({"loss": 1.0}) == {"loss": 1.0}
