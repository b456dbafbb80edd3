"""Views: crop geometry, determinism, compile-ability and serialization."""

import keras
import numpy as np
import pytest
from keras import ops

from kerassl import augment


def ramp_images(batch=4, size=16, channels=3):
    """Images whose pixel values encode their coordinates: row / size in channel 0."""
    rows = np.repeat(np.arange(size, dtype="float32")[:, None], size, axis=1) / size
    cols = rows.T
    image = np.stack([rows, cols, np.full_like(rows, 0.5)], -1)[..., :channels]
    return np.repeat(image[None], batch, axis=0)


@pytest.mark.parametrize("size", [8, (12, 20), 32])
def test_output_size(size):
    crop = augment.RandomResizedCrop(size, seed=0)
    out = crop(ramp_images(3, 16), training=True)
    expected = (size, size) if isinstance(size, int) else size
    assert tuple(out.shape) == (3, *expected, 3)


def test_crop_area_and_ratio_within_ranges():
    crop = augment.RandomResizedCrop(16, scale=(0.2, 0.6), ratio=(0.5, 2.0), seed=1)
    boxes = ops.convert_to_numpy(crop.sample_boxes(2000, 24, 24))
    area = boxes[:, 2] * boxes[:, 3]
    ratio = boxes[:, 3] / boxes[:, 2]
    assert area.min() >= 0.2 - 1e-5 and area.max() <= 0.6 + 1e-5
    assert ratio.min() >= 0.5 - 1e-4 and ratio.max() <= 2.0 + 1e-4
    assert boxes[:, 0].min() >= 0 and (boxes[:, 0] + boxes[:, 2]).max() <= 1 + 1e-6
    assert boxes[:, 1].min() >= 0 and (boxes[:, 1] + boxes[:, 3]).max() <= 1 + 1e-6
    # Boxes differ per sample.
    assert len(np.unique(boxes[:, 0].round(4))) > 1000


def test_crop_samples_the_box():
    """A box of the ramp image maps to the ramp values inside the box."""
    images = ramp_images(1, 16)
    box = np.array([[0.25, 0.5, 0.5, 0.25]], "float32")  # top, left, height, width
    out = ops.convert_to_numpy(augment.crop_and_resize(images, box, (8, 4)))
    # Output row i samples source row (0.25 + (i + 0.5) / 8 * 0.5) * 16 - 0.5
    expected_rows = ((0.25 + (np.arange(8) + 0.5) / 8 * 0.5) * 16 - 0.5) / 16
    np.testing.assert_allclose(out[0, :, 0, 0], expected_rows, atol=1e-5)
    expected_cols = ((0.5 + (np.arange(4) + 0.5) / 4 * 0.25) * 16 - 0.5) / 16
    np.testing.assert_allclose(out[0, 0, :, 1], expected_cols, atol=1e-5)


def test_identity_box_at_same_size_is_exact():
    images = np.random.default_rng(0).random((2, 9, 7, 3)).astype("float32")
    box = np.array([[0, 0, 1, 1]] * 2, "float32")
    out = ops.convert_to_numpy(augment.crop_and_resize(images, box, (9, 7)))
    np.testing.assert_allclose(out, images, atol=1e-6)


def test_inference_mode_resizes_whole_image():
    images = ramp_images(2, 16)
    crop = augment.RandomResizedCrop(8, antialias=False)
    out = ops.convert_to_numpy(crop(images, training=False))
    assert out.shape == (2, 8, 8, 3)
    # Bilinear at half size: each output row averages source rows 2i and 2i+1.
    np.testing.assert_allclose(out[0, :, 0, 0], (np.arange(8) * 2 + 0.5) / 16, atol=1e-5)


def test_antialias_smooths_downsampling():
    noise = np.random.default_rng(0).random((2, 32, 32, 1)).astype("float32")
    box = np.array([[0, 0, 1, 1]] * 2, "float32")
    sharp = ops.convert_to_numpy(augment.crop_and_resize(noise, box, (8, 8), antialias=False))
    smooth = ops.convert_to_numpy(augment.crop_and_resize(noise, box, (8, 8), antialias=True))
    assert smooth.std() < 0.6 * sharp.std()
    np.testing.assert_allclose(smooth.mean(), noise.mean(), atol=0.03)


def test_same_seed_same_views_different_seed_different_views():
    images = np.random.default_rng(0).random((4, 16, 16, 3)).astype("float32")
    a = ops.convert_to_numpy(augment.simclr_augmenter(16, seed=3)(images, training=True))
    b = ops.convert_to_numpy(augment.simclr_augmenter(16, seed=3)(images, training=True))
    c = ops.convert_to_numpy(augment.simclr_augmenter(16, seed=4)(images, training=True))
    np.testing.assert_allclose(a, b)
    assert np.abs(a - c).max() > 0.05


