"""A training run that `tests/test_resume.py` kills with SIGKILL and resumes.

Usage: python -m tests.resume_worker METHOD BACKUP_DIR OUT.npz [KILL_EPOCH KILL_BATCH]

METHOD "simclr-shuffled" is SimCLR with `shuffle=True`, 18 images (a last batch
of 2) and labels for an online probe: the order comes from the method's seed
and the epoch, so the resumed process replays the same batches.

Trains a tiny METHOD for 3 epochs with `kerassl.backup_and_restore(BACKUP_DIR)`;
with KILL_EPOCH and KILL_BATCH (1-based) the process SIGKILLs itself after that
batch, mid-epoch, as an out-of-memory killer or a preempted machine would.
Otherwise it writes every variable of the finished method to OUT.npz.
"""

import os
import signal
import sys

import keras
import numpy as np

import kerassl

EPOCHS = 3
BATCH_SIZE = 4


class FirstEpoch(keras.callbacks.Callback):
    """Remembers the epoch `fit` started at: 0, or where the backup left off."""

    first = None

    def on_epoch_begin(self, epoch, logs=None):
        if FirstEpoch.first is None:
            FirstEpoch.first = epoch


class KillAt(keras.callbacks.Callback):
    def __init__(self, epoch, batch):
        super().__init__()
        self.kill_epoch, self.kill_batch, self.epoch = epoch, batch, 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch + 1

    def on_train_batch_end(self, batch, logs=None):
        if (self.epoch, batch + 1) == (self.kill_epoch, self.kill_batch):
            os.kill(os.getpid(), signal.SIGKILL)


def tiny_encoder(input_shape):
    inputs = keras.Input(input_shape)
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.BatchNormalization()(x)
    outputs = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, outputs)


def tiny_vit():
    return kerassl.vit.vit(16, patch_size=4, channels=3, hidden_dim=8, depth=1, num_heads=2)


def make(name):
    """(method, fit arguments) for a tiny run of `name`."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(16, 16, 16, 3)).astype("uint8")
    if name == "simclr":
        model = kerassl.SimCLR(tiny_encoder((16, 16, 3)), 8, 8, seed=0)
    elif name == "simclr-shuffled":
        images = rng.integers(0, 256, size=(18, 16, 16, 3)).astype("uint8")
        labels = rng.integers(0, 4, size=18)
        model = kerassl.SimCLR(tiny_encoder((16, 16, 3)), 8, 8, num_classes=4, seed=0)
        return model, {"x": images, "y": labels, "shuffle": True}
    elif name == "dino":
        model = kerassl.DINO(
            tiny_encoder((16, 16, 3)), head_hidden_dim=8, head_bottleneck_dim=4,
            head_output_dim=8, num_local_crops=1, seed=0,
        )
    elif name == "mae":
        model = kerassl.MAE(tiny_vit(), decoder_dim=8, decoder_depth=1, decoder_num_heads=2, seed=0)
    elif name == "clip":
        from kerassl.text import TextEncoder, Tokenizer

        captions = [f"a photo of thing {i % 4}" for i in range(len(images))]
        tokenizer = Tokenizer.from_texts(captions, max_length=8)
        text_encoder = TextEncoder(tokenizer.vocab_size, max_length=8, width=8, depth=1, num_heads=2)
        model = kerassl.CLIP(tiny_encoder((16, 16, 3)), text_encoder, embed_dim=8, tokenizer=tokenizer)
        return model, {"x": images, "y": captions}
    elif name == "gan":
        model = kerassl.GAN(latent_dim=4, image_shape=(16, 16, 1), width=4, seed=0)
        images = images[..., :1]
    else:
        raise SystemExit(f"unknown method {name}")
    return model, {"x": images}


def main(name, backup_dir, out, kill_epoch=None, kill_batch=None):
    keras.utils.set_random_seed(0)
    model, data = make(name)
    if name == "gan":
        model.compile()
    else:
        model.compile(optimizer=keras.optimizers.Adam(1e-3))
    callbacks = [kerassl.backup_and_restore(backup_dir), FirstEpoch()]
    if kill_epoch is not None:
        callbacks.append(KillAt(int(kill_epoch), int(kill_batch)))
    data.setdefault("shuffle", False)
    model.fit(**data, batch_size=BATCH_SIZE, epochs=EPOCHS, verbose=0, callbacks=callbacks)
    variables = {f"{i}:{v.path}": keras.ops.convert_to_numpy(v) for i, v in enumerate(model.variables)}
    np.savez(out, first_epoch=FirstEpoch.first, **variables)


if __name__ == "__main__":
    main(*sys.argv[1:])
