"""Weighted kNN accuracy of frozen features, and its monitor during pretraining.

The kNN protocol is the weighted nearest-neighbour classifier of InstDisc
(Wu et al. 2018, https://arxiv.org/abs/1805.01978) with the settings of
lightly's benchmarks (k=200, temperature 0.1), so numbers are comparable with
the published tables.
"""

import keras
import numpy as np
from keras import ops

from kerassl.evaluate.features import (
    check_encoder,
    check_features,
    check_labels,
    extract_with_labels,
    features_and_labels,
    inference_model,
)
from kerassl.images import check_numpy_images

# Device memory one kNN query batch may use for its (batch, k, classes) votes
# and its (batch, bank) similarities; about 128 MiB and 512 MiB in float32.
_VOTE_BUDGET = 2**25
_SIMILARITY_BUDGET = 2**27


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
    bank = check_features(train_features, "train_features")
    queries = check_features(query_features, "query_features")
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
    test_features = check_features(test_features, "test_features")
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
    train_features, y_train = features_and_labels(
        encoder, x_train, y_train, "x_train", batch_size, progress
    )
    test_features, y_test = features_and_labels(
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
            check_encoder(encoder)
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
        check_encoder(encoder)
        return encoder

    def on_train_begin(self, logs=None):
        self._resolve_encoder()

    def _features(self, encoder, images):
        # One inference model per input kind, so predict is traced once per fit.
        key = (id(encoder), images.shape[1:], images.dtype.name)
        if key not in self._inference:
            self._inference[key] = inference_model(encoder, images.shape[1:], images.dtype)
        features, _ = extract_with_labels(
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

