"""Folders (or tarballs) of image files decoded into uint8 arrays."""

import numpy as np

from kerassl.datasets.cache import existing_path, extract_archive, is_archive, skip_wrapper_folder
from kerassl.datasets.tfdata import subset_indices

IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
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
):
    """Reads a folder of images into one uint8 array.

    Like `keras.utils.image_dataset_from_directory`, but returns arrays: with
    `labels="inferred"`, each subfolder of `directory` is a class (sorted by
    name unless `class_names` fixes them) and holds that class's images,
    searched recursively. With `labels=None`, every image below `directory`
    is read. Formats: bmp, gif, jpeg, jpg, png, decoded with PIL.

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

    Returns:
        With `labels="inferred"`: `(images, labels, class_names)`, uint8
        images (N, H, W, channels), int32 labels, a list of str.
        With `labels=None`: the images.

    Example:
    >>> images, labels, names = kerassl.datasets.image_folder(
    ...     "flowers/", image_size=(64, 64))
    """
    check_channels(channels)
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
    if labels is None:
        files = _image_files(root)
        targets = None
    else:
        files, targets, class_names = labelled_files(root, class_names)
    if not files:
        raise ValueError(f"No images ({', '.join(IMAGE_EXTENSIONS)}) found under {root}.")
    index = subset_indices(len(files), limit, seed)
    files = [files[i] for i in index]
    size = None if image_size is None else check_image_size(image_size)
    images = read_images(files, size, channels, interpolation, progress)
    if labels is None:
        return images
    return images, np.asarray(targets, "int32")[index], list(class_names)


def read_images(files, image_size=None, channels=3, interpolation="bilinear", progress=None):
    """Decodes image files into one uint8 array (N, H, W, channels).

    Args:
        files: list of paths.
        image_size: (height, width), optional. Resize to it; when None all
            images must share the size of the first.
        channels: int. 1 or 3.
        interpolation: str. `"bilinear"` or `"nearest"`.
        progress: bool, optional. Show a tqdm bar (default: for >2,000 files).

    Example:
    >>> x = kerassl.datasets.read_images(["a.png", "b.png"], image_size=(32, 32))
    """
    from PIL import Image
    from tqdm.auto import tqdm

    check_channels(channels)
    resample = _pil_resample(interpolation)
    mode = "L" if channels == 1 else "RGB"
    if progress is None:
        progress = len(files) > PROGRESS_MIN_FILES
    images = None
    for i, file in enumerate(tqdm(files, desc="decoding images", disable=not progress)):
        try:
            with Image.open(file) as image:
                image = image.convert(mode)
        except OSError as error:
            raise ValueError(f"Could not decode the image {file}: {error}") from error
        if image_size is not None and image.size != (image_size[1], image_size[0]):
            image = image.resize((image_size[1], image_size[0]), resample)
        array = np.asarray(image, "uint8").reshape(image.size[1], image.size[0], channels)
        if images is None:
            images = np.empty((len(files),) + array.shape, "uint8")
        elif array.shape != images.shape[1:]:
            raise ValueError(
                f"{file} is {array.shape[1]}x{array.shape[0]} but earlier images are "
                f"{images.shape[2]}x{images.shape[1]}; pass image_size=(height, width) "
                "to resize them all."
            )
        images[i] = array
    if images is None:
        return np.empty((0,) + tuple(image_size or (0, 0)) + (channels,), "uint8")
    return images


def _image_files(folder):
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")
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
