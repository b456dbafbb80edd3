"""Jigsaw: the permutation set, tile cutting, the method contract, and that it learns."""

import itertools

import keras
import numpy as np
import pytest

from kerassl.evaluate import knn_accuracy_from_features
from kerassl.methods.jigsaw import DEFAULT_TILE_FRACTION, Jigsaw, cut_tiles, min_hamming_distance, permutation_set
from tests.conftest import random_images, tiny_encoder
from tests.method_harness import run_method_test
from tests.random_inits import mnist_convnet, mnist_knn, mnist_random_inits, mnist_subset, random_init_knn


def free_size_encoder(input_shape=(None, None, 3)):
    return tiny_encoder(input_shape=(None, None, input_shape[-1]))


def make_jigsaw(encoder, **kwargs):
    kwargs.setdefault("num_permutations", 10)
    kwargs.setdefault("hidden_dim", 16)
    return Jigsaw(encoder, seed=0, **kwargs)


def brute_force_min_distance(permutations):
    return min(
        sum(a != b for a, b in zip(p, q)) for p, q in itertools.combinations(permutations, 2)
    )


def test_permutation_set_is_distinct_and_its_distance_is_as_generated():
    perms = permutation_set(100, 9, seed=0)
    assert perms.shape == (100, 9) and perms.dtype == np.int32
    assert len({tuple(p) for p in perms}) == 100
    assert all(sorted(p) == list(range(9)) for p in perms)
    distance = brute_force_min_distance(perms.tolist())
    assert min_hamming_distance(perms) == distance
    # Greedy maximal Hamming: 100 of the 9! puzzles stay at least 6 apart.
    assert distance >= 6
    model = Jigsaw(free_size_encoder(), num_permutations=100)
    assert model.min_hamming_distance == distance
    np.testing.assert_array_equal(model.permutations, perms)


def test_permutation_set_is_seeded_and_greedy():
    np.testing.assert_array_equal(permutation_set(30, 9, seed=3), permutation_set(30, 9, seed=3))
    assert not np.array_equal(permutation_set(30, 9, seed=3), permutation_set(30, 9, seed=4))
    # The second pick is as far as possible from the first: a derangement.
    assert min_hamming_distance(permutation_set(2, 4, seed=1)) == 4
    # All 24 permutations of 4 tiles: nothing left to choose.
    assert len({tuple(p) for p in permutation_set(24, 4)}) == 24
    # 16 tiles come from a random pool and still differ.
    perms = permutation_set(20, 16, seed=0)
    assert len({tuple(p) for p in perms}) == 20


@pytest.mark.parametrize(
    "count, tiles, match", [(1, 9, "between 2"), (25, 4, "between 2"), (10, 1, "at least 2")]
)
def test_permutation_set_arguments_checked(count, tiles, match):
    with pytest.raises(ValueError, match=match):
        permutation_set(count, tiles)


def test_tiles_reassemble_under_identity():
    images = random_images(2, size=12, channels=3)
    order = np.tile(np.arange(9), (2, 1))
    tiles = keras.ops.convert_to_numpy(cut_tiles(images, 3, 4, order, np.zeros((2, 9, 2), int)))
    assert tiles.shape == (2, 9, 4, 4, 3)
    rows = [np.concatenate([tiles[:, 3 * r + c] for c in range(3)], axis=2) for r in range(3)]
    np.testing.assert_array_equal(np.concatenate(rows, axis=1), images)


def test_tiles_match_numpy_reference_with_order_and_jitter():
    rng = np.random.default_rng(0)
    images = random_images(3, size=14, channels=1)  # 14 = 3 * 4 + 2: a centred 1 px border
    order = np.stack([rng.permutation(9) for _ in range(3)])
    offsets = rng.integers(0, 2, size=(3, 9, 2))
    tiles = keras.ops.convert_to_numpy(cut_tiles(images, 3, 3, order, offsets))
    for b, k in itertools.product(range(3), range(9)):
        r, c = divmod(order[b, k], 3)
        y, x = 1 + 4 * r + offsets[b, k, 0], 1 + 4 * c + offsets[b, k, 1]
        np.testing.assert_array_equal(tiles[b, k], images[b, y : y + 3, x : x + 3])


