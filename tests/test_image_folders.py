"""A messy image folder: every bad file is refused by name, or skipped and reported."""

import io

import numpy as np
import pytest
from PIL import Image

from kerassl import datasets
from kerassl.datasets import FolderReport, ImageFolderError


def png_bytes(image):
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def messy(tmp_path):
    """cats/: good RGB, 16-bit grayscale, CMYK JPEG, palette with alpha, a TIFF;
    broken files of every kind; dogs/: one good image; birds/: empty."""
    cats, dogs = tmp_path / "cats", tmp_path / "dogs"
    for folder in (cats, dogs, tmp_path / "birds"):
        folder.mkdir()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(cats / "good.png")
    sixteen = np.full((8, 8), 65535 // 2, "uint16")
    sixteen[0, 0] = 65535
    Image.fromarray(sixteen).save(cats / "deep.png")  # mode I;16
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(cats / "print.jpg")
    Image.new("P", (8, 8)).convert("RGBA").save(cats / "alpha.png")
    Image.new("RGB", (8, 8), (0, 0, 255)).save(cats / "scan.tiff")
    full = png_bytes(Image.effect_noise((64, 64), 50).convert("RGB"))
    (cats / "truncated.png").write_bytes(full[: len(full) // 2])
    (cats / "zero.png").write_bytes(b"")
    (cats / "text.png").write_text("this is not a png\n")
    Image.new("L", (300, 300)).save(cats / "huge.png")  # over the max_pixels the tests pass
    Image.new("RGB", (8, 8), (0, 255, 0)).save(dogs / "good.png")
    (tmp_path / "notes.txt").write_text("not an image, not a class")
    return tmp_path


BAD = {"truncated.png": "decode", "zero.png": "empty file", "text.png": "decode", "huge.png": "max_pixels"}


def test_raise_names_the_first_bad_file_and_the_fix(messy):
    with pytest.raises(ImageFolderError, match="birds"):  # the empty class folder first
        datasets.image_folder(messy, image_size=8, max_pixels=10_000)
    for name, word in BAD.items():
        with pytest.raises(ImageFolderError, match=word) as info:
            datasets.read_images([messy / "cats" / name], (8, 8), max_pixels=10_000)
        assert name in str(info.value) and "on_error='skip'" in str(info.value) or word == "max_pixels"


def test_skip_reports_every_bad_file_and_the_empty_class(messy):
    report = FolderReport()
    with pytest.warns(UserWarning, match="left out"):
        images, labels, names = datasets.image_folder(
            messy, image_size=8, on_error="skip", max_pixels=10_000, report=report
        )
    assert names == ["birds", "cats", "dogs"]
    assert sorted(p.split("/")[-1] for p, _ in report.skipped) == sorted(BAD)
    for path, reason in report.skipped:
        assert BAD[path.split("/")[-1]] in reason
    assert report.empty_classes == ["birds"]
    assert report.read == len(images) == len(labels) == 6
    assert list(labels) == [1, 1, 1, 1, 1, 2]  # labels stay aligned with the images read
    assert "skipped 4" in str(report)


def test_sixteen_bit_is_scaled_not_clipped(messy):
    deep = datasets.read_images([messy / "cats" / "deep.png"], channels=1)[0, ..., 0]
    assert deep[0, 0] == 255 and deep[1, 1] == 127  # PIL's convert would give 255 everywhere


def test_cmyk_and_tiff_become_rgb(messy):
    cmyk, tiff = datasets.read_images([messy / "cats" / "print.jpg", messy / "cats" / "scan.tiff"])
    assert cmyk.shape == (8, 8, 3) and cmyk[0, 0, 0] > 200 and cmyk[0, 0, 2] < 60
    assert tuple(tiff[0, 0]) == (0, 0, 255)


def test_decompression_bombs_are_a_kerassl_error(tmp_path):
    Image.new("L", (200, 200)).save(tmp_path / "big.png")
    with pytest.raises(ImageFolderError, match="40000 pixels, over max_pixels=1000"):
        datasets.read_images([tmp_path / "big.png"], max_pixels=1000)
    assert datasets.read_images([tmp_path / "big.png"], max_pixels=None).shape == (1, 200, 200, 3)


def test_on_error_is_checked(messy):
    with pytest.raises(ValueError, match="on_error"):
        datasets.image_folder(messy, on_error="ignore")


def test_a_folder_of_only_bad_files_is_an_error_even_when_skipping(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.png").write_bytes(b"")
    with pytest.warns(UserWarning), pytest.raises(ImageFolderError, match="none of the 1 files"):
        datasets.image_folder(tmp_path, on_error="skip")
