"""Folders (or tarballs) of image files decoded into uint8 arrays."""

import dataclasses
import pathlib
import warnings

import numpy as np

from kerassl.datasets.cache import existing_path, extract_archive, is_archive, skip_wrapper_folder
from kerassl.datasets.tfdata import subset_indices


IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")  # the common ones; see image_extensions()

# Pillow's own decompression-bomb limit: larger images are refused unless asked for.
MAX_PIXELS = 89_478_485

ON_ERROR = ("raise", "skip")

# Formats Pillow identifies but cannot decode without outside help (stubs, Ghostscript):
# a model.weights.h5 next to the images is not an image.
STUB_FORMATS = ("BUFR", "EPS", "GRIB", "HDF5", "MPEG", "WMF")


def image_extensions():
    """Every file extension Pillow can open here (png, jpeg, tiff, webp, ppm...), lower case."""
    from PIL import Image

    Image.init()
    return tuple(
        sorted(
            ext
            for ext, kind in Image.registered_extensions().items()
            if kind in Image.OPEN and kind not in STUB_FORMATS
        )
    )


class ImageFolderError(ValueError):
    """An image file could not be used: undecodable, truncated, too large or empty."""


@dataclasses.dataclass
class FolderReport:
    """What `image_folder` or `read_images` left out, and why.

    Attributes:
        skipped: list of (path, reason) for every file not read.
        empty_classes: list of class folder names that hold no image.
        read: int. Images read.
    """

    skipped: list = dataclasses.field(default_factory=list)
    empty_classes: list = dataclasses.field(default_factory=list)
    read: int = 0

    def __bool__(self):
        return bool(self.skipped or self.empty_classes)

    def __str__(self):
        lines = [f"read {self.read} images, skipped {len(self.skipped)}"]
        lines += [f"  skipped {path}: {reason}" for path, reason in self.skipped]
        if self.empty_classes:
            lines.append(
                f"  empty class folders (their labels have no image): {self.empty_classes}"
            )
        return "\n".join(lines)


# Above this many files, image_folder shows a progress bar.
PROGRESS_MIN_FILES = 2000


def image_folder(
    directory,
    image_size=None,
    channels=3,
    labels="inferred",
    class_names=None,
    limit=None,
    seed=0,
    interpolation="bilinear",
    progress=None,
    on_error="raise",
    max_pixels=MAX_PIXELS,
    report=None,
):
    """Reads a folder of images into one uint8 array.

    Like `keras.utils.image_dataset_from_directory`, but returns arrays: with
    `labels="inferred"`, each subfolder of `directory` is a class (sorted by
    name unless `class_names` fixes them) and holds that class's images,
    searched recursively. With `labels=None`, every image below `directory`
    is read. Formats: every one Pillow reads (`image_extensions()`: png,
    jpeg, bmp, gif, tiff, webp, ppm...). 16-bit images are scaled to 8 bits
    (65535 -> 255), not clipped; CMYK, palette and alpha images become RGB.

    A `.tar.gz` of such a folder works too: it is unpacked once under
    `cache_dir()` (a single wrapping top folder is skipped).

    Args:
        directory: str or path. The folder or tarball.
        image_size: (height, width) or int, optional. Resize every image to
            this size. When None, all images must share one size.
        channels: int. 1 (grayscale) or 3 (RGB).
        labels: `"inferred"` or None.
        class_names: list of str, optional. The class folders to read, in
            label order. Only with `labels="inferred"`.
        limit: int, optional. Read only this many images, drawn without
            replacement (see `subset_indices`).
        seed: int. Seed of the `limit` draw.
        interpolation: str. `"bilinear"` or `"nearest"`, for resizing.
        progress: bool, optional. Show a tqdm bar; by default only for more
            than 2,000 images.
        on_error: str. "raise": the first undecodable, truncated or too large
            file, or an empty class folder, is an `ImageFolderError`. "skip":
            such files are left out, and every one is listed (path and
            reason) in `report` and in a warning.
        max_pixels: int or None. Larger images are refused (Pillow's
            decompression-bomb limit by default); None allows any size.
        report: `FolderReport` or None. Filled with what was skipped.

    Returns:
        With `labels="inferred"`: `(images, labels, class_names)`, uint8
        images (N, H, W, channels), int32 labels, a list of str.
        With `labels=None`: the images.

    Example:
    >>> images, labels, names = kerassl.datasets.image_folder(
    ...     "flowers/", image_size=(64, 64))
    """
    check_channels(channels)
    check_on_error(on_error)
    if labels not in ("inferred", None):
        raise ValueError(
            f"labels must be 'inferred' (class subfolders) or None (no labels); "
            f"got {labels!r}."
        )
    if class_names is not None and labels is None:
        raise ValueError("class_names only applies with labels='inferred'.")
    root = existing_path(directory)
    if is_archive(root):
        root = skip_wrapper_folder(extract_archive(root))
    if not root.is_dir():
        raise ValueError(f"image_folder expects a folder or a .tar.gz; got the file {root}.")
    report = FolderReport() if report is None else report
    if labels is None:
        files = _image_files(root)
        targets = None
    else:
        files, targets, class_names = labelled_files(root, class_names)
        report.empty_classes = [name for i, name in enumerate(class_names) if i not in set(targets)]
        if report.empty_classes and on_error == "raise":
            raise ImageFolderError(
                f"the class folders {report.empty_classes} under {root} hold no image "
                f"({', '.join(image_extensions()[:6])}...): their labels would never be "
                "seen. Remove them, pass class_names= without them, or on_error='skip' to "
                "keep the labels and get a report."
            )
    if not files:
        raise ValueError(f"No images ({', '.join(IMAGE_EXTENSIONS)}...) found under {root}.")
    index = subset_indices(len(files), limit, seed)
    files = [files[i] for i in index]
    size = None if image_size is None else check_image_size(image_size)
    images, kept = _read_images(
        files, size, channels, interpolation, progress, on_error, max_pixels, report
    )
    if labels is None:
        return images
    return images, np.asarray(targets, "int32")[index][kept], list(class_names)


