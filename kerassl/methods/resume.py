"""Resuming a killed training run exactly where its last backup left it."""

import keras
import numpy as np


def backup_and_restore(directory, save_freq="epoch"):
    """A `keras.callbacks.BackupAndRestore` that resumes a kerassl run exactly.

    Pass it to `fit` (`callbacks=[kerassl.backup_and_restore("ckpt/")]`) and run
    the same script again after a crash or a SIGKILL: training continues from
    the last backup with every weight, optimizer slot, schedule counter and
    random state (augmenters, masks, noise) as they were, so with the same seed
    it ends with the weights of an uninterrupted run. Methods build on
    `compile` when the encoder declares its input shape, as the callback
    requires.

    The data order must not depend on the process either. For NumPy data that
    holds with `shuffle=True` too (Keras's default) as long as the method has a
    `seed`: `fit` then feeds epoch `e` in the order
    `np.random.default_rng([seed, e]).permutation(n)` (`SeededOrder`), the same
    in the resumed process, different in every epoch. A `tf.data` dataset or a
    generator must seed its shuffle per epoch itself; with `steps_per_epoch=`
    or without a seed Keras shuffles NumPy data with the process's random state
    and the resumed epochs see other batches.

    With `save_freq="epoch"` (the default) a run killed mid-epoch repeats that
    epoch from its start. An integer `save_freq` backs up every that many
    batches, but Keras then restarts the interrupted epoch at its first batch
    from mid-epoch weights: faster to resume, not exact.

    Args:
        directory: str or path. Where backups live; removed when `fit` ends
            normally.
        save_freq: "epoch" or int. See above.

    Returns:
        A `keras.callbacks.BackupAndRestore`.

    Example:
    ```python
    model = kerassl.SimCLR(kerassl.backbones.resnet18(input_shape=(32, 32, 3)), seed=0)
    model.compile(optimizer="adam")
    model.fit(images, epochs=100, batch_size=256,  # shuffle=True: the order follows seed=0
              callbacks=[kerassl.backup_and_restore("runs/simclr/backup")])
    ```

    Reference: `keras.callbacks.BackupAndRestore` (keras.io/api/callbacks/backup_and_restore).
    """
    if save_freq != "epoch" and (
        isinstance(save_freq, bool) or not isinstance(save_freq, int) or save_freq < 1
    ):
        raise ValueError(f'save_freq must be "epoch" or a positive int; got {save_freq!r}.')
    return keras.callbacks.BackupAndRestore(
        str(directory), save_freq=save_freq, double_checkpoint=True, delete_checkpoint=True
    )


