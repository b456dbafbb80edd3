"""Frozen-feature evaluation: feature extraction, weighted kNN, linear probe.

The kNN protocol is the weighted nearest-neighbour classifier of InstDisc
(Wu et al. 2018, https://arxiv.org/abs/1805.01978) with the settings of
lightly's benchmarks (k=200, temperature 0.1), so numbers are comparable with
the published tables.
"""

import math

import keras
import numpy as np
from keras import ops

from kerassl.images import check_image_shape, check_numpy_images, to_float_images
from kerassl.registry import register

# Device memory one kNN query batch may use for its (batch, k, classes) votes
# and its (batch, bank) similarities; about 128 MiB and 512 MiB in float32.
_VOTE_BUDGET = 2**25
_SIMILARITY_BUDGET = 2**27


@register
class ToFloatImages(keras.layers.Layer):
    """Turns uint8 images (0-255) or float images in [0, 1] into float32 [0, 1].

    Put it first in any model that takes raw images, so that `predict` accepts
    the uint8 arrays users have.

    Example:
    >>> layer = kerassl.evaluate.ToFloatImages()
    >>> keras.ops.max(layer(np.full((1, 8, 8, 3), 255, "uint8")))  # 1.0
    """

    def __init__(self, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)

    def call(self, images):
        return to_float_images(images, dtype=self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape


def is_dataset(data):
    """True for a `tf.data.Dataset` (checked without importing TensorFlow)."""
    return hasattr(data, "element_spec") and hasattr(data, "as_numpy_iterator")


def check_labels(labels, length=None, num_classes=None, what="labels"):
    """Validates integer class labels and returns them as a 1-D int64 array.

    A (N, 1) column, as `keras.datasets.cifar10` returns, is flattened.

    Args:
        labels: array-like of non-negative integers, shape (N,) or (N, 1).
        length: int or None. The number of images the labels go with.
        num_classes: int or None. Labels must be smaller than this.
        what: str. How error messages name the input.
    """
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1:
        raise ValueError(
            f"{what} must be a 1-D array of integer class ids, one per image; got "
            f"shape {labels.shape}. One-hot labels: convert with "
            "`labels.argmax(-1)`."
        )
    if labels.dtype.kind not in "iu":
        raise ValueError(
            f"{what} must be integer class ids; got dtype {labels.dtype}. Cast "
            "them with `labels.astype('int64')` if they hold whole numbers."
        )
    if len(labels) == 0:
        raise ValueError(f"{what} are empty: at least one labelled image is needed.")
    if length is not None and len(labels) != length:
        raise ValueError(
            f"{what} have {len(labels)} entries but there are {length} images; "
            "pass exactly one label per image."
        )
    if labels.min() < 0:
        raise ValueError(f"{what} must be >= 0; found {labels.min()}.")
    if num_classes is not None and labels.max() >= num_classes:
        raise ValueError(
            f"{what} contain class {labels.max()} but num_classes={num_classes}; "
            "labels must lie in [0, num_classes)."
        )
    return labels.astype("int64")


def _check_encoder(encoder):
    if not isinstance(encoder, keras.Model):
        raise TypeError(
            "encoder must be a keras.Model mapping images to (batch, dim) features; "
            f"got {type(encoder).__name__}. For features you computed yourself, "
            "use kerassl.evaluate.knn_accuracy_from_features or pass encoder=None."
        )


def _inference_model(encoder, image_shape, dtype):
    """encoder(to_float(images), training=False) as a model with its own predict."""
    dtype = "uint8" if str(dtype) == "uint8" else "float32"
    inputs = keras.Input(tuple(image_shape), dtype=dtype)
    features = encoder(ToFloatImages()(inputs), training=False)
    if len(features.shape) != 2:
        raise ValueError(
            f"The encoder returns features of shape {tuple(features.shape)}; "
            "evaluation needs (batch, dim). Pool or flatten its output, e.g. "
            "with `kerassl.backbones.wrap(model)`."
        )
    return keras.Model(inputs, features, name=f"{encoder.name}_inference")


def _split_batch(element):
    if isinstance(element, (tuple, list)):
        return element[0], (element[1] if len(element) > 1 else None)
    return element, None


def _dataset_image_spec(dataset):
    spec, _ = _split_batch(dataset.element_spec)
    shape = tuple(spec.shape)
    if len(shape) == 3:
        raise ValueError(
            f"The dataset yields single images of shape {shape}; it must yield "
            "batches: call `dataset.batch(256)` first."
        )
    check_image_shape(shape, "dataset images")
    return shape, spec.dtype.name


def _extract(encoder, images, batch_size=256, verbose="auto", inference=None):
    """Returns (features, labels or None); labels only come from datasets."""
    _check_encoder(encoder)
    if is_dataset(images):
        shape, dtype = _dataset_image_spec(images)
        model = inference or _inference_model(encoder, shape[1:], dtype)
        cardinality = int(images.cardinality())
        bar = None
        if verbose not in (0, False):
            bar = keras.utils.Progbar(cardinality if cardinality > 0 else None)
        features, labels = [], []
        for step, element in enumerate(images.as_numpy_iterator()):
            batch, batch_labels = _split_batch(element)
            check_numpy_images(batch, "dataset images")
            features.append(np.asarray(model.predict_on_batch(batch)))
            if batch_labels is not None:
                labels.append(np.asarray(batch_labels))
            if bar is not None:
                bar.update(step + 1)
        if not features:
            raise ValueError("The dataset is empty: no batches to extract features from.")
        labels = np.concatenate(labels) if labels else None
        return np.concatenate(features).astype("float32"), labels
    images = check_numpy_images(images)
    if len(images) == 0:
        raise ValueError("images are empty: at least one image is needed.")
    model = inference or _inference_model(encoder, images.shape[1:], images.dtype)
    features = model.predict(images, batch_size=batch_size, verbose=verbose)
    return np.asarray(features, dtype="float32"), None


def extract_features(encoder, images, batch_size=256, verbose="auto"):
    """Runs a frozen encoder over images in inference mode, batch by batch.

    Args:
        encoder: keras.Model. Maps float images in [0, 1], (B, H, W, C), to
            features (B, D). BatchNorm and dropout run in inference mode.
        images: uint8 array (0-255) or float array in [0, 1] of shape
            (N, H, W, 1 or 3), or a `tf.data.Dataset` yielding such batches or
            (images, labels) batches (its own batching is kept).
        batch_size: int. Batch size for arrays.
        verbose: "auto", 0 or 1. Progress bar.

    Returns:
        float32 array of shape (N, D).

    Example:
    >>> encoder = kerassl.backbones.resnet18(input_shape=(32, 32, 3))
    >>> features = kerassl.evaluate.extract_features(encoder, x_uint8)
    """
    features, _ = _extract(encoder, images, batch_size, verbose)
    return features


def _check_features(features, what):
    features = np.asarray(features)
    if features.ndim != 2:
        raise ValueError(
            f"{what} must be a 2-D (N, dim) array; got shape {features.shape}."
        )
    if len(features) == 0:
        raise ValueError(f"{what} are empty: at least one feature vector is needed.")
    if features.dtype.kind not in "fiu":
        raise ValueError(f"{what} must be numeric; got dtype {features.dtype}.")
    features = features.astype("float32")
    if not np.all(np.isfinite(features)):
        raise ValueError(f"{what} contain NaN or infinite values.")
    return features


def _l2_normalize(features):
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return features / np.maximum(norms, 1e-12)


def _query_batch_size(batch_size, bank_size, k, num_classes):
    if batch_size is not None:
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
        return int(batch_size)
    by_votes = _VOTE_BUDGET // (k * num_classes)
    by_similarities = _SIMILARITY_BUDGET // bank_size
    return int(max(1, min(1024, by_votes, by_similarities)))


def knn_predict(
    train_features,
    train_labels,
    query_features,
    k=200,
    temperature=0.1,
    num_classes=None,
    batch_size=None,
    verbose=False,
):
    """Weighted kNN class predictions (InstDisc protocol) for query features.

    Features are L2-normalized; each query takes its k most cosine-similar
    bank entries; a neighbour votes for its class with weight
    exp(similarity / temperature); the class with the largest summed weight
    wins. The work runs on the device in query batches, so the full
    (queries x bank) similarity matrix is never held in memory.

    Args:
        train_features: array (N_bank, D). The memory bank.
        train_labels: int array (N_bank,). Classes of the bank entries.
        query_features: array (N_query, D).
        k: int. Neighbours per query; larger than the bank means the whole
            bank (k is clipped to N_bank).
        temperature: float > 0. Sharpness of the vote weights.
        num_classes: int or None. Defaults to max(train_labels) + 1.
        batch_size: int or None. Queries per device batch; None picks one that
            keeps a batch's votes under ~128 MiB and similarities under ~512 MiB.
        verbose: bool. tqdm progress bar over query batches.

    Returns:
        int64 array (N_query,) of predicted classes.

    Example:
    >>> preds = kerassl.evaluate.knn_predict(bank, bank_labels, queries, k=20)

    Reference: Wu et al. 2018, "Unsupervised Feature Learning via
    Non-Parametric Instance Discrimination", https://arxiv.org/abs/1805.01978
    """
    bank = _check_features(train_features, "train_features")
    queries = _check_features(query_features, "query_features")
    if bank.shape[1] != queries.shape[1]:
        raise ValueError(
            f"train_features have dim {bank.shape[1]} but query features have dim "
            f"{queries.shape[1]}; both must come from the same encoder."
        )
    if num_classes is None:
        num_classes = int(np.asarray(train_labels).max()) + 1
    bank_labels = check_labels(train_labels, len(bank), num_classes, "train labels")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}.")
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}.")
    k = int(min(k, len(bank)))
    batch_size = _query_batch_size(batch_size, len(bank), k, num_classes)
    batch_size = min(batch_size, len(queries))

    bank_t = ops.convert_to_tensor(_l2_normalize(bank).T)
    bank_labels_t = ops.convert_to_tensor(bank_labels.astype("int32"))
    queries = _l2_normalize(queries)
    predictions = []
    batches = range(0, len(queries), batch_size)
    if verbose:
        from tqdm.auto import tqdm

        batches = tqdm(batches, desc="kNN", unit="batch", leave=False)
    for start in batches:
        query = queries[start : start + batch_size]
        if len(query) < batch_size:
            # One batch shape for all batches: JAX compiles each op per shape.
            query = np.pad(query, ((0, batch_size - len(query)), (0, 0)))
        query = ops.convert_to_tensor(query)
        similarity = ops.matmul(query, bank_t)
        top_similarity, top_index = ops.top_k(similarity, k)
        weights = ops.exp(top_similarity / temperature)
        neighbour_classes = ops.take(bank_labels_t, top_index)
        votes = ops.one_hot(neighbour_classes, num_classes) * weights[..., None]
        scores = ops.sum(votes, axis=1)
        predictions.append(ops.convert_to_numpy(ops.argmax(scores, axis=-1)))
    return np.concatenate(predictions)[: len(queries)].astype("int64")


