"""One training step on 4 devices equals one step on one device over the same global batch.

Run in a process of its own with 4 virtual devices (see conftest.py): on JAX
under `keras.distribution.DataParallel`, on TensorFlow under a
`MirroredStrategy` over 4 logical CPUs. Each test builds the same method
twice with the same weights, takes one SGD step on one device and one on 4
devices over the same 8 images, and compares the logged loss and every
updated weight. Augmentation is the identity (and MAE's masks a function of
the image), so both runs see the same views: what is compared is the
distributed arithmetic (gathered negatives, labels offset by replica, the loss
scaled by 1 / replicas, DINO's centre averaged, BatchNorm statistics over the
global batch, gradient clipping of the summed gradient).

Random views are not compared with one device: under a MirroredStrategy each
replica draws its own stream (`distributed.per_replica_random_streams`), so
4 replicas cannot draw the views one device draws for the same 8 images; that
is why these comparisons fix the views (identity augmenters, MAE masks from
the image content). What the streams must do is tested on its own: replicas
draw different views and masks for identical images, and the seed states
advance as on one device.

Known limit: with `synchronize_batch_norm` on a DINO whose teacher has
BatchNorm layers, TensorFlow's collective all-reduce failed (InternalError
after minutes) on 4 logical CPUs; the DINO test uses a ViT and a head without
BatchNorm.
"""

import contextlib
import functools

import keras
import numpy as np
import pytest

import kerassl
from kerassl import distributed
from kerassl.methods import mae as mae_module
from kerassl.text import TextEncoder, Tokenizer
from tests.conftest import tiny_encoder
from tests.distributed.conftest import DEVICES

BATCH = 8
RTOL = 1e-5
TENSORFLOW = keras.config.backend() == "tensorflow"


@functools.lru_cache(maxsize=None)
def mirrored_strategy():
    """One strategy for the process: a second MirroredStrategy over the same CPUs
    cancels the first one's collectives ("Function was cancelled")."""
    import tensorflow as tf

    strategy = tf.distribute.MirroredStrategy([f"/cpu:{i}" for i in range(DEVICES)])
    assert strategy.num_replicas_in_sync == DEVICES
    return strategy


@contextlib.contextmanager
def data_parallel():
    """The scope of the backend's data-parallel engine over DEVICES devices."""
    if TENSORFLOW:
        with mirrored_strategy().scope():
            yield
    else:
        devices = keras.distribution.list_devices("cpu")
        assert len(devices) >= DEVICES, devices
        with keras.distribution.DataParallel(devices=devices[:DEVICES]).scope():
            yield


def images(count=BATCH, size=16, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (count, size, size, 3)).astype("uint8")


def tiny_vit(size=16):
    return kerassl.backbones.vit(size, patch_size=4, hidden_dim=16, depth=1, num_heads=2)


def simclr():
    return kerassl.SimCLR(
        tiny_encoder(), projection_hidden_dim=16, projection_dim=8,
        augmenter=keras.layers.Identity(), seed=0,
    )


def clip():
    tokenizer = Tokenizer(None, max_length=8)
    text = TextEncoder(tokenizer.vocab_size, max_length=8, width=8, depth=1, num_heads=2)
    return kerassl.CLIP(tiny_encoder(), text, embed_dim=8, tokenizer=tokenizer, seed=0)


def dino():
    # A ViT and no BatchNorm in the head: synchronized BatchNorm inside DINO's
    # frozen teacher stalls TensorFlow's collectives (see the module docstring).
    return kerassl.DINO(
        tiny_vit(), head_batch_norm=False, head_hidden_dim=16, head_bottleneck_dim=8, head_output_dim=32,
        num_local_crops=2, local_crop_size=8, global_augmenter=keras.layers.Identity(),
        local_augmenter=keras.layers.Resizing(8, 8), momentum_start=0.9, seed=0,
        # DINO's default clipnorm (3.0) stays on: the summed gradient is clipped
        # (distributed.clip_after_summing), as on one device.
    )


def mae():
    return kerassl.MAE(
        tiny_vit(), decoder_dim=16, decoder_depth=1, decoder_num_heads=2,
        augmenter=keras.layers.Identity(), seed=0,
    )


def content_masking(images):
    """MAE masks that depend on each image only, so any split of the batch draws the same ones."""

    def masking(batch_size, num_patches, num_masked, seed, noise=None):
        patches = kerassl.backbones.vit.patchify(images_in_step[0], 4)
        noise = keras.ops.mean(patches, axis=-1) + keras.ops.arange(num_patches, dtype="float32") * 1e-3
        shuffle = keras.ops.cast(keras.ops.argsort(noise, axis=1), "int32")
        restore = keras.ops.cast(keras.ops.argsort(shuffle, axis=1), "int32")
        keep = num_patches - num_masked
        return shuffle[:, :keep], restore, keras.ops.cast(restore >= keep, "float32")

    images_in_step = []
    return masking, images_in_step


