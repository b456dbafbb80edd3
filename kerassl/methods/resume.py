"""Resuming a killed training run exactly where its last backup left it."""

import keras


def backup_and_restore(directory, save_freq="epoch"):
    """A `keras.callbacks.BackupAndRestore` that resumes a kerassl run exactly.

    Pass it to `fit` (`callbacks=[kerassl.backup_and_restore("ckpt/")]`) and run
    the same script again after a crash or a SIGKILL: training continues from
    the last backup with every weight, optimizer slot, schedule counter and
    random state (augmenters, masks, noise) as they were, so with the same seed
    and a data order that does not depend on the process (`shuffle=False`, or a
    dataset seeded per epoch) it ends with the weights of an uninterrupted run.
    Methods build on `compile` when the encoder declares its input shape, as
    the callback requires.

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
    model.fit(images, epochs=100, shuffle=False,
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