def knn_accuracy_from_features(
    train_features,
    y_train,
    test_features,
    y_test,
    k=200,
    temperature=0.1,
    batch_size=None,
    num_classes=None,
    verbose=False,
):
    """Weighted kNN accuracy of precomputed features (see `knn_predict`).

    Args:
        train_features: array (N_train, D). The memory bank.
        y_train: int array (N_train,).
        test_features: array (N_test, D).
        y_test: int array (N_test,).
        k: int. Neighbours; clipped to N_train.
        temperature: float > 0.
        batch_size: int or None. Queries per device batch.
        num_classes: int or None. Defaults to 1 + the largest label seen.
        verbose: bool. Progress bar.

    Returns:
        float. Fraction of test features whose predicted class is right.

    Example:
    >>> acc = kerassl.evaluate.knn_accuracy_from_features(f_tr, y_tr, f_te, y_te)
    """
    test_features = _check_features(test_features, "test_features")
    y_test = check_labels(y_test, len(test_features), what="test labels")
    y_train = check_labels(y_train, len(np.asarray(train_features)), what="train labels")
    if num_classes is None:
        num_classes = int(max(y_train.max(), y_test.max())) + 1
    check_labels(y_test, num_classes=num_classes, what="test labels")
    predictions = knn_predict(
        train_features,
        y_train,
        test_features,
        k=k,
        temperature=temperature,
        num_classes=num_classes,
        batch_size=batch_size,
        verbose=verbose,
    )
    return float(np.mean(predictions == y_test))


