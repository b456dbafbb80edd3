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
    return kerassl.MoCo(encoder, version="v2", seed=0, **{"queue_size": 12, **SMALL, **kwargs})


def make_simsiam(encoder, **kwargs):
    return kerassl.SimSiam(encoder, prediction_hidden_dim=4, seed=0, **{**SMALL, **kwargs})


def make_barlow_twins(encoder, **kwargs):
    return kerassl.BarlowTwins(encoder, seed=0, **{**SMALL, **kwargs})


def make_vicreg(encoder, **kwargs):
    return kerassl.VICReg(encoder, seed=0, **{**SMALL, **kwargs})


def make_nnclr(encoder, **kwargs):
    return kerassl.NNCLR(encoder, seed=0, **{"prediction_hidden_dim": 16, "queue_size": 12, **SMALL, **kwargs})


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


def test_paper_defaults(make_encoder):
    byol = kerassl.BYOL(make_encoder())
    assert byol.projection_head.units == [4096, 256] and byol.prediction_head.units == [4096, 256]
    assert (byol.teacher.momentum_start, byol.teacher.momentum_end) == (0.996, 1.0)
    v3 = kerassl.MoCo(make_encoder())
    assert v3.version == "v3" and v3.temperature == 1.0 and v3.projection_head.units == [4096, 256]
    assert v3.projection_head.last_batch_norm and v3.teacher.momentum_start == 0.99
    v2 = kerassl.MoCo(make_encoder(), version="v2")
    assert v2.temperature == 0.2 and v2.queue_size == 65536 and v2.prediction_head is None
    assert not v2.projection_head.batch_norm and v2.teacher.momentum_end == 0.999
    simsiam = kerassl.SimSiam(make_encoder())
    assert simsiam.projection_head.units == [2048, 2048, 2048] and simsiam.prediction_head.units == [512, 2048]
    assert simsiam.teacher is None
    barlow = kerassl.BarlowTwins(make_encoder())
    assert barlow.projection_head.units == [8192] * 3 and barlow.off_diagonal_weight == 0.0051
    vicreg = kerassl.VICReg(make_encoder())
    assert (vicreg.invariance_weight, vicreg.variance_weight, vicreg.covariance_weight) == (25.0, 25.0, 1.0)
    nnclr = kerassl.NNCLR(make_encoder())
    assert nnclr.projection_head.units == [2048, 2048, 256] and nnclr.temperature == 0.1
    assert nnclr.queue_size == 98304
    swav = kerassl.SwAV(make_encoder())
    assert (swav.num_prototypes, swav.temperature, swav.sinkhorn_epsilon, swav.sinkhorn_iterations) == (3000, 0.1, 0.05, 3)
    assert swav.num_local_crops == 6 and swav.projection_head.units == [2048, 128]


def test_byol_views_are_asymmetric(make_encoder):
    model = make_byol(make_encoder((64, 64, 3)))
    model.build((None, 64, 64, 3))
    first = [type(layer).__name__ for layer in model.augmenter.layers]
    second = [type(layer).__name__ for layer in model.second_augmenter.layers]
    assert "RandomSolarize" not in first and "RandomSolarize" in second
    assert "RandomGaussianBlur" in first and "RandomGaussianBlur" in second
    # Solarization: pixels at or above the threshold are inverted.
    solarize = kerassl.augment.RandomSolarize(1.0, seed=0)
    pixels = np.array([0.2, 0.5, 0.9], "float32").reshape(1, 1, 3, 1)
    got = keras.ops.convert_to_numpy(solarize(pixels, training=True)).ravel()
    np.testing.assert_allclose(got, [0.2, 0.5, 0.1], atol=1e-6)


def test_bad_arguments_are_clear(make_encoder):
    with pytest.raises(ValueError, match="version must be"):
        kerassl.MoCo(make_encoder(), version="v4")
    with pytest.raises(ValueError, match="no predictor"):
        kerassl.MoCo(make_encoder(), version="v2", prediction_head=kerassl.heads.prediction_head(8, 8))
    with pytest.raises(ValueError, match="queue_size"):
        kerassl.NNCLR(make_encoder(), queue_size=0)
    with pytest.raises(ValueError, match="symmetric=True is a MoCo v2 option"):
        kerassl.MoCo(make_encoder(), symmetric=True)
    with pytest.raises(ValueError, match="symmetric must be True or False"):
        kerassl.MoCo(make_encoder(), version="v2", symmetric="yes")
    with pytest.raises(ValueError, match="temperature must be positive"):
        kerassl.MoCo(make_encoder(), temperature=0)
    with pytest.raises(ValueError, match="off_diagonal_weight"):
        kerassl.BarlowTwins(make_encoder(), off_diagonal_weight=-1)
    with pytest.raises(ValueError, match="num_local_crops"):
        kerassl.SwAV(make_encoder(), num_local_crops=-1)
    with pytest.raises(TypeError, match="Keras model"):
        kerassl.BYOL("resnet")