class SeededOrder(keras.utils.PyDataset):
    """NumPy data fed in an order that depends only on (seed, epoch).

    Keras shuffles NumPy arrays with the process's random state, so a run
    resumed in a new process at epoch `e` sees epoch 0's order again. This
    dataset draws the order of epoch `e` from
    `np.random.default_rng([seed, e]).permutation(n)` instead: the same in
    every process, different in every epoch. `SSLMethod.fit` uses it for
    NumPy data when `shuffle=True` (Keras's default) and the method has a seed.

    The dataset is endless and Keras reads it with `steps_per_epoch` batches
    per epoch, so batch `i` of the stream belongs to epoch
    `first_epoch + i // steps_per_epoch`: no state has to be set between
    epochs (Keras may create an epoch's iterator, and prefetch from it, before
    that epoch's callbacks run). `first_epoch` is set by `StartEpoch`, the
    callback `fit` adds, from the first epoch `fit` runs (`initial_epoch`, or
    where `BackupAndRestore` resumes); a `fit` that starts at epoch 0 on a model
    that has already trained continues from the epochs its optimizer has
    stepped through, so calling `fit` again does not replay the same orders.

    Args:
        data: a NumPy array, or a tuple/list/dict of them (nested), as Keras
            unpacks a batch: `(x,)`, `(x, y)` or `(x, y, sample_weight)`.
            Every array has the same first dimension.
        batch_size: int. Batch size; the last batch of an epoch is smaller
            when the batch size does not divide the number of samples, as
            with Keras's own NumPy path.
        seed: int. With the epoch, decides the order.

    Example:
    ```python
    data = SeededOrder((images, labels), batch_size=256, seed=0)
    data.order(epoch=3)  # the permutation epoch 3 uses
    model.fit(data, steps_per_epoch=data.steps_per_epoch,
              callbacks=[StartEpoch(data)], shuffle=False)
    ```
    """

    def __init__(self, data, batch_size, seed):
        super().__init__()
        leaves = keras.tree.flatten(data)
        if not leaves or any(not isinstance(a, np.ndarray) or len(a) != len(leaves[0]) for a in leaves):
            raise ValueError("SeededOrder needs NumPy arrays that all have the same length.")
        self.count = len(leaves[0])
        self.data = data
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.steps_per_epoch = -(-self.count // self.batch_size)
        self.first_epoch = 0
        self._orders = {}  # epoch -> permutation; Keras reads at most two epochs at once

    def order(self, epoch):
        """The permutation of the sample indices that epoch `epoch` uses."""
        order = self._orders.get(epoch)
        if order is None:
            order = np.random.default_rng([self.seed, int(epoch)]).permutation(self.count)
            self._orders = {e: o for e, o in self._orders.items() if e >= epoch - 1}
            self._orders[epoch] = order
        return order

    @property
    def num_batches(self):
        return None  # endless: Keras counts `steps_per_epoch` batches per epoch

    def __getitem__(self, index):
        epoch, step = divmod(int(index), self.steps_per_epoch)
        rows = self.order(self.first_epoch + epoch)[step * self.batch_size : (step + 1) * self.batch_size]
        return keras.tree.map_structure(lambda array: array[rows], self.data)


class StartEpoch(keras.callbacks.Callback):
    """Tells a `SeededOrder` the first epoch of this `fit` (its stream starts there)."""

    def __init__(self, dataset):
        super().__init__()
        self.dataset = dataset
        self.started = False

    def on_train_begin(self, logs=None):
        self.started = False

    def on_epoch_begin(self, epoch, logs=None):
        if not self.started:  # before Keras creates the first epoch's iterator
            self.dataset.first_epoch = int(epoch) or self.epochs_already_trained()
            self.started = True

    def epochs_already_trained(self):
        # A second `fit` on the same model starts at epoch 0 but continues training:
        # count the epochs its optimizer has already stepped through, so it draws
        # new orders instead of replaying the first `fit`'s.
        optimizer = getattr(self.model, "optimizer", None)
        iterations = getattr(optimizer, "iterations", None)
        if iterations is None:
            return 0
        return int(keras.ops.convert_to_numpy(iterations)) // self.dataset.steps_per_epoch


def seeded_order(x, y, seed, fit_kwargs, steps_per_execution=1):
    """`(x, y, fit_kwargs)` with NumPy data wrapped in a `SeededOrder`, or unchanged.

    Wraps only when the order is Keras's to choose and ours would be exact:
    `shuffle=True`, a seed, every array NumPy, no `steps_per_epoch`, batches of
    more than one image, and a `steps_per_execution` that divides the batches of
    an epoch. A `validation_split` is cut from the end of the arrays first, as
    Keras cuts it.
    """
    kwargs = dict(fit_kwargs)
    if seed is None or kwargs.get("shuffle", True) is not True or kwargs.get("steps_per_epoch"):
        return x, y, fit_kwargs
    sample_weight = kwargs.get("sample_weight")
    parts = (x,) if y is None else (x, y)
    parts = parts if sample_weight is None else (x, y, sample_weight)
    leaves = keras.tree.flatten(parts)
    if not leaves or any(not isinstance(a, np.ndarray) for a in leaves):
        return x, y, fit_kwargs
    count = len(leaves[0])
    if any(len(a) != count for a in leaves):
        return x, y, fit_kwargs  # Keras reports the mismatch in its own words
    split = kwargs.pop("validation_split", None)
    if split:
        if kwargs.get("validation_data") is None:
            cut = int(np.floor(count * (1.0 - split)))
            val = keras.tree.map_structure(lambda a: a[cut:], parts)
            parts = keras.tree.map_structure(lambda a: a[:cut], parts)
            kwargs["validation_data"] = val
            count = len(keras.tree.flatten(parts)[0])
    batch_size = kwargs.pop("batch_size", None) or 32
    if min(batch_size, count) < 2:
        # Keras's own path keeps a batch of 1 in the static shape, where the contrastive
        # losses refuse it with a clear error (a PyDataset's batch axis is unknown), and
        # reports a split that leaves nothing to train on.
        return x, y, fit_kwargs
    dataset = SeededOrder(parts, batch_size, seed)
    if dataset.steps_per_epoch % max(int(steps_per_execution), 1):
        return x, y, fit_kwargs
    kwargs.pop("sample_weight", None)
    kwargs.update(shuffle=False, steps_per_epoch=dataset.steps_per_epoch)
    kwargs["callbacks"] = [*(kwargs.get("callbacks") or []), StartEpoch(dataset)]
    return dataset, None, kwargs