def _features_and_labels(encoder, x, y, what, batch_size, verbose):
    if encoder is None:
        if is_dataset(x):
            raise ValueError(
                f"With encoder=None, {what} must be a feature array, not a dataset."
            )
        features, labels = _check_features(x, f"{what} features"), None
    else:
        features, labels = _extract(encoder, x, batch_size, verbose)
    if y is None:
        if labels is None:
            raise ValueError(
                f"Labels for {what} are missing: pass them, or pass a dataset of "
                "(images, labels) batches."
            )
        y = labels
    return features, check_labels(y, len(features), what=f"{what} labels")


def knn_accuracy(
    encoder,
    x_train,
    y_train,
    x_test,
    y_test,
    k=200,
    temperature=0.1,
    batch_size=256,
    num_classes=None,
    verbose=True,
):
    """Weighted kNN accuracy of a frozen encoder (InstDisc / lightly protocol).

    Training images form the memory bank; each test image is classified by
    the exp(cos / temperature)-weighted vote of its k nearest bank entries.

    Args:
        encoder: keras.Model (images -> (B, D) features), or None when
            `x_train` and `x_test` are already feature arrays.
        x_train: images (uint8 or float in [0, 1], (N, H, W, C)) or a
            `tf.data.Dataset` of image or (image, label) batches.
        y_train: int labels (N,), or None when `x_train` is a dataset of
            (images, labels).
        x_test, y_test: the same for the queries.
        k: int. Neighbours; clipped to the bank size (lightly uses 200).
        temperature: float > 0 (lightly uses 0.1).
        batch_size: int. Images per encoder batch, and test queries per kNN
            batch.
        num_classes: int or None. Defaults to 1 + the largest label seen.
        verbose: bool. Progress bars.

    Returns:
        float. Test accuracy in [0, 1].

    Example:
    >>> acc = kerassl.evaluate.knn_accuracy(encoder, x_train, y_train, x_test, y_test)

    Reference: Wu et al. 2018, https://arxiv.org/abs/1805.01978
    """
    progress = 1 if verbose else 0
    train_features, y_train = _features_and_labels(
        encoder, x_train, y_train, "x_train", batch_size, progress
    )
    test_features, y_test = _features_and_labels(
        encoder, x_test, y_test, "x_test", batch_size, progress
    )
    return knn_accuracy_from_features(
        train_features,
        y_train,
        test_features,
        y_test,
        k=k,
        temperature=temperature,
        batch_size=batch_size,
        num_classes=num_classes,
        verbose=verbose,
    )


