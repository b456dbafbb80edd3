import os
import pathlib
import pickle
import tarfile

import keras
import numpy as np
import pytest
from PIL import Image

from tests.conftest import shared_data_file
from kerassl import datasets


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    """Every test gets its own cache directory, never ~/.cache."""
    monkeypatch.setenv("KERASSL_CACHE", str(tmp_path / "cache"))


def _write_jpeg_tree(root, classes, per_class, split_sizes=None):
    """train/<class>/NNNN.jpg (+ test/) whose pixels encode (class, index)."""
    split_sizes = split_sizes or {"train": per_class, "test": 1}
    for split, count in split_sizes.items():
        for name in classes:
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(count):
                # A flat colour survives JPEG: red = class id * 20, green = index * 40.
                known = name in datasets.CIFAR10_CLASSES
                class_id = datasets.CIFAR10_CLASSES.index(name) if known else 10
                value = (class_id * 20, i * 40, 100)
                Image.new("RGB", (32, 32), value).save(folder / f"{i:04d}.jpg", quality=95)
    return root


def _tarball(folder, path, arcname="."):
    with tarfile.open(path, "w:gz") as archive:
        archive.add(folder, arcname=arcname)
    return path


# --- load_digits -------------------------------------------------------------


def test_load_digits_matches_sklearn_and_splits_stratified(digits):
    (x, y), (x_test, y_test) = datasets.load_digits()
    assert x.shape == (1437, 8, 8, 1) and x_test.shape == (360, 8, 8, 1)
    assert x.dtype == np.uint8 and y.dtype == np.int32
    assert x.max() == 255 and x.min() == 0
    # Together the two splits are exactly the 1,797 scaled sklearn images.
    all_images, all_labels = digits
    joined = np.concatenate([x, x_test]).reshape(len(all_images), -1)
    expected = all_images.reshape(len(all_images), -1)
    assert sorted(map(bytes, joined)) == sorted(map(bytes, expected))
    # Stratified: every class has ~20% of its images in the test split.
    share = np.bincount(y_test, minlength=10) / np.bincount(all_labels, minlength=10)
    assert np.all(np.abs(share - 360 / 1797) < 0.01)


def test_load_digits_is_deterministic_and_seeded():
    (x1, y1), (t1, _) = datasets.load_digits()
    (x2, y2), (t2, _) = datasets.load_digits()
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)
    (x3, _), _ = datasets.load_digits(seed=1)
    assert not np.array_equal(x1, x3)


@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
def test_load_digits_upsamples_and_repeats_channels(interpolation):
    (x8, _), _ = datasets.load_digits()
    (x, y), (x_test, _) = datasets.load_digits(
        image_size=32, channels=3, interpolation=interpolation
    )
    assert x.shape == (1437, 32, 32, 3) and x_test.shape == (360, 32, 32, 3)
    assert x.dtype == np.uint8
    np.testing.assert_array_equal(x[..., 0], x[..., 2])
    if interpolation == "nearest":
        # Nearest upsampling by 4 copies every pixel into a 4x4 block.
        np.testing.assert_array_equal(x[..., :1], x8.repeat(4, axis=1).repeat(4, axis=2))
    else:
        blocks = x[..., 0].reshape(-1, 8, 4, 8, 4).mean(axis=(2, 4))
        assert np.abs(blocks - x8[..., 0]).mean() < 20  # Smooth, but the same digit.
        assert len(np.unique(x)) > len(np.unique(x8))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"channels": 2}, "channels"),
        ({"image_size": 0}, "image_size"),
        ({"image_size": 16, "interpolation": "cubic"}, "interpolation"),
    ],
)
def test_load_digits_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        datasets.load_digits(**kwargs)


# --- mnist -------------------------------------------------------------------


def _fake_mnist(path, n_train=20, n_test=10):
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 256, (n_train, 28, 28)).astype("uint8"),
        "y_train": (np.arange(n_train) % 10).astype("uint8"),
        "x_test": rng.integers(0, 256, (n_test, 28, 28)).astype("uint8"),
        "y_test": (np.arange(n_test) % 10).astype("uint8"),
    }
    np.savez(path, **arrays)
    return arrays


