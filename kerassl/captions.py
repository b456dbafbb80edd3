"""Image-caption data: captions from class labels, caption files, and tokenized datasets.

Labelled sets (the digits, MNIST, CIFAR-10) become image-text sets with
templates ("a photo of a {}."), one drawn per image so that the text encoder
sees some variety; real users read (path, caption) pairs from a CSV or JSONL
file with `read_captions`. `CaptionPipeline` turns the ways pairs are handed
to `fit` into batches of (images, token ids), tokenizing strings outside the
compiled step.
"""

import contextlib
import csv
import inspect
import json
import pathlib

import keras
import numpy as np

from kerassl.images import check_numpy_images
from kerassl.text import Tokenizer, check_texts

NO_CAPTIONS = (
    "CLIP trains on (image, caption) pairs, but only images were given. Pass "
    "`fit(images, captions)`, a tf.data.Dataset of (images, captions) batches, or "
    "`kerassl.captions.to_dataset(images, captions, clip.tokenizer)`; labelled images "
    "become captions with `kerassl.captions.captions_from_labels(labels, class_names)`."
)

DEFAULT_TEMPLATES = (
    "a photo of a {}.",
    "a picture of a {}.",
    "an image of the {}.",
    "a blurry photo of a {}.",
    "a low resolution photo of the {}.",
    "a drawing of a {}.",
    "this is a {}.",
    "a close-up photo of the {}.",
)
DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
CIFAR10_NAMES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)


def check_templates(templates):
    """Returns templates as a list of str, each with exactly one `{}`."""
    if isinstance(templates, str):
        templates = [templates]
    templates = list(templates)
    if not templates:
        raise ValueError("templates are empty: give at least one, e.g. ['a photo of a {}.'].")
    for template in templates:
        if not isinstance(template, str) or template.count("{}") != 1:
            raise ValueError(
                f"each template must be a string with exactly one '{{}}' where the class "
                f"name goes; got {template!r}."
            )
    return templates


def check_class_names(class_names, minimum=1):
    """Returns class names as a list of distinct non-empty strings."""
    if isinstance(class_names, str):
        raise TypeError(
            f"class_names must be a list of strings, not one string ({class_names!r})."
        )
    names = check_texts(list(class_names), "class names")
    if len(set(names)) != len(names):
        duplicates = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"class names must be distinct; repeated: {duplicates}.")
    if len(names) < minimum:
        raise ValueError(
            f"got {len(names)} class name(s) {names}; at least {minimum} are needed "
            "(a classifier over one class always answers that class)."
        )
    return names


def captions_from_labels(labels, class_names, templates=DEFAULT_TEMPLATES, seed=0):
    """One caption per image: a template, drawn per image, filled with its class name.

    Args:
        labels: int array (N,). Class indices.
        class_names: list of str. Name of each class index, e.g.
            `kerassl.captions.DIGIT_NAMES` or `CIFAR10_NAMES`.
        templates: list of str with one `{}`. A single template gives one fixed
            caption per class.
        seed: int. Seeds the template draw.

    Returns:
        A NumPy array of str, shape (N,).

    Example:
    >>> (x, y), _ = kerassl.datasets.load_digits(image_size=16)
    >>> captions = kerassl.captions.captions_from_labels(y, kerassl.captions.DIGIT_NAMES)
    >>> captions[0]
    'a drawing of a six.'
    """
    names = check_class_names(class_names)
    templates = check_templates(templates)
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise ValueError(
            f"labels must be a 1-D integer array of class indices; got dtype "
            f"{labels.dtype} and shape {labels.shape}."
        )
    if labels.size and (labels.min() < 0 or labels.max() >= len(names)):
        raise ValueError(
            f"labels must be in [0, {len(names)}) for {len(names)} class names; found "
            f"[{labels.min()}, {labels.max()}]."
        )
    choice = np.random.default_rng(seed).integers(0, len(templates), size=len(labels))
    return np.array([templates[t].format(names[c]) for c, t in zip(labels, choice)])