class _ShuffledBatches(keras.utils.PyDataset):
    """All epochs' minibatches as one long sequence, each epoch in an order
    drawn from NumPy's generator seeded by (seed, epoch): reproducible without
    Keras's global seeds, and one `fit` epoch avoids the per-epoch overhead
    that dominates on small feature sets."""

    def __init__(self, x, y, batch_size, epochs, seed):
        super().__init__()
        self.x, self.y, self.batch_size, self.seed = x, y, batch_size, seed
        self.batches_per_epoch = math.ceil(len(x) / batch_size)
        self.epochs = epochs
        self._epoch, self._order = None, None

    def __len__(self):
        return self.epochs * self.batches_per_epoch

    def __getitem__(self, index):
        epoch, batch = divmod(index, self.batches_per_epoch)
        if epoch != self._epoch:
            rng = np.random.default_rng([self.seed, epoch])
            self._epoch, self._order = epoch, rng.permutation(len(self.x))
        rows = self._order[batch * self.batch_size : (batch + 1) * self.batch_size]
        return self.x[rows], self.y[rows]


def linear_probe(
    encoder,
    x_train,
    y_train,
    x_test,
    y_test,
    epochs=100,
    batch_size=256,
    learning_rate=1e-2,
    weight_decay=1e-4,
    num_classes=None,
    seed=0,
    verbose=0,
):
    """Linear-probe accuracy: a softmax classifier trained on frozen features.

    Features are extracted once (inference mode), standardized with the
    training mean and standard deviation, and a single Dense layer is trained
    with AdamW and cosine learning-rate decay. It is a Keras model rather than
    scikit-learn's LogisticRegression so that it runs on the accelerator of
    any backend for large feature banks. It starts from zero weights (the
    problem is convex) and shuffles with a NumPy generator seeded by `seed`,
    so equal inputs give equal results without touching global seeds.

    Args:
        encoder: keras.Model (images -> (B, D)), or None when `x_train` and
            `x_test` are already feature arrays.
        x_train, y_train: training images (or dataset, see `knn_accuracy`)
            and int labels.
        x_test, y_test: evaluation images and int labels.
        epochs: int. Passes over the training features.
        batch_size: int. Minibatch size (also the feature-extraction batch).
        learning_rate: float. Peak AdamW learning rate.
        weight_decay: float. Decoupled weight decay.
        num_classes: int or None. Defaults to 1 + the largest label seen.
        seed: int. Shuffling seed.
        verbose: 0, 1 or 2. Passed to `fit` (and progress of extraction).

    Returns:
        float. Test accuracy in [0, 1].

    Example:
    >>> acc = kerassl.evaluate.linear_probe(encoder, x_train, y_train, x_test, y_test)
    """
    from kerassl.finetune import resolve_jit_compile

    if int(epochs) < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}.")
    train_features, y_train = _features_and_labels(
        encoder, x_train, y_train, "x_train", batch_size, verbose
    )
    test_features, y_test = _features_and_labels(
        encoder, x_test, y_test, "x_test", batch_size, verbose
    )
    if train_features.shape[1] != test_features.shape[1]:
        raise ValueError(
            f"Train features have dim {train_features.shape[1]} but test features "
            f"have dim {test_features.shape[1]}."
        )
    if num_classes is None:
        num_classes = int(max(y_train.max(), y_test.max())) + 1
    check_labels(y_train, num_classes=num_classes, what="train labels")
    check_labels(y_test, num_classes=num_classes, what="test labels")

    mean = train_features.mean(axis=0)
    std = train_features.std(axis=0) + 1e-6
    train_features = (train_features - mean) / std
    test_features = (test_features - mean) / std

    batches = _ShuffledBatches(
        train_features, y_train, int(batch_size), int(epochs), seed
    )
    probe = keras.Sequential(
        [
            keras.Input((train_features.shape[1],)),
            keras.layers.Dense(num_classes, kernel_initializer="zeros"),
        ],
        name="linear_probe",
    )
    schedule = keras.optimizers.schedules.CosineDecay(
        learning_rate, decay_steps=len(batches)
    )
    probe.compile(
        optimizer=keras.optimizers.AdamW(schedule, weight_decay=weight_decay),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=resolve_jit_compile("auto"),
    )
    probe.fit(batches, epochs=1, shuffle=False, verbose=verbose)
    logits = probe.predict(test_features, batch_size=4096, verbose=0)
    return float(np.mean(np.argmax(logits, axis=-1) == y_test))