def test_mnist_from_local_npz(tmp_path):
    arrays = _fake_mnist(tmp_path / "mnist.npz")
    (x, y), (x_test, y_test) = datasets.mnist(path=tmp_path / "mnist.npz")
    assert x.shape == (20, 28, 28, 1) and x_test.shape == (10, 28, 28, 1)
    assert x.dtype == np.uint8 and y.dtype == np.int32 and y.shape == (20,)
    np.testing.assert_array_equal(x[..., 0], arrays["x_train"])
    np.testing.assert_array_equal(y_test, arrays["y_test"])
    # A folder holding mnist.npz works too.
    (x2, _), _ = datasets.mnist(path=tmp_path)
    np.testing.assert_array_equal(x, x2)


def test_mnist_limits_draw_with_default_rng(tmp_path):
    arrays = _fake_mnist(tmp_path / "mnist.npz")
    (x, y), (x_test, _) = datasets.mnist(path=tmp_path / "mnist.npz", train_limit=5, seed=3)
    index = np.random.default_rng(3).choice(20, 5, replace=False)
    np.testing.assert_array_equal(x[..., 0], arrays["x_train"][index])
    np.testing.assert_array_equal(y, arrays["y_train"][index])
    assert len(x_test) == 10


def test_mnist_bad_local_files(tmp_path):
    np.savez(tmp_path / "bad.npz", x_train=np.zeros((2, 28, 28), "uint8"))
    with pytest.raises(KeyError, match="y_train"):
        datasets.mnist(path=tmp_path / "bad.npz")
    with pytest.raises(FileNotFoundError):
        datasets.mnist(path=tmp_path / "missing.npz")
    (tmp_path / "x.txt").write_text("no")
    with pytest.raises(ValueError, match=".npz"):
        datasets.mnist(path=tmp_path / "x.txt")


@pytest.mark.data
def test_mnist_real_shared_copy():
    path = shared_data_file("mnist.npz")
    (x, y), (x_test, y_test) = datasets.mnist(path=path, train_limit=100, test_limit=50)
    assert x.shape == (100, 28, 28, 1) and x_test.shape == (50, 28, 28, 1)
    assert set(np.unique(y)) <= set(range(10))


@pytest.mark.parametrize(
    "loader, module, url",
    [
        (datasets.mnist, keras.datasets.mnist, datasets.MNIST_URL),
        (datasets.cifar10, keras.datasets.cifar10, datasets.CIFAR10_URL),
    ],
)
def test_download_failure_says_how_to_pass_path(monkeypatch, loader, module, url):
    def offline():
        raise Exception(f"URL fetch failure on {url}: None -- [Errno -3] no network")

    monkeypatch.setattr(module, "load_data", offline)
    with pytest.raises(datasets.DatasetDownloadError) as info:
        loader()
    message = str(info.value)
    assert url in message and "path=" in message and "no network" in message


def test_download_path_reshapes_like_local_copies(monkeypatch):
    rng = np.random.default_rng(0)
    def split(n):  # keras returns CIFAR labels shaped (N, 1).
        images = rng.integers(0, 256, (n, 32, 32, 3)).astype("uint8")
        return images, np.arange(n, dtype="uint8")[:, None]

    fake = (split(6), split(4))
    monkeypatch.setattr(keras.datasets.cifar10, "load_data", lambda: fake)
    (x, y), (x_test, y_test) = datasets.cifar10()
    assert y.shape == (6,) and y.dtype == np.int32 and x_test.shape == (4, 32, 32, 3)
    monkeypatch.setattr(
        keras.datasets.mnist, "load_data",
        lambda: ((fake[0][0][..., 0], fake[0][1][:, 0]), (fake[1][0][..., 0], fake[1][1][:, 0])),
    )
    (x, y), _ = datasets.mnist()
    assert x.shape == (6, 32, 32, 1)


# --- cifar10 -----------------------------------------------------------------