def read_captions(
    path,
    image_size=None,
    channels=3,
    path_column="path",
    caption_column="caption",
    limit=None,
    seed=0,
):
    """Reads a CSV or JSONL file of (image path, caption) pairs and decodes the images.

    CSV files need a header row; JSONL files hold one JSON object per line.
    Relative image paths are relative to the caption file's folder. One image
    may appear on several rows with different captions.

    Args:
        path: str or path. A `.csv`, `.tsv`, `.jsonl` or `.json` (lines) file.
        image_size: (height, width) or int, optional. Resize every image.
        channels: int. 1 or 3.
        path_column: str. Column (or JSON key) of the image path.
        caption_column: str. Column (or JSON key) of the caption.
        limit: int, optional. Read this many rows, drawn without replacement.
        seed: int. Seed of the `limit` draw.

    Returns:
        `(images, captions)`: uint8 array (N, H, W, channels), array of str (N,).

    Example:
    ```python
    images, captions = kerassl.captions.read_captions("pairs.csv", image_size=64)
    ```
    """
    from kerassl import datasets

    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No caption file at {path}.")
    rows = _read_rows(path)
    if not rows:
        raise ValueError(f"{path} holds no (path, caption) rows.")
    for column in (path_column, caption_column):
        if column not in rows[0]:
            raise ValueError(
                f"{path} has no column {column!r}; its columns are {sorted(rows[0])}. "
                "Pass path_column=... and caption_column=... to name them."
            )
    if limit is not None:
        rows = [rows[i] for i in datasets.subset_indices(len(rows), limit, seed)]
    files, captions = [], []
    for line, row in enumerate(rows, start=1):
        file = pathlib.Path(str(row[path_column]))
        file = file if file.is_absolute() else path.parent / file
        if not file.is_file():
            raise FileNotFoundError(f"{path}, row {line}: the image {file} does not exist.")
        files.append(file)
        captions.append(row[caption_column])
    try:
        captions = check_texts(captions)
    except (TypeError, ValueError) as error:
        raise type(error)(f"{path}: {error}") from None
    size = None if image_size is None else datasets.check_image_size(image_size)
    images = datasets.read_images(files, size, channels)
    return images, np.array(captions)


def _read_rows(path):
    if path.suffix.lower() in (".jsonl", ".json", ".ndjson"):
        rows = []
        with open(path, encoding="utf-8") as file:
            for number, line in enumerate(file, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as error:
                    raise ValueError(f"{path}, line {number}: not valid JSON ({error}).") from None
                if not isinstance(row, dict):
                    raise ValueError(f"{path}, line {number}: expected a JSON object.")
                rows.append(row)
        return rows
    if path.suffix.lower() in (".csv", ".tsv"):
        delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
        with open(path, encoding="utf-8", newline="") as file:
            return list(csv.DictReader(file, delimiter=delimiter))
    raise ValueError(f"{path}: caption files must end in .csv, .tsv, .jsonl or .json.")


def check_pairs(images, captions, tokenizer):
    """Checks matching images and captions; returns (images, int32 token ids)."""
    images = check_numpy_images(images)
    if isinstance(captions, (str, bytes)):
        raise TypeError("captions must be a list with one string per image, not one string.")
    tokens = tokenizer.ids(captions if not isinstance(captions, tuple) else list(captions))
    if len(tokens) != len(images):
        raise ValueError(
            f"got {len(images)} images but {len(tokens)} captions: every image needs "
            "exactly one caption, row i describing image i."
        )
    return images, tokens


def to_dataset(
    images, captions, tokenizer, batch_size=256, shuffle=True, seed=0, drop_remainder=True
):
    """A batched `tf.data.Dataset` of (images, token ids), tokenized once up front.

    Works on every backend: no string reaches the model. `drop_remainder`
    defaults to True because a contrastive batch must hold at least 2 pairs
    and fixed shapes compile once.

    Args:
        images: array (N, H, W, 1 or 3), uint8 or float in [0, 1].
        captions: N strings, or int token ids (N, max_length).
        tokenizer: `kerassl.text.Tokenizer` (e.g. `clip.tokenizer`).
        batch_size: int.
        shuffle: bool. Reshuffled every epoch.
        seed: int.
        drop_remainder: bool.

    Example:
    ```python
    ds = kerassl.captions.to_dataset(images, captions, clip.tokenizer, batch_size=256)
    clip.fit(ds, epochs=30)
    ```
    """
    import tensorflow as tf

    if not isinstance(tokenizer, Tokenizer):
        raise TypeError(
            f"tokenizer must be a kerassl.text.Tokenizer; got {type(tokenizer).__name__}."
        )
    images, tokens = check_pairs(images, captions, tokenizer)
    if drop_remainder and batch_size > len(images):
        raise ValueError(
            f"batch_size={batch_size} with drop_remainder=True drops all {len(images)} "
            "pairs; lower batch_size."
        )
    dataset = tf.data.Dataset.from_tensor_slices((images, tokens))
    if shuffle:
        dataset = dataset.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size, drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE)


def is_dataset(data):
    """Whether `data` is a `tf.data.Dataset` (without importing TensorFlow)."""
    return hasattr(data, "element_spec") and hasattr(data, "as_numpy_iterator")