NAMES = []  # the weights' paths in the last step, for messages
METHODS = {"simclr": simclr, "clip": clip, "dino": dino, "mae": mae}


def training_data(name):
    x = images()
    if name == "clip":
        tokens = np.random.default_rng(1).integers(1, 200, (BATCH, 8)).astype("int32")
        return (x, tokens)
    return x


def sgd():
    return keras.optimizers.SGD(0.5)


def one_step(name, on_devices, initial=None, monkeypatch=None, make_optimizer=sgd):
    """(logged loss, weights after one SGD step) of method `name`."""
    keras.utils.set_random_seed(0)
    scope = data_parallel() if on_devices else contextlib.nullcontext()
    with scope:
        model = METHODS[name]()
        data = training_data(name)
        if name == "clip":
            model.build(((None, 16, 16, 3), (None, 8)))
        else:
            model.build((None, 16, 16, 3))
        if on_devices and TENSORFLOW:
            # Each replica would normalize with its own 2 images otherwise.
            distributed.synchronize_batch_norm(model)
        if initial is not None:
            model.set_weights(initial)
        start = [np.array(w) for w in model.get_weights()]
        model.compile(optimizer=make_optimizer())
        if name == "mae":
            masking, holder = content_masking(data)
            original_call = model.masked_forward

            def masked_forward(views, training, **kwargs):
                holder[:] = [views]
                return original_call(views, training, **kwargs)

            monkeypatch.setattr(model, "masked_forward", masked_forward)
            monkeypatch.setattr(mae_module, "random_masking", masking)
        history = model.fit(data, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
    NAMES[:] = [w.path for w in model.weights]
    return history.history["loss"][0], start, [np.array(w) for w in model.get_weights()]


def relative_gap(actual, expected):
    return float(np.linalg.norm(actual - expected) / max(np.linalg.norm(expected), 1e-12))


def assert_same_step(name, monkeypatch, make_optimizer=sgd, update_rtol=1e-3):
    """Same loss (1e-5), same weights (1e-5 relative, all weights together) and the same
    update of every weight tensor (1e-3 relative: synchronized BatchNorm sums moments
    in another order, so single elements move by float32 round-off). Returns the loss
    and the relative gap of the whole update (all float weights together), which must
    be within `update_rtol`."""
    loss_one, start, after_one = one_step(name, False, monkeypatch=monkeypatch, make_optimizer=make_optimizer)
    loss_many, start_many, after_many = one_step(
        name, True, initial=start, monkeypatch=monkeypatch, make_optimizer=make_optimizer
    )
    for a, b in zip(start, start_many):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(loss_many, loss_one, rtol=RTOL)
    floats = [i for i, w in enumerate(after_one) if np.issubdtype(w.dtype, np.floating)]
    for i in set(range(len(after_one))) - set(floats):
        np.testing.assert_array_equal(after_many[i], after_one[i])
    flat = lambda ws: np.concatenate([ws[i].ravel() for i in floats])  # noqa: E731
    weight_gap = relative_gap(flat(after_many), flat(after_one))
    update_gaps = {
        NAMES[i]: relative_gap(after_many[i] - start[i], after_one[i] - start[i])
        for i in floats
        # Weights whose true gradient is 0 move by round-off (1e-8) only.
        if np.linalg.norm(after_one[i] - start[i]) > 1e-5
    }
    assert update_gaps, "the step changed no weight: the comparison would prove nothing"
    assert weight_gap <= RTOL, f"the weights differ by {weight_gap:.2e} (relative)"
    worst = max(update_gaps, key=update_gaps.get)
    assert update_gaps[worst] <= 1e-3, f"the update of {worst} differs by {update_gaps[worst]:.2e}"
    total_update_gap = relative_gap(flat(after_many) - flat(start), flat(after_one) - flat(start))
    print(f"{name}: loss {loss_one:.6f} vs {loss_many:.6f}, weights {weight_gap:.1e}, "
          f"worst update {update_gaps[worst]:.1e}, whole update {total_update_gap:.1e} relative gap")
    assert total_update_gap <= update_rtol, f"the update differs by {total_update_gap:.2e} (relative)"
    return loss_one, total_update_gap


@pytest.mark.parametrize("name", sorted(METHODS))
def test_one_step_on_4_devices_equals_one_device_on_the_global_batch(name, monkeypatch):
    assert_same_step(name, monkeypatch)


@pytest.mark.skipif(not TENSORFLOW, reason="JAX's step sees the global batch: nothing is gathered")
def test_a_gather_whose_gradient_is_not_summed_fails_the_comparison(monkeypatch):
    """lightly#1528: keeping only the local replica's upstream gradient in the gather."""
    import tensorflow as tf

    def unsummed_gather(x):
        context = tf.distribute.get_replica_context()

        @tf.custom_gradient
        def gather(local):
            def grad(upstream):
                rows = tf.shape(local)[0]
                start = tf.cast(context.replica_id_in_sync_group, "int32") * rows
                return upstream[start : start + rows]

            return context.all_gather(tf.stop_gradient(local), axis=0), grad

        return gather(x)

    monkeypatch.setattr(distributed, "all_gather", unsummed_gather)
    with pytest.raises(AssertionError):
        assert_same_step("simclr", monkeypatch)


@pytest.mark.skipif(not TENSORFLOW, reason="the 1 / replicas scaling is TensorFlow's")
def test_an_unscaled_loss_fails_the_comparison(monkeypatch):
    monkeypatch.setattr(distributed, "scale_for_replicas", lambda loss: loss)
    with pytest.raises(AssertionError):
        assert_same_step("mae", monkeypatch)


def test_a_batch_that_does_not_divide_by_the_devices_gets_a_clear_error():
    with data_parallel():
        model = simclr()
        model.compile(optimizer="sgd")
        with pytest.raises(ValueError, match="does not divide by the 4 devices"):
            model.fit(images(12), batch_size=6, epochs=1, verbose=0)
        with pytest.raises(ValueError, match="last batch"):
            model.fit(images(10), batch_size=8, epochs=1, verbose=0)


# -- gradient clipping ---------------------------------------------------------------
# Tiny limits, so every variant clips: Keras would clip each replica's share and
# sum the clipped shares, up to 4 times the limit.
CLIPPING = {
    "global_clipnorm": {"global_clipnorm": 1e-3},
    "clipnorm": {"clipnorm": 1e-3},
    "clipvalue": {"clipvalue": 1e-5},
}


@pytest.mark.parametrize("clip", sorted(CLIPPING))
def test_a_clipped_step_on_4_devices_equals_the_clipped_step_on_one_device(clip, monkeypatch):
    make = lambda: keras.optimizers.SGD(0.5, **CLIPPING[clip])  # noqa: E731
    assert_same_step("simclr", monkeypatch, make, update_rtol=RTOL)


@pytest.mark.skipif(not TENSORFLOW, reason="Keras' per-replica clipping is TensorFlow's")
def test_clipping_each_replica_before_the_sum_fails_the_comparison(monkeypatch):
    """Keras 3.15's own order (clip in each replica, then sum) differs from one device."""
    monkeypatch.setattr(distributed, "clip_after_summing", lambda optimizer: optimizer)
    make = lambda: keras.optimizers.SGD(0.5, global_clipnorm=1e-3)  # noqa: E731
    with pytest.raises(AssertionError):
        assert_same_step("simclr", monkeypatch, make, update_rtol=RTOL)


# -- random streams per replica -------------------------------------------------------
class ViewRecorder(keras.layers.Layer):
    """Applies `inner` and keeps the global batch of what it returned (every replica's rows)."""

    def __init__(self, inner, shape, **kwargs):
        super().__init__(**kwargs)
        self.inner = inner
        self.seen = self.add_weight(
            shape=shape, initializer="zeros", trainable=False, name="seen",
            aggregation="only_first_replica",
        )

    def build(self, input_shape):
        self.inner.build(input_shape)

    def call(self, images, training=True):
        views = self.inner(images, training=training)
        self.record(views)
        return views

    def record(self, values):
        self.seen.assign(distributed.all_gather(keras.ops.stop_gradient(values)))


def replica_views_and_states(monkeypatch=None, streams=True):
    """One SimCLR step on 8 copies of one image under the strategy, and one MAE step
    likewise: (views by replica, masks by replica, SimCLR's seed states)."""
    if not streams:
        monkeypatch.setattr(distributed, "per_replica_random_streams", lambda model: 0)
    same = np.repeat(images(1), BATCH, axis=0)
    keras.utils.set_random_seed(0)
    with data_parallel():
        recorder = ViewRecorder(kerassl.augment.simclr_augmenter((16, 16), 3, seed=0), (BATCH, 16, 16, 3))
        model = kerassl.SimCLR(tiny_encoder(), projection_hidden_dim=16, projection_dim=8, augmenter=recorder, seed=0)
        model.compile(optimizer=sgd())
        model.fit(same, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
        masks = ViewRecorder(keras.layers.Identity(), (BATCH, 16))
        masks.build((None, 16))
        original = mae_module.random_masking

        def recorded_masking(*args, **kwargs):
            keep, restore, mask = original(*args, **kwargs)
            masks.record(mask)
            return keep, restore, mask

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(mae_module, "random_masking", recorded_masking)
            mae_model = mae()
            mae_model.mask_recorder = masks  # tracked, so JAX's stateless step writes it back
            mae_model.compile(optimizer=sgd())
            mae_model.fit(same, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
    per_replica = lambda v: np.array(v).reshape(DEVICES, BATCH // DEVICES, *v.shape[1:])  # noqa: E731
    states = [np.array(state) for state in model.random_states()]
    return per_replica(recorder.seen), per_replica(masks.seen), states


def assert_replicas_differ(per_replica, what):
    for replica in range(1, DEVICES):
        assert not np.allclose(per_replica[replica], per_replica[0]), (
            f"replica {replica} drew the same {what} as replica 0 for the same images"
        )


def test_each_replica_draws_its_own_views_and_masks():
    """TensorFlow: the replica index is folded into each seed. JAX: the DataParallel step
    draws once for the global batch, so its device slices differ with no help (checked,
    not assumed)."""
    views, masks, states = replica_views_and_states()
    assert views.std() > 0 and masks.sum() > 0, "nothing was recorded"
    assert_replicas_differ(views, "views")
    assert_replicas_differ(masks, "MAE masks")
    # The seed states advance as on one device: resume and saved states are unchanged.
    keras.utils.set_random_seed(0)
    model = kerassl.SimCLR(tiny_encoder(), projection_hidden_dim=16, projection_dim=8, seed=0)
    model.compile(optimizer=sgd())
    model.fit(np.repeat(images(1), BATCH, axis=0), batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
    one_device = [np.array(state) for state in model.random_states()]
    assert len(one_device) == len(states)
    for a, b in zip(states, one_device):
        np.testing.assert_array_equal(a, b)


@pytest.mark.skipif(not TENSORFLOW, reason="JAX's DataParallel step draws once for the global batch")
def test_without_per_replica_streams_every_replica_repeats_replica_0(monkeypatch):
    """The bug the streams fix (and proof that the test above can fail): mirrored seed
    states give every replica replica 0's draws."""
    views, masks, _ = replica_views_and_states(monkeypatch, streams=False)
    for replica in range(1, DEVICES):
        np.testing.assert_array_equal(views[replica], views[0])
        np.testing.assert_array_equal(masks[replica], masks[0])


# Every method the comparisons above do not cover trains under the backend's data-parallel
# engine: the staples (teachers, queues, local crops), the pretext methods, the autoencoder
# and the GAN with its own train step. Two steps on 4 devices: finite logs, weights that move.
def _other_methods():
    from tests.method_table import METHODS as EVERY_METHOD

    covered = {"simclr", "dino_vit", "mae"}  # CLIP too: compared with one device above
    return {name: entry for name, entry in EVERY_METHOD.items() if name not in covered}


OTHER_METHODS = _other_methods()


def _weights(model):
    return [np.array(keras.ops.convert_to_numpy(w)) for w in model.trainable_weights]


@pytest.mark.parametrize("name", [*sorted(OTHER_METHODS), "gan"])
def test_every_other_method_trains_on_4_devices(name):
    from tests.method_harness import tiny_data
    from tests.test_gan import tiny_gan

    if name == "gan":
        x = tiny_data((16, 16, 1))[0]
        y = None
        make = tiny_gan
    else:
        build, shape = OTHER_METHODS[name]
        x, y = tiny_data(shape)
        make = functools.partial(build, lambda s=shape[:2] + (3,): tiny_encoder(s))
    with data_parallel():
        model = make()
        model.compile() if name == "gan" else model.compile(optimizer=keras.optimizers.Adam(1e-3))
        model.build((None, *x.shape[1:]))
        before = _weights(model)
        history = model.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
    for key, values in history.history.items():
        assert np.all(np.isfinite(values)), f"{name}: {key} = {values}"
    moved = [not np.array_equal(a, b) for a, b in zip(before, _weights(model))]
    assert sum(moved) >= len(moved) // 2, f"{name}: only {sum(moved)} of {len(moved)} weights moved"