@pytest.mark.parametrize("symmetric, keys_per_step", [(False, 8), (True, 16)])
def test_moco_v2_enqueues_one_key_per_image_or_two_when_symmetric(symmetric, keys_per_step, make_encoder, tmp_path):
    images, labels = tiny_data((16, 16, 3), count=16)
    model = make_moco_v2(make_encoder(), symmetric=symmetric, queue_size=64, num_classes=3)
    model.compile(optimizer="adam")
    history = model.fit(images, labels, batch_size=8, epochs=1, verbose=0, shuffle=False)  # 2 steps
    assert int(keras.ops.convert_to_numpy(model.queue.pointer)) == 2 * keys_per_step
    assert history.history["embedding_std"][0] > 0 and "probe_accuracy" in history.history
    # 7 images: an odd batch scores and logs without a training step.
    logs = model.evaluate(images[:7], labels[:7], batch_size=7, verbose=0, return_dict=True)
    assert np.isfinite(logs["loss"]) and logs["embedding_std"] > 0
    config = model.get_config()
    assert config["symmetric"] is symmetric
    assert kerassl.MoCo.from_config(config).symmetric is symmetric
    model.save(tmp_path / "moco.keras")
    assert keras.saving.load_model(tmp_path / "moco.keras", safe_mode=True).symmetric is symmetric


def test_online_probe_learns_from_labels(make_encoder):
    images, labels = tiny_data((16, 16, 3))
    model = make_barlow_twins(make_encoder(), num_classes=3)
    model.compile(optimizer="adam")
    history = model.fit(images, labels, batch_size=8, epochs=1, verbose=0)
    assert history.history["probe_loss"][0] > 0 and "probe_accuracy" in history.history


def test_swav_prototypes_stay_unit_norm_and_start_frozen(make_encoder):
    images, _ = tiny_data((16, 16, 3))
    model = make_swav(make_encoder(), freeze_prototypes_steps=2, queue_size=0)
    model.compile(optimizer=keras.optimizers.SGD(0.5))
    model.build(images.shape)
    kernel = model.prototypes.kernel
    kernel.assign(kernel * 3.0)  # the forward pass uses unit columns whatever is stored
    start = keras.ops.convert_to_numpy(kernel)
    model.fit(images, batch_size=8, epochs=1, verbose=0, shuffle=False)  # 2 frozen steps
    frozen = keras.ops.convert_to_numpy(kernel)
    np.testing.assert_allclose(frozen, start / np.linalg.norm(start, axis=0, keepdims=True), rtol=1e-5, atol=1e-6)
    model.fit(images, batch_size=8, epochs=1, verbose=0)
    moved = keras.ops.convert_to_numpy(kernel)
    assert not np.allclose(moved, frozen, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(moved, axis=0), 1.0, rtol=1e-5)


def test_swav_queue_joins_the_assignment_once_full(make_encoder):
    images, _ = tiny_data((16, 16, 3))
    model = make_swav(make_encoder(), queue_size=16)
    model.compile(optimizer="adam")
    model.fit(images, batch_size=8, epochs=1, verbose=0)  # 2 steps of 8 fill 16 rows
    for queue in model.queues:
        assert bool(keras.ops.convert_to_numpy(queue.is_full()))
        np.testing.assert_allclose(np.linalg.norm(keras.ops.convert_to_numpy(queue.bank), axis=1), 1.0, rtol=1e-5)


def test_moco_v2_queue_holds_the_keys(make_encoder):
    images, _ = tiny_data((16, 16, 3))
    model = make_moco_v2(make_encoder(), queue_size=16)
    model.compile(optimizer="adam")
    model.fit(images, batch_size=8, epochs=1, verbose=0)
    assert int(keras.ops.convert_to_numpy(model.queue.filled)) == 16
    assert int(keras.ops.convert_to_numpy(model.queue.pointer)) == 0


# Slow (CI's slow TensorFlow run), as CLIP's: XLA compiles these steps on the CPU in 7 s
# (BYOL) and 14 s (SwAV) of the default suite's time; the harness's XLA checks of SimCLR,
# RotNet, Jigsaw, the autoencoder and the GAN stay in the default suite.
@pytest.mark.slow
@pytest.mark.skipif(keras.config.backend() != "tensorflow", reason="XLA flag is TensorFlow's")
@pytest.mark.parametrize("name", ["byol", "swav"])  # swav: the queue's scatter under XLA too
def test_whole_step_compiles_with_xla(name, make_encoder):
    make, _ = METHODS[name]
    model = make(make_encoder())
    model.compile(optimizer="adam", jit_compile=True)
    images, _ = tiny_data((16, 16, 3))
    model.fit(images, batch_size=8, epochs=1, verbose=0)
    assert model.jit_compile, "a layer in the step blocked XLA compilation"


def test_hub_round_trip_keeps_the_queue_and_teacher_and_the_encoder_finetunes(local_hub, make_encoder):
    from tests.conftest_hub import LOCAL_HUB_TOKEN, LOCAL_HUB_USER

    images, labels = tiny_data((16, 16, 3))
    model = make_moco_v2(make_encoder())
    model.compile(optimizer="adam")
    model.fit(images, batch_size=8, epochs=1, verbose=0)
    repo_id = f"{LOCAL_HUB_USER}/moco-v2-staples"
    kerassl.zoo.push_to_hub(model, repo_id, token=LOCAL_HUB_TOKEN, dataset="random")
    restored = kerassl.zoo.load_method(f"hf://{repo_id}")
    assert isinstance(restored, kerassl.MoCo) and restored.version == "v2"
    for old, new in zip(model.weights, restored.weights):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(old), keras.ops.convert_to_numpy(new))
    encoder = kerassl.zoo.load_encoder(f"hf://{repo_id}")
    classifier = kerassl.finetune(encoder, (images, labels), num_classes=3, epochs=1, batch_size=8)
    assert classifier.predict(images, verbose=0).shape == (16, 3)