class CaptionPipeline:
    """Turns the ways (image, caption) pairs reach `fit` into x=(images, token ids).

    Accepts `(images, captions)` arrays, a dict with 'images' and 'captions'
    (or 'tokens'), a Python generator or a `tf.data` dataset of
    `(images, captions)` batches; captions are strings or int token ids.
    Strings are tokenized with `tokenizer` in the input pipeline, so no string
    reaches the model, on every backend. A tokenizer error raised inside a
    `tf.data` map is kept and re-raised as itself by `original_errors()`
    rather than wrapped by TensorFlow. One pipeline serves one `fit` call.

    Args:
        tokenizer: `kerassl.text.Tokenizer`.

    Example:
    ```python
    pipeline = kerassl.captions.CaptionPipeline(clip.tokenizer)
    x, y = pipeline.pairs(tf.data.Dataset.from_tensor_slices((images, captions)).batch(8))
    with pipeline.original_errors():
        clip.fit(x, y, epochs=1)
    ```
    """

    def __init__(self, tokenizer):
        if not isinstance(tokenizer, Tokenizer):
            raise TypeError(
                f"tokenizer must be a kerassl.text.Tokenizer; got {type(tokenizer).__name__}."
            )
        self.tokenizer = tokenizer
        self.error = None

    def pairs(self, x, y=None):
        """`(x, y)` as Keras should receive them: x=(images, ids), y=None."""
        if x is None:
            raise ValueError(NO_CAPTIONS)
        if is_dataset(x):
            if y is not None:
                raise ValueError("with a dataset, pass no `y`: the dataset yields the captions.")
            return self.tokenized_dataset(x), None
        if inspect.isgenerator(x):
            return self.tokenized_batches(x), None
        if isinstance(x, keras.utils.PyDataset):
            return x, y
        if isinstance(x, dict):
            if "images" not in x or ("tokens" not in x and "captions" not in x):
                raise ValueError(
                    "a dict of inputs needs 'images' and 'captions' (or 'tokens'); got "
                    f"{sorted(x)}."
                )
            x, y = x["images"], x.get("captions", x.get("tokens"))
        elif isinstance(x, (tuple, list)) and y is None and len(x) == 2:
            x, y = x
        if y is None:
            raise ValueError(NO_CAPTIONS)
        images, tokens = check_pairs(x, y, self.tokenizer)
        return (images, tokens), None

    def validation_pairs(self, validation_data):
        """`fit`'s `validation_data`, accepted as `pairs` accepts `x`."""
        if isinstance(validation_data, (tuple, list)) and not is_dataset(validation_data):
            return (self.pairs(tuple(validation_data))[0],)
        return self.pairs(validation_data)[0]

    def tokenize_batch(self, captions):
        """int32 ids of a batch of captions; keeps the tokenizer's error for `original_errors`."""
        try:
            return self.tokenizer(list(captions))
        except Exception as error:  # re-raised by original_errors, without TensorFlow's wrapping
            self.error = error
            raise

    def tokenized_batches(self, generator):
        """A generator of `((images, ids),)` from one of `(images, captions)` batches."""
        for batch in generator:
            if not isinstance(batch, (tuple, list)) or len(batch) != 2:
                raise ValueError(NO_CAPTIONS)
            images, tokens = check_pairs(batch[0], batch[1], self.tokenizer)
            yield ((images, tokens),)

    def tokenized_dataset(self, dataset):
        """A dataset of `((images, ids),)` from one of `(images, captions)` batches."""
        import tensorflow as tf

        spec = dataset.element_spec
        if isinstance(spec, dict):
            key = "captions" if "captions" in spec else "tokens"
            if "images" not in spec or key not in spec:
                raise ValueError(
                    "a dataset of dicts needs 'images' and 'captions' (or 'tokens'); got "
                    f"{sorted(spec)}."
                )
            dataset = dataset.map(lambda e: (e["images"], e[key]))
            spec = dataset.element_spec
        if isinstance(spec, tuple) and len(spec) == 1 and isinstance(spec[0], tuple):
            spec = spec[0]  # already ((images, tokens),)
            dataset = dataset.map(lambda pair: pair)
        if not isinstance(spec, tuple) or len(spec) != 2:
            raise ValueError(NO_CAPTIONS)
        image_spec, caption_spec = spec
        if image_spec.shape.rank == 3 or caption_spec.shape.rank == 0:
            raise ValueError(
                "the dataset yields single pairs; it must yield batches: call "
                "`dataset.batch(256)` first."
            )
        if caption_spec.dtype == tf.string:
            if caption_spec.shape.rank != 1:
                raise ValueError(
                    "caption batches must be 1-D (one string per image); got shape "
                    f"{caption_spec.shape}."
                )
            length = self.tokenizer.max_length

            def tokenize(images, captions):
                ids = tf.numpy_function(self.tokenize_batch, [captions], tf.int32)
                ids.set_shape((captions.shape[0], length))
                return ((images, ids),)

            return dataset.map(tokenize)
        if caption_spec.dtype.is_integer and caption_spec.shape.rank == 2:
            return dataset.map(lambda images, ids: ((images, ids),))
        message = (
            f"captions must be strings or int token ids (batch, length); the dataset "
            f"yields {caption_spec.dtype.name} of shape {caption_spec.shape}."
        )
        if caption_spec.dtype.is_integer:
            raise ValueError(
                f"{message} These look like class labels: turn them into captions with "
                "`kerassl.captions.captions_from_labels(labels, class_names)`."
            )
        raise TypeError(message)

    @contextlib.contextmanager
    def original_errors(self):
        """Within the block, a failure caused by the tokenizer raises the tokenizer's error."""
        self.error = None
        try:
            yield self
        except Exception:
            error = self.error
            if error is not None:
                raise error from None
            raise
