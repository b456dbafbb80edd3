"""Non-finite values never pass silently: every image checked, NaN losses stop with the weights restored."""

import keras
import numpy as np
import pytest

import kerassl
from kerassl.images import check_numpy_images
from kerassl.nonfinite import NonFiniteLossError
from tests.method_harness import tiny_data
from tests.test_simclr import make_simclr


def weights(model):
    return [np.array(keras.ops.convert_to_numpy(v)) for v in model.variables]


def one_nan_pixel(count=300, index=290):
    images = tiny_data((8, 8, 3), count=count)[0].astype("float32") / 255.0
    images[index, 3, 4, 1] = np.nan
    return images


def test_every_image_is_checked_not_a_sample():
    with pytest.raises(ValueError, match=r"images\[290\] contains NaN"):
        check_numpy_images(one_nan_pixel())
    images = one_nan_pixel()
    images[290, 3, 4, 1] = 0.5
    images[299] *= 255.0  # out of range past the first 256 images
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        check_numpy_images(images)


def test_fit_refuses_a_nan_pixel_past_the_256th_image(make_encoder):
    model = make_simclr(make_encoder((8, 8, 3)))
    model.compile(optimizer="adam")
    with pytest.raises(ValueError, match=r"images\[290\]"):
        model.fit(one_nan_pixel(), batch_size=64, epochs=1, verbose=0)


@pytest.mark.parametrize("mode", ["linear", "full"])
def test_finetune_refuses_a_nan_pixel_and_leaves_the_encoder_alone(make_encoder, mode):
    encoder = make_encoder((8, 8, 3))
    before = weights(encoder)
    labels = np.arange(300) % 3
    with pytest.raises(ValueError, match=r"train_data images\[290\]"):
        kerassl.finetune(encoder, (one_nan_pixel(), labels), 3, mode=mode, epochs=1, verbose=0)
    for a, b in zip(before, weights(encoder)):
        np.testing.assert_array_equal(a, b)


def test_finetune_on_a_dataset_with_nan_names_it_and_leaves_the_encoder_alone(make_encoder):
    import tensorflow as tf

    encoder = make_encoder((8, 8, 3))
    before = weights(encoder)
    images = one_nan_pixel(count=64, index=40)
    data = tf.data.Dataset.from_tensor_slices((images, np.arange(64) % 3)).batch(16)
    with pytest.raises((ValueError, NonFiniteLossError), match="NaN|nan"):
        kerassl.finetune(encoder, data, 3, mode="full", epochs=1, verbose=0)
    for a, b in zip(before, weights(encoder)):
        np.testing.assert_array_equal(a, b)


def linear_encoder():
    # No ReLU: TensorFlow's oneDNN ReLU turns NaN into 0, which would hide the bad image.
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(8, 3, padding="same")(inputs)
    return keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x))


def test_nan_loss_stops_at_the_batch_and_restores_the_last_finite_weights(make_encoder):
    good = tiny_data((16, 16, 3), count=8)[0].astype("float32") / 255.0
    bad = good.copy()
    bad[0] = np.nan  # a whole image: no crop can miss it

    def batches():  # generators are not checked up front: the loss check must catch it
        yield (good,)
        yield (good,)
        yield (bad,)

    keras.utils.set_random_seed(1)
    model = make_simclr(linear_encoder())
    model.compile(optimizer="adam")
    with pytest.raises(NonFiniteLossError, match=r"batch 3\..*restored") as info:
        model.fit(batches(), epochs=1, verbose=0)
    assert "before this batch" in str(info.value)
    state = weights(model)
    assert all(np.all(np.isfinite(v)) for v in state if v.dtype.kind == "f")
    assert np.all(np.isfinite(model.predict(good, verbose=0)))
    # The same run without the bad batch ends where the restored model stands.
    keras.utils.set_random_seed(1)
    reference = make_simclr(linear_encoder())
    reference.compile(optimizer="adam")
    reference.fit(batches_of(good, good, good), steps_per_epoch=2, epochs=1, verbose=0)
    for a, b in zip(weights(reference), state):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def batches_of(*arrays):
    for array in arrays:
        yield (array,)