def test_successive_calls_differ():
    images = np.random.default_rng(0).random((4, 16, 16, 3)).astype("float32")
    augmenter = augment.simclr_augmenter(16, seed=0)
    a = ops.convert_to_numpy(augmenter(images, training=True))
    b = ops.convert_to_numpy(augmenter(images, training=True))
    assert np.abs(a - b).max() > 0.05


def test_color_jitter_ranges_and_identity():
    images = np.random.default_rng(1).random((64, 8, 8, 3)).astype("float32")
    out = ops.convert_to_numpy(augment.ColorJitter(0.4, 0.4, 0.4, 0.1, seed=0)(images))
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert np.abs(out - images).mean() > 0.01
    none = augment.ColorJitter(0, 0, 0, 0)(images)
    np.testing.assert_allclose(ops.convert_to_numpy(none), images, atol=1e-6)
    # Zero hue shift is the identity matrix.
    eye = ops.convert_to_numpy(augment._yiq_hue_rotation(ops.zeros((1,))))
    np.testing.assert_allclose(eye[0], np.eye(3), atol=2e-3)


def test_color_jitter_grayscale_images():
    images = np.random.default_rng(1).random((4, 8, 8, 1)).astype("float32")
    out = augment.ColorJitter(seed=0)(images)
    assert tuple(out.shape) == (4, 8, 8, 1)


def test_random_apply_probability():
    images = np.zeros((4000, 1, 1, 1), "float32")
    layer = augment.RandomApply(keras.layers.Lambda(lambda x: x + 1.0), 0.3, seed=0)
    applied = ops.convert_to_numpy(layer(images, training=True)).mean()
    assert 0.27 < applied < 0.33
    np.testing.assert_allclose(ops.convert_to_numpy(layer(images, training=False)), 0.0)


def test_grayscale_probability_keeps_channels():
    images = np.random.default_rng(2).random((2000, 2, 2, 3)).astype("float32")
    out = ops.convert_to_numpy(augment.RandomGrayscale(0.2, seed=0)(images))
    gray = np.all(np.abs(out - out[..., :1]) < 1e-6, axis=(1, 2, 3))
    assert out.shape == images.shape and 0.17 < gray.mean() < 0.23


def test_augmenter_choices_by_size_and_channels():
    small = augment.simclr_augmenter(32)
    large = augment.simclr_augmenter(96)
    gray = augment.simclr_augmenter(8, channels=1)
    names = lambda m: [type(layer).__name__ for layer in m.layers]  # noqa: E731
    assert "RandomGaussianBlur" not in names(small) and "RandomGaussianBlur" in names(large)
    assert "RandomGrayscale" not in names(gray)
    out = gray(np.random.default_rng(0).random((2, 8, 8, 1)).astype("float32"), training=True)
    assert tuple(out.shape) == (2, 8, 8, 1)
    with pytest.raises(ValueError, match="channels"):
        augment.simclr_augmenter(8, channels=2)


def test_bad_arguments():
    with pytest.raises(ValueError, match="scale"):
        augment.RandomResizedCrop(8, scale=(0.9, 0.1))
    with pytest.raises(ValueError, match="rank-4"):
        augment.RandomResizedCrop(8)(np.zeros((8, 8, 3), "float32"))
    with pytest.raises(ValueError, match="hue"):
        augment.ColorJitter(hue=0.9)


def test_serialization_round_trip(tmp_path):
    augmenter = augment.simclr_augmenter(16, seed=5)
    images = np.random.default_rng(0).random((2, 16, 16, 3)).astype("float32")
    augmenter(images)
    config = keras.saving.serialize_keras_object(augmenter)
    clone = keras.saving.deserialize_keras_object(config)
    assert [type(layer).__name__ for layer in clone.layers] == [
        type(layer).__name__ for layer in augmenter.layers
    ]
    # A fresh augmenter from the same config and seed draws the same views.
    fresh = augment.simclr_augmenter(16, seed=5)
    np.testing.assert_allclose(
        ops.convert_to_numpy(clone(images, training=True)),
        ops.convert_to_numpy(fresh(images, training=True)),
        atol=1e-6,
    )


def test_crop_compiles_in_a_jitted_function():
    """The crop is traceable: used inside a jit-compiled Keras model it stays compiled."""
    inputs = keras.Input((16, 16, 3))
    outputs = augment.RandomResizedCrop(8, seed=0)(inputs, training=True)
    model = keras.Model(inputs, outputs)
    model.compile(jit_compile=True, loss="mse")
    assert model.jit_compile
    out = model.predict(np.random.default_rng(0).random((4, 16, 16, 3)).astype("float32"), verbose=0)
    assert out.shape == (4, 8, 8, 3)
