import keras
import numpy as np
import pytest
from PIL import Image

from tests.conftest import random_images
from kerassl import viz


def _png_size(path):
    with Image.open(path) as image:
        assert image.format == "PNG"
        image.load()  # Fails on a truncated file.
        return image.size


def _ink(path):
    """Standard deviation of the pixels: ~0 for a blank canvas."""
    with Image.open(path) as image:
        return np.asarray(image.convert("L"), "float32").std()


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("dtype", ["uint8", "float32"])
def test_image_grid_writes_png(tmp_path, channels, dtype):
    rows = [
        random_images(5, size=16, channels=channels, dtype=dtype),
        random_images(3, size=8, channels=channels, seed=1, dtype=dtype),
    ]
    path = viz.image_grid(rows, tmp_path / "sub" / "grid.png", row_titles=["a", "b"],
                          col_titles=[str(i) for i in range(5)], title="grid")
    assert path == tmp_path / "sub" / "grid.png"
    width, height = _png_size(path)
    assert width > 5 * 60 and height > 2 * 60
    assert _ink(path) > 10


def test_image_grid_accepts_lists_of_single_images_and_tensors(tmp_path):
    mixed = [random_images(1, 8, 1)[0], random_images(1, 12, 3, dtype="float32")[0]]
    tensor = keras.ops.convert_to_tensor(random_images(2, 8, 3))
    path = viz.image_grid([mixed, tensor], tmp_path / "mixed.png")
    assert _png_size(path)[0] > 100


@pytest.mark.parametrize(
    "rows, kwargs, match",
    [
        (random_images(2), {}, "list of image batches"),
        ([], {}, "list of image batches"),
        ([np.zeros((2, 8, 8, 2), "uint8")], {}, "channels"),
        ([np.zeros((2, 8, 8), "uint8")], {}, "rank-4"),
        ([np.full((2, 8, 8, 3), 200.0, "float32")], {}, r"\[0, 1\]"),
        ([np.zeros((0, 8, 8, 3), "uint8")], {}, "empty"),
        ([random_images(2)], {"row_titles": ["a", "b"]}, "row_titles"),
        ([random_images(2)], {"col_titles": "ab"}, "col_titles"),
    ],
)
def test_image_grid_bad_inputs(tmp_path, rows, kwargs, match):
    with pytest.raises(ValueError, match=match):
        viz.image_grid(rows, tmp_path / "bad.png", **kwargs)
    assert not list(tmp_path.iterdir())


def test_path_must_be_png(tmp_path):
    with pytest.raises(ValueError, match=".png"):
        viz.image_grid([random_images(2)], tmp_path / "grid.jpg")


def test_write_failure_leaves_no_partial_file(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    def broken_savefig(self, file, **kwargs):
        file.write(b"\x89PNG half")
        raise OSError("disk full")

    monkeypatch.setattr(Figure, "savefig", broken_savefig)
    with pytest.raises(OSError, match="disk full"):
        viz.image_grid([random_images(2)], tmp_path / "grid.png")
    assert not list(tmp_path.iterdir())


def test_existing_file_is_replaced_whole(tmp_path):
    path = tmp_path / "grid.png"
    path.write_bytes(b"old")
    viz.image_grid([random_images(2)], path)
    assert _png_size(path)[0] > 50
    assert [p.name for p in tmp_path.iterdir()] == ["grid.png"]


@pytest.mark.parametrize("channels, dtype", [(1, "uint8"), (3, "float32")])
def test_augmentation_preview(tmp_path, channels, dtype):
    images = random_images(3, size=16, channels=channels, dtype=dtype)
    augmenter = keras.Sequential([keras.layers.RandomFlip("horizontal_and_vertical", seed=1)])
    path = viz.augmentation_preview(images, augmenter, tmp_path / "views.png", num_views=4, seed=0)
    width, height = _png_size(path)
    assert width > 5 * 60 and height > 3 * 60
    assert _ink(path) > 10


def test_augmentation_preview_seed_is_reproducible_and_restores_state(tmp_path, monkeypatch):
    images = random_images(4, size=8)
    augmenter = keras.layers.RandomFlip("horizontal_and_vertical", seed=5)
    state = [v for v in augmenter.variables if v.name == "seed_generator_state"]
    assert state, "RandomFlip should carry a seed-generator state"
    before = keras.ops.convert_to_numpy(state[0].value).copy()

    captured = []
    original_grid = viz._grid_figure

    def capture(grid, *args):
        captured.append(np.stack([np.stack(row) for row in grid]))
        return original_grid(grid, *args)

    monkeypatch.setattr(viz, "_grid_figure", capture)
    viz.augmentation_preview(images, augmenter, tmp_path / "a.png", num_views=3, seed=7)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(state[0].value), before)
    augmenter(keras.ops.convert_to_tensor(images / 255.0), training=True)  # Advance it.
    viz.augmentation_preview(images, augmenter, tmp_path / "b.png", num_views=3, seed=7)
    np.testing.assert_array_equal(captured[0], captured[1])
    # The original column is the input itself.
    np.testing.assert_allclose(captured[0][:, 0], images / 255.0, atol=1e-6)
    # The views are flips of it, and not all identical to it.
    views = captured[0][:, 1:]
    assert not np.allclose(views, captured[0][:, :1].repeat(3, axis=1))
    for i in range(4):
        for view in views[i]:
            original = captured[0][i, 0]
            candidates = [original, original[::-1], original[:, ::-1], original[::-1, ::-1]]
            assert any(np.allclose(view, c, atol=1e-6) for c in candidates)


