"""Stopping at the first non-finite training loss, with the last finite weights put back.

Below the methods and `finetune`, which both pass `StopOnNonFiniteLoss` to `fit`.
"""

import math

import keras
import numpy as np
from keras import ops


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite; the model holds its last finite weights."""


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Raises `NonFiniteLossError` at the first batch whose loss is NaN or infinite.

    Before raising, every variable of the model (weights, BatchNorm statistics,
    random state) is set back to its value before that batch, so a NaN step
    never leaves the caller's encoder NaN in place. Two snapshots are kept,
    copies on the device: the weights before the batch and one batch older,
    for a step whose gradients broke the weights while its loss still looked
    finite. The copies cost one device copy of the model per batch, and
    memory for two.

    Args:
        what: str. How the message names the run ("the training loss").

    Example:
    ```python
    model.fit(images, callbacks=[kerassl.nonfinite.StopOnNonFiniteLoss()])
    ```
    """

    def __init__(self, what="the training loss"):
        super().__init__()
        self.what = what
        self.epoch = 0
        self.snapshots = []

    def _variables(self):
        sync = getattr(self.model, "jax_state_sync", None)
        if sync is not None:
            sync()  # on JAX, fit keeps the state outside the variables between syncs
        return self.model.variables

    def _snapshot(self):
        values = [ops.copy(variable.value) for variable in self._variables()]
        self.snapshots = (self.snapshots + [values])[-2:]

    def on_train_begin(self, logs=None):
        self.snapshots = []
        self._snapshot()

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None or math.isfinite(float(loss)):
            self._snapshot()
            return
        restored = self._restore()
        raise NonFiniteLossError(
            f"{self.what} became {float(loss)} at epoch {self.epoch + 1}, batch {batch + 1}. "
            f"{restored} Usual causes: a learning rate too high for the optimizer (try 10x "
            "lower, or warm-up), NaN or infinite values in the data, or float16 overflow "
            "(use mixed_bfloat16 or float32)."
        )

    def _restore(self):
        variables = self.model.variables
        for age, values in enumerate(reversed(self.snapshots)):
            if all(
                np.all(np.isfinite(ops.convert_to_numpy(value)))
                for value in values
                if "float" in str(value.dtype)
            ):
                for variable, value in zip(variables, values):
                    variable.assign(value)
                when = "before this batch" if age == 0 else "one batch earlier"
                return f"The model's variables were restored to their last finite values ({when})."
        return (
            "No finite weights were left to restore: the model was not finite when this "
            "fit began."
        )