def test_cifar10_jpeg_tarball_labels_follow_cifar_order(tmp_path):
    # Alphabetical folder order would give bird=0, truck=1; CIFAR order is 2 and 9.
    tree = _write_jpeg_tree(tmp_path / "tree", ["truck", "bird"], per_class=3)
    archive = _tarball(tree, tmp_path / "tiny-cifar.tar.gz")
    (x, y), (x_test, y_test) = datasets.cifar10(path=archive)
    assert x.shape == (6, 32, 32, 3) and x.dtype == np.uint8
    assert y.dtype == np.int32
    np.testing.assert_array_equal(y, [2, 2, 2, 9, 9, 9])
    np.testing.assert_array_equal(y_test, [2, 9])
    # Pixels agree with the labels and file order (red = class * 20, green = index * 40).
    np.testing.assert_allclose(x[:, 0, 0, 0], y * 20, atol=4)
    np.testing.assert_allclose(x[:, 0, 0, 1], [0, 40, 80, 0, 40, 80], atol=4)
    # Unpacked and cached under the cache directory, never beside the archive.
    cache = pathlib.Path(os.environ["KERASSL_CACHE"])
    assert len(list((cache / "archives").iterdir())) == 1
    assert len(list((cache / "arrays").glob("*.npz"))) == 1
    assert not list(cache.rglob(".partial-*"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "tiny-cifar.tar.gz", "tree"]


def test_cifar10_second_call_reads_the_cache(tmp_path, monkeypatch):
    tree = _write_jpeg_tree(tmp_path / "tree", ["cat", "dog"], per_class=3)
    archive = _tarball(tree, tmp_path / "tiny.tar.gz")
    (x, y), (x_test, y_test) = datasets.cifar10(path=archive)

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again instead of reading the cached .npz")

    # Where the loaders look the names up, now that datasets is a package.
    monkeypatch.setattr(datasets.catalogue, "read_images", no_decoding)
    monkeypatch.setattr(datasets.folders, "read_images", no_decoding)
    monkeypatch.setattr(datasets.folders, "extract_archive", no_decoding)
    monkeypatch.setattr(datasets.cache, "extract_archive", no_decoding)
    (x2, y2), (x_test2, y_test2) = datasets.cifar10(path=archive)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    np.testing.assert_array_equal(y_test, y_test2)


def test_cifar10_jpeg_folder_with_wrapper_and_limit(tmp_path):
    tree = _write_jpeg_tree(tmp_path / "data" / "cifar", ["airplane", "frog"], per_class=3)
    (x, y), _ = datasets.cifar10(path=tree.parent, train_limit=4, seed=0)
    full = np.array([0, 0, 0, 6, 6, 6])
    np.testing.assert_array_equal(y, full[np.random.default_rng(0).choice(6, 4, replace=False)])


def test_cifar10_rejects_unknown_class_folders(tmp_path):
    tree = _write_jpeg_tree(tmp_path / "tree", ["cat", "unicorn"], per_class=1)
    with pytest.raises(ValueError, match="unicorn"):
        datasets.cifar10(path=tree)


def test_cifar10_rejects_unknown_layouts(tmp_path):
    (tmp_path / "empty" / "a").mkdir(parents=True)
    (tmp_path / "empty" / "b").mkdir()
    with pytest.raises(ValueError, match="cifar-10-batches-py"):
        datasets.cifar10(path=tmp_path / "empty")


def _write_cifar_pickles(folder, batch_sizes=(4, 4), test_size=3):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    files = [f"data_batch_{i + 1}" for i in range(len(batch_sizes))] + ["test_batch"]
    written = {}
    for name, n in zip(files, list(batch_sizes) + [test_size]):
        data = rng.integers(0, 256, (n, 3072)).astype("uint8")
        labels = list(rng.integers(0, 10, n))
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": data, b"labels": labels, b"batch_label": b"x"}, f)
        written[name] = (data, labels)
    return written


def test_cifar10_python_pickle_tarball(tmp_path):
    written = _write_cifar_pickles(tmp_path / "src" / "cifar-10-batches-py")
    archive = _tarball(
        tmp_path / "src" / "cifar-10-batches-py",
        tmp_path / "cifar-10-python.tar.gz",
        arcname="cifar-10-batches-py",
    )
    (x, y), (x_test, y_test) = datasets.cifar10(path=archive)
    assert x.shape == (8, 32, 32, 3) and x_test.shape == (3, 32, 32, 3)
    # The batches store planes (N, 3, 32, 32): the loader must transpose to channels-last.
    first = written["data_batch_1"][0][0].reshape(3, 32, 32).transpose(1, 2, 0)
    np.testing.assert_array_equal(x[0], first)
    np.testing.assert_array_equal(y[4:], written["data_batch_2"][1])
    np.testing.assert_array_equal(y_test, written["test_batch"][1])
    # The folder itself and its parent work too.
    (x2, _), _ = datasets.cifar10(path=tmp_path / "src")
    np.testing.assert_array_equal(x, x2)


def test_cifar10_pickles_refuse_code(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    _write_cifar_pickles(folder, batch_sizes=(2,), test_size=2)
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({b"data": os.system, b"labels": []}, f)
    with pytest.raises(pickle.UnpicklingError, match="Refusing"):
        datasets.cifar10(path=folder)


@pytest.mark.slow
@pytest.mark.data
def test_cifar10_real_jpeg_tarball():
    path = shared_data_file("cifar10-jpeg.tar.gz")
    (x, y), (x_test, y_test) = datasets.cifar10(path=path)
    assert x.shape == (50000, 32, 32, 3) and x_test.shape == (10000, 32, 32, 3)
    np.testing.assert_array_equal(np.bincount(y), [5000] * 10)
    np.testing.assert_array_equal(np.bincount(y_test), [1000] * 10)
    (x10k, y10k), _ = datasets.cifar10(path=path, train_limit=10000, seed=0)
    index = np.random.default_rng(0).choice(50000, 10000, replace=False)
    np.testing.assert_array_equal(x10k, x[index])
    np.testing.assert_array_equal(y10k, y[index])
    # Blue-dominant skies: airplanes and ships are bluer than frogs on average.
    blue = lambda c: x[y == c][..., 2].mean() - x[y == c][..., 0].mean()  # noqa: E731
    assert blue(8) > blue(6) and blue(0) > blue(6)


# --- image_folder ------------------------------------------------------------


def test_image_folder_infers_labels_and_resizes(tmp_path):
    for name, size, mode in [("b", (20, 10), "RGB"), ("a", (16, 16), "L")]:
        (tmp_path / name / "deep").mkdir(parents=True)
        for i in range(2):
            Image.new(mode, size).save(tmp_path / name / f"{i}.png")
        Image.new(mode, size).save(tmp_path / name / "deep" / "x.jpg")
    (tmp_path / "a" / "notes.txt").write_text("not an image")
    images, labels, names = datasets.image_folder(tmp_path, image_size=(12, 8))
    assert names == ["a", "b"]
    assert images.shape == (6, 12, 8, 3) and images.dtype == np.uint8
    np.testing.assert_array_equal(labels, [0, 0, 0, 1, 1, 1])
    gray = datasets.image_folder(tmp_path, image_size=8, channels=1, labels=None)
    assert gray.shape == (6, 8, 8, 1)
    picked, picked_labels, _ = datasets.image_folder(tmp_path, image_size=8, class_names=["b"])
    assert len(picked) == 3 and set(picked_labels) == {0}


def test_image_folder_needs_image_size_for_mixed_sizes(tmp_path):
    (tmp_path / "c").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "c" / "0.png")
    Image.new("RGB", (9, 8)).save(tmp_path / "c" / "1.png")
    with pytest.raises(ValueError, match="image_size"):
        datasets.image_folder(tmp_path)


def test_image_folder_reads_a_tarball_with_limit(tmp_path):
    tree = _write_jpeg_tree(tmp_path / "flowers", ["cat", "dog"], per_class=4,
                            split_sizes={"train": 4})
    archive = _tarball(tree / "train", tmp_path / "pets.tar.gz", arcname="pets")
    images, labels, names = datasets.image_folder(archive, limit=5, seed=1)
    assert names == ["cat", "dog"] and images.shape == (5, 32, 32, 3)
    full = np.array([0] * 4 + [1] * 4)
    index = np.random.default_rng(1).choice(8, 5, replace=False)
    np.testing.assert_array_equal(labels, full[index])


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"labels": "categorical"}, ValueError, "labels"),
        ({"channels": 4}, ValueError, "channels"),
        ({"labels": None, "class_names": ["a"]}, ValueError, "class_names"),
        ({"class_names": ["zebra"]}, ValueError, "zebra"),
        ({"limit": 0}, ValueError, "limit"),
    ],
)
def test_image_folder_bad_arguments(tmp_path, kwargs, error, match):
    (tmp_path / "a").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "a" / "0.png")
    with pytest.raises(error, match=match):
        datasets.image_folder(tmp_path, **kwargs)


