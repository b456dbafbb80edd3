"""Linear probe: a softmax classifier trained on frozen features (SimCLR, Sec. 4).

The probe trains on features extracted once by `kerassl.evaluate.features`, so
its cost is a small dense layer's, whatever the encoder.
"""

import math

import keras
import numpy as np

from kerassl.evaluate.features import check_labels, features_and_labels, resolve_jit_compile


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
    if int(epochs) < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}.")
    train_features, y_train = features_and_labels(
        encoder, x_train, y_train, "x_train", batch_size, verbose
    )
    test_features, y_test = features_and_labels(
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