def read_images(
    files,
    image_size=None,
    channels=3,
    interpolation="bilinear",
    progress=None,
    on_error="raise",
    max_pixels=MAX_PIXELS,
    report=None,
):
    """Decodes image files into one uint8 array (N, H, W, channels).

    Args:
        files: list of paths.
        image_size: (height, width), optional. Resize to it; when None all
            images must share the size of the first.
        channels: int. 1 or 3.
        interpolation: str. `"bilinear"` or `"nearest"`.
        progress: bool, optional. Show a tqdm bar (default: for >2,000 files).
        on_error: str. "raise" or "skip" (see `image_folder`).
        max_pixels: int or None. The largest image accepted.
        report: `FolderReport` or None. Filled with what was skipped.

    Example:
    >>> x = kerassl.datasets.read_images(["a.png", "b.png"], image_size=(32, 32))
    """
    check_on_error(on_error)
    report = FolderReport() if report is None else report
    images, _ = _read_images(
        files, image_size, channels, interpolation, progress, on_error, max_pixels, report
    )
    return images


def _read_images(files, image_size, channels, interpolation, progress, on_error, max_pixels, report):
    """(uint8 images, indices into `files` of those read)."""
    from tqdm.auto import tqdm

    check_channels(channels)
    resample = _pil_resample(interpolation)
    if progress is None:
        progress = len(files) > PROGRESS_MIN_FILES
    arrays, kept = [], []
    for i, file in enumerate(tqdm(files, desc="decoding images", disable=not progress)):
        try:
            array = decode_image(file, channels, image_size, resample, max_pixels)
        except ImageFolderError as error:
            if on_error == "raise":
                raise
            report.skipped.append((str(file), str(error).split(": ", 1)[-1]))
            continue
        if arrays and array.shape != arrays[0].shape:
            raise ValueError(
                f"{file} is {array.shape[1]}x{array.shape[0]} but earlier images are "
                f"{arrays[0].shape[1]}x{arrays[0].shape[0]}; pass image_size=(height, width) "
                "to resize them all."
            )
        arrays.append(array)
        kept.append(i)
    report.read = len(arrays)
    if report:
        warnings.warn(f"image files left out:\n{report}", stacklevel=3)
    if not arrays:
        if files and report.skipped:
            raise ImageFolderError(f"none of the {len(files)} files could be read:\n{report}")
        return np.empty((0,) + tuple(image_size or (0, 0)) + (channels,), "uint8"), kept
    return np.stack(arrays), np.asarray(kept, "int64")