def test_random_puzzles_use_the_permutation_set():
    model = make_jigsaw(free_size_encoder())
    images = keras.ops.convert_to_tensor(random_images(16, size=16).astype("float32") / 255)
    tiles, labels = model.shuffled_tiles(images)
    tiles, labels = keras.ops.convert_to_numpy(tiles), keras.ops.convert_to_numpy(labels)
    assert tiles.shape == (16, 9, 4, 4, 3)  # 16 px / 3 = 5 px cells, 4 px tiles
    assert labels.min() >= 0 and labels.max() < 10 and len(set(labels)) > 1
    # Each tile sits inside the cell its permutation names.
    numpy_images = keras.ops.convert_to_numpy(images)
    for b in range(4):
        for k, cell in enumerate(model.permutations[labels[b]]):
            r, c = divmod(cell, 3)
            windows = [
                numpy_images[b, 5 * r + dy : 5 * r + dy + 4, 5 * c + dx : 5 * c + dx + 4]
                for dy in range(2)
                for dx in range(2)
            ]
            assert any(np.allclose(tiles[b, k], w) for w in windows)


def test_method_contract(tmp_path):
    model = run_method_test(
        make_jigsaw,
        free_size_encoder,
        tmp_path,
        expected_metrics=("puzzle_accuracy",),
        data_variants=False,
        xla=True,
    )
    loaded = keras.saving.load_model(tmp_path / "method.keras", safe_mode=True)
    np.testing.assert_array_equal(loaded.permutations, model.permutations)


def test_online_probe_on_full_images():
    model = make_jigsaw(free_size_encoder((None, None, 1)), num_classes=3, grid=2)
    model.compile(optimizer="adam")
    images = random_images(8, size=12, channels=1)
    history = model.fit(images, np.arange(8) % 3, batch_size=4, epochs=1, verbose=0)
    assert history.history["probe_loss"][0] > 0