def test_image_folder_empty_or_broken(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="class subfolders"):
        datasets.image_folder(tmp_path / "empty")
    (tmp_path / "broken" / "a").mkdir(parents=True)
    (tmp_path / "broken" / "a" / "0.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="decode"):
        datasets.image_folder(tmp_path / "broken")


def test_extract_archive_refuses_escaping_paths(tmp_path):
    evil = tmp_path / "evil.tar.gz"
    payload = tmp_path / "payload.txt"
    payload.write_text("x")
    with tarfile.open(evil, "w:gz") as archive:
        archive.add(payload, arcname="../outside.txt")
    with pytest.raises(ValueError, match="evil"):
        datasets.extract_archive(evil)
    assert not (pathlib.Path(os.environ["KERASSL_CACHE"]) / "outside.txt").exists()
    assert not list((pathlib.Path(os.environ["KERASSL_CACHE"]) / "archives").iterdir())


# --- to_dataset --------------------------------------------------------------


def test_to_dataset_batches_with_labels_and_keeps_uint8():
    images = np.arange(10, dtype="uint8")[:, None, None, None] * np.ones((1, 4, 4, 3), "uint8")
    labels = np.arange(10) * 7
    batches = list(datasets.to_dataset(images, labels, batch_size=4, shuffle=True, seed=1))
    assert [len(b[0]) for b in batches] == [4, 4, 2]
    seen = np.concatenate([b[0].numpy() for b in batches])
    seen_labels = np.concatenate([b[1].numpy() for b in batches])
    assert seen.dtype == np.uint8
    # Each image keeps its own label, every image appears once, and the order changed.
    np.testing.assert_array_equal(seen[:, 0, 0, 0].astype(int) * 7, seen_labels)
    assert sorted(seen[:, 0, 0, 0]) == list(range(10))
    assert list(seen[:, 0, 0, 0]) != list(range(10))


def test_to_dataset_without_labels_unshuffled_dropped_repeated():
    images = np.linspace(0, 1, 10, dtype="float32").reshape(10, 1, 1, 1).repeat(2, 1).repeat(2, 2)
    batches = list(datasets.to_dataset(images, batch_size=4, shuffle=False, drop_remainder=True))
    assert len(batches) == 2 and batches[0].shape == (4, 2, 2, 1)
    np.testing.assert_allclose(batches[1].numpy()[:, 0, 0, 0], images[4:8, 0, 0, 0])
    repeated = datasets.to_dataset(images, batch_size=4, shuffle=False, repeat=True)
    assert len(list(repeated.take(7))) == 7


@pytest.mark.parametrize(
    "images, kwargs, match",
    [
        (np.zeros((4, 8, 8), "uint8"), {}, "rank-4"),
        (np.zeros((4, 8, 8, 3), "float32") + 255.0, {}, r"\[0, 1\]"),
        (np.zeros((4, 8, 8, 3), "uint8"), {"labels": np.zeros(3)}, "labels has 3"),
        (np.zeros((4, 8, 8, 3), "uint8"), {"batch_size": 0}, "batch_size"),
        (
            np.zeros((4, 8, 8, 3), "uint8"),
            {"batch_size": 8, "drop_remainder": True},
            "drops all",
        ),
        (np.zeros((0, 8, 8, 3), "uint8"), {}, "empty"),
    ],
)
def test_to_dataset_bad_inputs(images, kwargs, match):
    with pytest.raises(ValueError, match=match):
        datasets.to_dataset(images, **kwargs)


# --- registry ----------------------------------------------------------------


def test_list_datasets_describes_every_loader():
    infos = datasets.list_datasets()
    assert [d["name"] for d in infos] == ["cifar10", "digits", "mnist"]
    for info in infos:
        loader = getattr(datasets, info["loader"].rsplit(".", 1)[1])
        assert callable(loader)
        assert len(info["class_names"]) == info["num_classes"]
    assert datasets.list_datasets("m*")[0]["image_shape"] == (28, 28, 1)
    assert datasets.DATASETS["cifar10"]["class_names"] == datasets.CIFAR10_CLASSES
    (x, y), (x_test, _) = datasets.load_digits()
    info = datasets.DATASETS["digits"]
    assert x.shape[1:] == info["image_shape"]
    assert (len(x), len(x_test)) == (info["train_size"], info["test_size"])