class KNNMonitor(keras.callbacks.Callback):
    """Logs the weighted kNN accuracy of the encoder during pretraining.

    At the end of every `every`-th epoch it writes `logs["val_knn_accuracy"]`,
    so the value shows in the progress bar and in `history.history`, and
    callbacks listed after this one (EarlyStopping, ModelCheckpoint) can
    monitor it. Other epochs get no key: `history.history["val_knn_accuracy"]`
    then holds one entry per evaluated epoch, and `monitor.accuracies` maps
    each evaluated epoch index (0-based) to its accuracy.

    Args:
        x_train, y_train: bank images (uint8 or float in [0, 1]) and int labels.
        x_val, y_val: query images and int labels.
        every: int. Evaluate every this many epochs.
        k: int. Neighbours (clipped to the bank size).
        temperature: float > 0.
        encoder: keras.Model or None. Defaults to `self.model.encoder`.
        batch_size: int. Images per encoder batch.

    Example:
    >>> monitor = kerassl.evaluate.KNNMonitor(x_bank, y_bank, x_val, y_val)
    >>> history = method.fit(x_unlabelled, epochs=10, callbacks=[monitor])
    >>> history.history["val_knn_accuracy"]
    """

    def __init__(
        self,
        x_train,
        y_train,
        x_val,
        y_val,
        every=1,
        k=200,
        temperature=0.1,
        encoder=None,
        batch_size=256,
    ):
        super().__init__()
        if int(every) < 1:
            raise ValueError(f"every must be >= 1, got {every}.")
        if not temperature > 0:
            raise ValueError(f"temperature must be positive, got {temperature}.")
        if encoder is not None:
            _check_encoder(encoder)
        self.x_train = check_numpy_images(x_train, "x_train")
        self.y_train = check_labels(y_train, len(self.x_train), what="y_train")
        self.x_val = check_numpy_images(x_val, "x_val")
        self.y_val = check_labels(y_val, len(self.x_val), what="y_val")
        self.every = int(every)
        self.k = k
        self.temperature = temperature
        self.encoder = encoder
        self.batch_size = batch_size
        self.accuracies = {}
        self._inference = {}

    def _resolve_encoder(self):
        encoder = self.encoder or getattr(self.model, "encoder", None)
        if encoder is None:
            raise ValueError(
                f"KNNMonitor: the model {self.model.name!r} has no `encoder` "
                "attribute; pass the encoder explicitly: KNNMonitor(..., encoder=...)."
            )
        _check_encoder(encoder)
        return encoder

    def on_train_begin(self, logs=None):
        self._resolve_encoder()

    def _features(self, encoder, images):
        # One inference model per input kind, so predict is traced once per fit.
        key = (id(encoder), images.shape[1:], images.dtype.name)
        if key not in self._inference:
            self._inference[key] = _inference_model(encoder, images.shape[1:], images.dtype)
        features, _ = _extract(
            encoder, images, self.batch_size, 0, inference=self._inference[key]
        )
        return features

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every:
            return
        encoder = self._resolve_encoder()
        accuracy = knn_accuracy_from_features(
            self._features(encoder, self.x_train),
            self.y_train,
            self._features(encoder, self.x_val),
            self.y_val,
            k=self.k,
            temperature=self.temperature,
        )
        self.accuracies[epoch] = accuracy
        if logs is not None:
            logs["val_knn_accuracy"] = accuracy