def test_augmentation_preview_bad_inputs(tmp_path):
    flip = keras.layers.RandomFlip()
    with pytest.raises(TypeError, match="augmenter"):
        viz.augmentation_preview(random_images(2), "flip", tmp_path / "x.png")
    with pytest.raises(ValueError, match="num_views"):
        viz.augmentation_preview(random_images(2), flip, tmp_path / "x.png", num_views=0)
    with pytest.raises(ValueError, match="rank-4"):
        viz.augmentation_preview(random_images(2)[0], flip, tmp_path / "x.png")
    to_vector = keras.layers.Flatten()
    with pytest.raises(ValueError, match="augmenter must return"):
        viz.augmentation_preview(random_images(2), to_vector, tmp_path / "x.png")
    assert not list(tmp_path.iterdir())


def test_loss_curve_from_history_and_dict(tmp_path):
    history = keras.callbacks.History()
    history.epoch = [0, 1, 2]
    history.history = {
        "loss": [3.0, 2.0, 1.5],
        "val_loss": [3.2, 2.5, 2.0],
        "contrastive_accuracy": [0.1, 0.3, 0.5],
        "val_knn_accuracy": [0.2, 0.25, 0.3],
    }
    path = viz.loss_curve(history, tmp_path / "h.png")
    width, height = _png_size(path)
    assert width >= 3 * 300 and height >= 250  # Three panels: loss+val_loss share one.
    assert _ink(path) > 5
    one = viz.loss_curve({"loss": np.array([1.0, 0.5])}, tmp_path / "one.png")
    assert _png_size(one)[0] < width
    viz.loss_curve(history, tmp_path / "only.png", keys="val_knn_accuracy")


def test_loss_curve_bad_inputs(tmp_path):
    with pytest.raises(KeyError, match="available"):
        viz.loss_curve({"loss": [1.0]}, tmp_path / "x.png", keys=["acc"])
    with pytest.raises(ValueError, match="empty"):
        viz.loss_curve({}, tmp_path / "x.png")
    with pytest.raises(TypeError, match="History"):
        viz.loss_curve([1.0, 2.0], tmp_path / "x.png")
    with pytest.raises(ValueError, match="numbers"):
        viz.loss_curve({"loss": ["a"]}, tmp_path / "x.png")


@pytest.mark.parametrize("channels", [1, 3])
def test_reconstructions_with_pixel_and_patch_masks(tmp_path, channels):
    originals = random_images(4, size=16, channels=channels)
    recon = random_images(4, size=16, channels=channels, seed=2, dtype="float32") * 1.1
    plain = viz.reconstructions(originals, recon, tmp_path / "r.png")
    patch_masks = np.zeros((4, 16), bool)
    patch_masks[:, ::2] = True
    masked = viz.reconstructions(originals, recon, tmp_path / "m.png", masks=patch_masks)
    assert _png_size(masked)[1] > _png_size(plain)[1]  # One more row.
    pixel_masks = np.zeros((4, 16, 16, 1))
    viz.reconstructions(originals, recon, tmp_path / "p.png", masks=pixel_masks)


def test_patch_masks_cover_the_right_pixels():
    masks = np.zeros((1, 4), bool)
    masks[0, 1] = True  # Top-right patch of a 2x2 grid.
    pixels = viz._pixel_masks(masks, (1, 8, 8, 3))
    expected = np.zeros((1, 8, 8), bool)
    expected[0, :4, 4:] = True
    np.testing.assert_array_equal(pixels, expected)


def test_reconstructions_bad_inputs(tmp_path):
    originals = random_images(2, size=16)
    with pytest.raises(ValueError, match="shape of originals"):
        viz.reconstructions(originals, random_images(2, size=8), tmp_path / "x.png")
    with pytest.raises(ValueError, match="masks"):
        viz.reconstructions(originals, originals, tmp_path / "x.png", masks=np.zeros((2, 5)))


@pytest.mark.parametrize("method", ["pca", "tsne"])
def test_embedding_plot(tmp_path, method):
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 10)
    features = rng.normal(size=(30, 8)) + labels[:, None] * 3.0
    path = viz.embedding_plot(features, labels, tmp_path / f"{method}.png", method=method,
                              class_names=["a", "b", "c"])
    assert min(_png_size(path)) > 300
    assert _ink(path) > 5
    viz.embedding_plot(features, None, tmp_path / "plain.png")


def test_embedding_plot_bad_inputs(tmp_path):
    features = np.zeros((10, 4))
    with pytest.raises(ValueError, match="method"):
        viz.embedding_plot(features, np.zeros(10), tmp_path / "x.png", method="umap")
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        viz.embedding_plot(np.zeros((10,)), None, tmp_path / "x.png")
    with pytest.raises(ValueError, match="labels has 3"):
        viz.embedding_plot(features, np.zeros(3), tmp_path / "x.png")
    with pytest.raises(ValueError, match="NaN"):
        viz.embedding_plot(features + np.nan, None, tmp_path / "x.png")
    assert not list(tmp_path.iterdir())


def test_written_png_follows_the_umask(tmp_path):
    import os

    old = os.umask(0o022)
    try:
        path = viz.image_grid([random_images(2)], tmp_path / "grid.png")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644
