"""RotNet: exact rotations, the method contract, non-square images, and that it learns."""

import keras
import numpy as np
import pytest

from kerassl.methods.rotnet import RotNet, all_rotations, center_square_crop, rotate
from tests.conftest import random_images, tiny_encoder
from tests.method_harness import run_method_test
from tests.random_inits import mnist_convnet, mnist_knn, mnist_random_inits, mnist_subset


def make_rotnet(encoder, **kwargs):
    kwargs.setdefault("hidden_dim", 16)
    return RotNet(encoder, seed=0, **kwargs)


def to_numpy(x):
    return keras.ops.convert_to_numpy(x)


@pytest.mark.parametrize("k", [0, 1, 2, 3, 5, -1])
def test_rotate_matches_numpy(k):
    images = random_images(3, size=6, channels=3)
    np.testing.assert_array_equal(to_numpy(rotate(images, k)), np.rot90(images, k, axes=(1, 2)))


def test_quarter_turns_compose():
    images = random_images(2, size=5, channels=1)
    twice = rotate(rotate(images, 1), 1)
    np.testing.assert_array_equal(to_numpy(twice), to_numpy(rotate(images, 2)))
    four = rotate(rotate(twice, 1), 1)
    np.testing.assert_array_equal(to_numpy(four), images)
    # 180 degrees is a point reflection: pixel (i, j) goes to (S-1-i, S-1-j).
    np.testing.assert_array_equal(to_numpy(twice)[:, ::-1, ::-1], images)


def test_all_rotations_labels_match_rotation():
    images = random_images(3, size=4, channels=3)
    rotated, labels = all_rotations(images)
    rotated, labels = to_numpy(rotated), to_numpy(labels)
    assert rotated.shape == (12, 4, 4, 3)
    np.testing.assert_array_equal(labels, np.repeat(np.arange(4), 3))
    for index in range(12):
        expected = np.rot90(images[index % 3], labels[index], axes=(0, 1))
        np.testing.assert_array_equal(rotated[index], expected)


def test_center_square_crop():
    images = np.arange(2 * 4 * 7 * 1).reshape(2, 4, 7, 1)
    np.testing.assert_array_equal(to_numpy(center_square_crop(images)), images[:, :, 1:5])
    tall = np.arange(2 * 6 * 3 * 1).reshape(2, 6, 3, 1)
    np.testing.assert_array_equal(to_numpy(center_square_crop(tall)), tall[:, 1:4])


def test_method_contract(tmp_path):
    run_method_test(
        make_rotnet,
        tiny_encoder,
        tmp_path,
        expected_metrics=("rotation_accuracy",),
        data_variants=False,
        xla=True,
    )


def test_non_square_images_train_on_square_crops(tmp_path):
    encoder = tiny_encoder(input_shape=(None, None, 1))
    model = make_rotnet(encoder, num_classes=3)
    model.compile(optimizer="adam")
    images = np.random.default_rng(0).integers(0, 256, (8, 8, 12, 1)).astype("uint8")
    labels = np.arange(8) % 3
    history = model.fit(images, labels, batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0]) and "probe_accuracy" in history.history
    outputs = model(images[:4], training=True)
    assert tuple(outputs["logits"].shape) == (16, 4)
    assert model.predict(images, verbose=0).shape == (8, 16)


def test_non_square_images_need_an_encoder_with_free_sizes():
    model = make_rotnet(tiny_encoder(input_shape=(8, 12, 1)))
    with pytest.raises(ValueError, match="None, None, 1"):
        model.build((None, 8, 12, 1))


def test_linear_head_and_defaults(make_encoder):
    assert RotNet(make_encoder()).head.units == [256, 4]
    assert RotNet(make_encoder(), hidden_dim=None).head.units == [4]
    with pytest.raises(ValueError, match="hidden_dim"):
        RotNet(make_encoder(), hidden_dim=0)


def test_bad_images_get_clear_errors(make_encoder):
    model = make_rotnet(make_encoder())
    model.compile(optimizer="adam")
    with pytest.raises(ValueError, match="rank-4"):
        model.fit(np.zeros((8, 16, 16), "uint8"), batch_size=4, epochs=1, verbose=0)


def rotnet_on_mnist(seed=0, epochs=5):
    """RotNet on 2,000 MNIST images; kNN (k=20, bank of 1,000 training images, 1,000 test queries)."""
    (x, _), _ = mnist_subset()
    knn = mnist_knn
    result = mnist_random_inits(seed)
    keras.utils.set_random_seed(seed)
    model = RotNet(mnist_convnet(), hidden_dim=128)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    history = model.fit(x, batch_size=128, epochs=epochs, verbose=0)
    result.update(accuracy=history.history["rotation_accuracy"][-1], rotnet=knn(model.encoder))
    print({k: np.round(v, 3) for k, v in result.items()})
    return result


@pytest.mark.slow
def test_learns_rotations_and_beats_random_init_by_knn():
    # Measured with rotnet_on_mnist at 8 epochs (2 shared cores, 2026-12-04), seed 0 / 1:
    #   TF: random inits 0.561 / 0.636 (the one trained), mean of 5 0.592 / 0.597;
    #     rotation accuracy 0.998 / 1.000, kNN 0.679 / 0.690 (+0.087 / +0.093 over the mean).
    #   JAX (seed 0): random inits 0.728 (the one trained: the luckiest draw), mean of 5
    #     0.627; rotation accuracy 0.997, kNN 0.669 (+0.042 over the mean, -0.059 under
    #     its own init: the old single-init test failed here).
    # (2026-11-28, TF seed 0: rotation accuracy 0.62 after epoch 1, 0.998 after epoch 8.)
    # Those were 8 epochs. Now 5 (80 steps), for CI's time: measured 2026-12-08 (idle
    # machine, one TF and one JAX process side by side), seeds 0 / 1, rotation accuracy and
    # kNN (gain over the mean of its 5 inits):
    #   TF: 0.990 / 0.991, 0.679 (+0.087) / 0.700 (+0.103).
    #   JAX: 0.989 / 0.986, 0.675 (+0.048) / 0.659 (+0.050).
    result = rotnet_on_mnist(seed=0)
    assert result["accuracy"] > 0.85, result
    assert result["rotnet"] > result["random_init_mean"] + 0.02, result