def test_fixed_size_encoder_is_refused_with_advice():
    model = make_jigsaw(tiny_encoder(input_shape=(16, 16, 3)))
    with pytest.raises(ValueError, match=r"input_shape=\(None, None, 3\)"):
        model.build((None, 16, 16, 3))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(grid=1), "grid"),
        (dict(tile_size=0), "tile_size"),
        (dict(permutations=[[0, 1, 2, 3], [0, 1, 2, 3]], grid=2, num_permutations=2), "duplicate"),
        (dict(permutations=[[0, 1, 2, 2], [3, 2, 1, 0]], grid=2, num_permutations=2), "rows are"),
        (dict(permutations=[[0, 1, 2, 3], [3, 2, 1, 0]], grid=2, num_permutations=5), "given"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Jigsaw(free_size_encoder(), **kwargs)


def test_tiles_too_large_or_images_too_small():
    with pytest.raises(ValueError, match="at most 5"):
        make_jigsaw(free_size_encoder(), tile_size=6).build((None, 16, 16, 3))
    with pytest.raises(ValueError, match="too small"):
        make_jigsaw(free_size_encoder(), grid=4).build((None, 3, 3, 3))


GRID = 2


def tile_knn(encoder):
    """kNN (as `mnist_knn`) of the encoder's features of each image's centre tiles, concatenated.

    What the permutation head sees: the 2x2 cells' centre 12 px tiles, in place
    order, one feature vector per tile. Jigsaw trains its encoder on tiles; on
    full 28 px images (`mnist_knn`) it sees inputs it was never trained on.
    """
    (x, y), (x_test, y_test) = mnist_subset()
    cell = 28 // GRID
    size = max(1, min(round(DEFAULT_TILE_FRACTION * cell), cell - 1))

    def features(images):
        count, tiles = len(images), GRID * GRID
        order = np.tile(np.arange(tiles), (count, 1))
        offsets = np.full((count, tiles, 2), (cell - size) // 2)
        cut = cut_tiles(images.astype("float32") / 255.0, GRID, size, order, offsets)
        cut = keras.ops.convert_to_numpy(cut).reshape(count * tiles, size, size, 1)
        return encoder.predict(cut, batch_size=1000, verbose=0).reshape(count, -1)

    return knn_accuracy_from_features(features(x[:1000]), y[:1000], features(x_test), y_test, k=20)


def jigsaw_on_mnist(seed=0, epochs=8):
    """Jigsaw (2x2, 24 permutations) on 2,000 MNIST images; kNN on full images and on tiles.

    Full images: `mnist_knn` against `mnist_random_inits`, as RotNet. Tiles:
    `tile_knn` against 5 random inits scored the same way.
    """
    (x, _), _ = mnist_subset()
    result = mnist_random_inits(seed)
    tiles = random_init_knn(lambda: mnist_convnet((None, None, 1)), tile_knn, seed)
    result.update(tile_random_init=tiles["random_init"], tile_random_init_mean=tiles["random_init_mean"])
    keras.utils.set_random_seed(seed)
    model = Jigsaw(mnist_convnet((None, None, 1)), grid=GRID, num_permutations=24, hidden_dim=128, seed=seed)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    history = model.fit(x, batch_size=128, epochs=epochs, verbose=0)
    result.update(
        accuracy=history.history["puzzle_accuracy"][-1], jigsaw=mnist_knn(model.encoder),
        jigsaw_tiles=tile_knn(model.encoder),
    )
    print({k: np.round(v, 3) for k, v in result.items() if k != "random_inits"})
    return result


@pytest.mark.slow
def test_solves_puzzles_and_tile_features_beat_random_inits_by_knn():
    # Measured with jigsaw_on_mnist (2 shared cores, 2026-12-04), seed 0 / 1, kNN on full images:
    #   TF: random inits 0.561 / 0.636 (the one trained), mean of 5 0.592 / 0.597;
    #     puzzle accuracy 0.938 / 0.950, kNN 0.658 / 0.595 (+0.066 / -0.002 over the mean).
    #   JAX: random inits 0.728 / 0.604 (the one trained), mean of 5 0.627 / 0.609;
    #     puzzle accuracy 0.949 / 0.954, kNN 0.616 / 0.618 (-0.011 / +0.009 over the mean).
    # So on full images Jigsaw's features do not reliably beat random inits (gains -0.011
    # to +0.066 over four runs): the encoder is trained on 12 px tiles and a full 28 px
    # digit is an input it never saw. On the tiles it was trained on (tile_knn), measured
    # 2026-12-06 (load 5-10), seed 0:
    #   TF: random inits (tiles) 0.667 (the one trained), mean of 5 0.648 (0.630-0.675);
    #     kNN 0.780 (+0.132 over the mean); full images 0.658 (+0.066) as before.
    #   JAX: random inits (tiles) 0.661 (the one trained), mean of 5 0.653 (0.625-0.668);
    #     kNN 0.778 (+0.125 over the mean); full images 0.616 (-0.011) as before.
    # The assertion keeps about half the smaller gain.
    # Re-calibrating BatchNorm on full images (4 passes in training mode) does not explain
    # it: TF seed 0, trained 0.631 against a mean of 0.467 for calibrated random inits
    # (calibration lowers every random init by about 0.13).
    result = jigsaw_on_mnist(seed=0)
    assert result["accuracy"] > 0.5, result
    assert result["jigsaw_tiles"] > result["tile_random_init_mean"] + 0.06, result
    assert result["jigsaw"] > result["random_init_mean"] - 0.03, result
