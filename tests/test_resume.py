"""Kill a training run with SIGKILL mid-epoch, run it again: it ends where an uninterrupted run ends.

Each run is a subprocess (tests/resume_worker.py) so the kill is real: no
`finally`, no callback's `on_train_end`, only what `BackupAndRestore` wrote.
"""

import os
import pathlib
import signal
import subprocess
import sys

import keras
import numpy as np
import pytest

import kerassl

ROOT = pathlib.Path(__file__).resolve().parents[1]


def run_worker(*args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run(
        [sys.executable, "-m", "tests.resume_worker", *map(str, args)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )


def relative_gap(a, b):
    keys = [k for k in a.files if k != "first_epoch"]
    assert keys == [k for k in b.files if k != "first_epoch"]
    num = sum(float(np.sum((a[k].astype("float64") - b[k].astype("float64")) ** 2)) for k in keys)
    den = sum(float(np.sum(a[k].astype("float64") ** 2)) for k in keys)
    return (num / den) ** 0.5


def kill_and_resume(name, tmp_path):
    """(relative L2 gap of every variable, epoch the resumed run started at)."""
    done = run_worker(name, tmp_path / "backup_full", tmp_path / "full.npz")
    assert done.returncode == 0, done.stderr[-3000:]
    killed = run_worker(name, tmp_path / "backup", tmp_path / "unused.npz", 2, 2)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert (tmp_path / "backup").exists() and not (tmp_path / "unused.npz").exists()
    resumed = run_worker(name, tmp_path / "backup", tmp_path / "resumed.npz")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert not (tmp_path / "backup").exists()  # removed once fit ended normally
    full, again = np.load(tmp_path / "full.npz"), np.load(tmp_path / "resumed.npz")
    return relative_gap(full, again), int(again["first_epoch"])


def test_shuffled_simclr_killed_mid_epoch_resumes_to_the_same_weights(tmp_path):
    """shuffle=True (Keras's default), a last batch of 2 and probe labels: still exact.

    The default suite's kill-and-resume test, on both backends; the other methods and
    SimCLR without shuffling are `test_killed_mid_epoch_resumes_to_the_same_weights` (slow).
    """
    gap, first_epoch = kill_and_resume("simclr-shuffled", tmp_path)
    assert first_epoch == 1  # it resumed at epoch 2 (0-based 1): epoch 1 was not redone
    assert gap <= 1e-5


class BatchRecorder(kerassl.SimCLR):
    """SimCLR that writes down each training batch's image ids (pixel [0, 0, 0]) and labels."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.seen = []

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if training:
            ids = keras.ops.convert_to_numpy(x)[:, 0, 0, 0].astype(int).tolist()
            self.seen.append((ids, keras.ops.convert_to_numpy(y).tolist()))
        return super().compute_loss(x, y, y_pred, sample_weight, training)


def pooled_dense_encoder():
    """The cheapest encoder: these tests read the batch order, run eagerly (slow on JAX)."""
    inputs = keras.Input((16, 16, 3))
    return keras.Model(inputs, keras.layers.Dense(4)(keras.layers.GlobalAveragePooling2D()(inputs)))


def batches_seen(seed, epochs=3, count=18, fits=1, **fit_kwargs):
    """Image ids of every training batch of a SimCLR fit on `count` images (id = pixel [0, 0, 0]).

    Identity views keep the ids readable and the eager steps cheap; the order comes
    from the method's seed (`SSLMethod.fit`), not from the views.
    """
    images = np.zeros((count, 16, 16, 3), "uint8")
    images[:, 0, 0, 0] = np.arange(count)
    model = BatchRecorder(pooled_dense_encoder(), 16, 8, augmenter=keras.layers.Identity(), num_classes=4, seed=seed)
    model.compile(optimizer="adam", run_eagerly=True)
    for _ in range(fits):
        model.fit(images, np.arange(count) % 4, batch_size=4, epochs=epochs, verbose=0, **fit_kwargs)
    for ids, labels in model.seen:
        assert labels == [i % 4 for i in ids]  # labels travel with their images
    return [ids for ids, _ in model.seen]


def test_shuffle_true_order_is_a_function_of_seed_and_epoch():
    first = batches_seen(seed=0)
    keras.utils.set_random_seed(123)  # process-level randomness does not matter
    second = batches_seen(seed=0)
    assert first == second
    assert [len(ids) for ids in first] == [4, 4, 4, 4, 2] * 3  # the last batch stays partial
    epochs = [sum(first[i : i + 5], []) for i in (0, 5, 10)]
    for order in epochs:
        assert sorted(order) == list(range(18))  # each epoch sees every image once
    assert epochs[0] != list(range(18))  # shuffled
    assert len({tuple(order) for order in epochs}) == 3  # reshuffled every epoch
    assert batches_seen(seed=1, epochs=1) != first[:5]  # the seed picks the order


def test_initial_epoch_replays_that_epochs_order():
    full = batches_seen(seed=0)
    resumed = batches_seen(seed=0, initial_epoch=2)
    assert resumed == full[10:]


def test_a_second_fit_continues_the_orders_instead_of_replaying_them():
    # fit(epochs=1) three times sees the orders of one fit(epochs=3), not epoch 0's thrice.
    assert batches_seen(seed=0, epochs=1, fits=3) == batches_seen(seed=0)


def test_shuffle_false_keeps_the_given_order():
    seen = batches_seen(seed=0, epochs=1, shuffle=False)
    assert sum(seen, []) == list(range(18))


def test_seeded_order_keeps_validation_split_from_the_end():
    seen = batches_seen(seed=0, epochs=1, validation_split=1 / 3)
    assert sorted(sum(seen, [])) == list(range(12))  # as Keras splits: the last third validates


@pytest.mark.slow  # three processes each (about 30 s); the shuffled SimCLR one is in the default suite
@pytest.mark.parametrize("name", ["simclr", "dino", "mae", "clip", "gan"])
def test_killed_mid_epoch_resumes_to_the_same_weights(name, tmp_path):
    gap, first_epoch = kill_and_resume(name, tmp_path)
    assert first_epoch == 1
    assert gap <= 1e-5


def test_a_fresh_method_is_built_by_compile_so_backup_and_restore_accepts_it(make_encoder, tmp_path):
    model = kerassl.SimCLR(make_encoder(), 16, 8, seed=0)
    assert not model.built
    model.compile(optimizer="adam")
    assert model.built
    images = np.zeros((8, 16, 16, 3), "uint8")
    model.fit(images, batch_size=4, epochs=1, verbose=0,
              callbacks=[kerassl.backup_and_restore(tmp_path / "b")])


def test_random_state_is_saved_and_restored_with_the_weights(make_encoder, tmp_path):
    model = kerassl.SimCLR(make_encoder(), 16, 8, seed=0)
    model.compile(optimizer="adam")
    model.fit(np.zeros((8, 16, 16, 3), "uint8"), batch_size=4, epochs=1, verbose=0)
    states = [keras.ops.convert_to_numpy(s) for s in model.random_states()]
    assert states and any(s[1] > 0 for s in states)  # the augmenters drew numbers
    model.save_weights(tmp_path / "w.weights.h5")
    fresh = kerassl.SimCLR(make_encoder(), 16, 8, seed=0)
    fresh.compile(optimizer="adam")
    fresh.optimizer.build(fresh.trainable_variables)  # as BackupAndRestore does before loading
    fresh.load_weights(tmp_path / "w.weights.h5")
    for a, b in zip(states, fresh.random_states()):
        np.testing.assert_array_equal(a, keras.ops.convert_to_numpy(b))
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    for a, b in zip(states, loaded.random_states()):
        np.testing.assert_array_equal(a, keras.ops.convert_to_numpy(b))


def test_backup_and_restore_checks_save_freq(tmp_path):
    with pytest.raises(ValueError, match="save_freq"):
        kerassl.backup_and_restore(tmp_path, save_freq=0)
