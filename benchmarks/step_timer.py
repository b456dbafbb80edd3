"""The step timer every kerassl-side benchmark script uses."""

import time

import keras


class StepTimer(keras.callbacks.Callback):
    """Wall and CPU time of every training step (fit's batch hooks, synchronized on the loss)."""

    def __init__(self):
        super().__init__()
        self.times = []
        self.cpu_times = []

    def on_train_batch_begin(self, batch, logs=None):
        self.start = time.perf_counter()
        self.cpu_start = time.process_time()

    def on_train_batch_end(self, batch, logs=None):
        # Reading the loss waits for the step: with asynchronous dispatch (JAX)
        # the clock would otherwise stop at the launch.
        float((logs or {}).get("loss", 0.0))
        self.times.append(time.perf_counter() - self.start)
        self.cpu_times.append(time.process_time() - self.cpu_start)