def decode_image(file, channels=3, image_size=None, resample=None, max_pixels=MAX_PIXELS):
    """One image file as uint8 (H, W, channels); `ImageFolderError` naming the file otherwise.

    16-bit and 32-bit integer images are scaled to 8 bits (Pillow's `convert`
    would clip them), float images taken as [0, 1]; everything else goes
    through Pillow's conversion to L or RGB (CMYK, palette, alpha).
    """
    from PIL import Image

    try:
        with Image.open(file) as image:
            width, height = image.size
            if max_pixels is not None and width * height > max_pixels:
                raise ImageFolderError(
                    f"{file}: {width}x{height} = {width * height} pixels, over "
                    f"max_pixels={max_pixels}; pass a larger max_pixels= (or None) if the "
                    "file is trusted"
                )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                previous, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
                try:
                    image.load()
                finally:
                    Image.MAX_IMAGE_PIXELS = previous
            image = _to_8_bits(image, channels)
    except ImageFolderError:
        raise
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as error:
        kind = "empty file (0 bytes)" if _is_empty(file) else f"cannot decode: {error}"
        raise ImageFolderError(
            f"{file}: {kind}. Replace or delete it, or pass on_error='skip' to leave out "
            "unreadable files with a report"
        ) from error
    if image_size is not None and image.size != (image_size[1], image_size[0]):
        image = image.resize((image_size[1], image_size[0]), resample)
    return np.asarray(image, "uint8").reshape(image.size[1], image.size[0], channels)


def _is_empty(file):
    try:
        return pathlib.Path(file).stat().st_size == 0
    except OSError:
        return False


def _to_8_bits(image, channels):
    """A Pillow image in mode L or RGB, high-bit-depth pixels scaled rather than clipped."""
    from PIL import Image

    mode = "L" if channels == 1 else "RGB"
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        values = np.asarray(image).astype("float64")
        if image.mode == "F":
            scale = 255.0  # float images: [0, 1]
        elif image.mode == "I" and values.max(initial=0) > 65535:
            scale = 255.0 / 4294967295.0
        else:
            scale = 255.0 / 65535.0
        gray = Image.fromarray(np.clip(np.rint(values * scale), 0, 255).astype("uint8"), "L")
        return gray.convert(mode)
    return image.convert(mode)


def _image_files(folder):
    extensions = set(image_extensions())
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and p.suffix.lower() in extensions and not p.name.startswith(".")
    )


def labelled_files(root, class_names=None, closed_set=False):
    """Files of each class folder, and their labels (index in class_names).

    By default `class_names` picks folders: every name must exist, other
    folders are ignored. With `closed_set`, `class_names` lists the only
    folders allowed (a stray folder is an error), and some may be absent.
    """
    if not root.is_dir():
        raise ValueError(f"Expected a folder of class subfolders at {root}.")
    found = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if class_names is None:
        class_names = found
    else:
        class_names = list(class_names)
        unknown = sorted(set(found) - set(class_names))
        if unknown and closed_set:
            raise ValueError(
                f"{root} has class folders {unknown} that are not among the "
                f"expected classes {class_names}."
            )
        missing = [c for c in class_names if c not in found]
        if missing and not closed_set:
            raise ValueError(f"{root} lacks the class folders {missing} (found {found}).")
    if not class_names:
        raise ValueError(
            f"{root} has no class subfolders; with labels='inferred' each class "
            "needs its own folder. Pass labels=None to read images without labels."
        )
    files, labels = [], []
    for label, name in enumerate(class_names):
        if not (root / name).is_dir():
            continue
        class_files = _image_files(root / name)
        files += class_files
        labels += [label] * len(class_files)
    return files, labels, class_names


def check_on_error(on_error):
    if on_error not in ON_ERROR:
        raise ValueError(f"on_error must be one of {ON_ERROR}; got {on_error!r}.")


def check_channels(channels):
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grayscale) or 3 (RGB); got {channels!r}.")


def check_image_size(image_size):
    size = (image_size, image_size) if np.isscalar(image_size) else tuple(image_size)
    if len(size) != 2 or not all(isinstance(s, (int, np.integer)) and s > 0 for s in size):
        raise ValueError(
            f"image_size must be a positive int or (height, width); got {image_size!r}."
        )
    return tuple(int(s) for s in size)


def _pil_resample(interpolation):
    from PIL import Image

    choices = {"bilinear": Image.Resampling.BILINEAR, "nearest": Image.Resampling.NEAREST}
    if interpolation not in choices:
        raise ValueError(
            f"interpolation must be one of {sorted(choices)}; got {interpolation!r}."
        )
    return choices[interpolation]


def resize_batch(images, image_size, interpolation):
    from PIL import Image

    resample = _pil_resample(interpolation)
    height, width = image_size
    out = np.empty((len(images), height, width, images.shape[-1]), "uint8")
    for i, image in enumerate(images):
        for c in range(images.shape[-1]):
            resized = Image.fromarray(image[..., c]).resize((width, height), resample)
            out[i, ..., c] = np.asarray(resized)
    return out
