"""Each method's own learning signal moves the right way within a few dozen steps.

Fast learning checks for the default suite: tiny models on the embedded digits
(scikit-learn's 8x8 images, no download) or on a toy set whose answer is visible,
a few dozen steps, one seed. Each asserted margin sits well inside the spread
measured over seeds 0-4 on TensorFlow and seeds 0-2 on JAX (the numbers are beside
each assertion; `python -m tests.test_learning_signals [name ...] --seeds 5` prints
them again). Each signal is logged with the right pairing or labels, so a method that
stops learning fails here even when every shape and round trip is right; what each
method hands its loss is checked directly in `tests/test_wiring.py`.
"""

import math
import sys

from tests.conftest import tiny_encoder  # first: it points huggingface_hub at the local Hub

import keras
import numpy as np
import pytest
from sklearn.datasets import load_digits

import kerassl
from kerassl import augment
from kerassl import captions as captions_lib
from kerassl.methods.autoencoder import Autoencoder
from kerassl.methods.clip import CLIP
from kerassl.methods.dino import DINO
from kerassl.methods.jigsaw import Jigsaw
from kerassl.methods.mae import MAE
from kerassl.methods.rotnet import RotNet
from kerassl.methods.simclr import SimCLR
from kerassl.text import TextEncoder, Tokenizer


def digits(count=512, size=8):
    """The first `count` digits as uint8 (N, size, size, 1) and their labels."""
    data = load_digits()
    images = (data.images[:count] * (255.0 / 16.0)).round().astype("uint8")[..., None]
    if size != 8:
        images = np.repeat(np.repeat(images, size // 8, axis=1), size // 8, axis=2)
    return images, data.target[:count].astype("int32")


def history_of(model, x, y=None, epochs=4, batch_size=64, seed=0, learning_rate=3e-3):
    keras.utils.set_random_seed(seed)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate))
    return model.fit(x, y, batch_size=batch_size, epochs=epochs, verbose=0).history


# -- the signals, one function per method (seeded, so they can be measured) ----------


def simclr_signal(seed):
    keras.utils.set_random_seed(seed)
    x, _ = digits()
    # Crops of half the image or more: 8 px digits survive them.
    augmenter = augment.simclr_augmenter((8, 8), channels=1, scale=(0.5, 1.0), seed=seed)
    model = SimCLR(
        tiny_encoder((8, 8, 1)), projection_hidden_dim=32, projection_dim=16,
        augmenter=augmenter, seed=seed,
    )
    h = history_of(model, x, epochs=4, batch_size=32, seed=seed)
    return h["contrastive_accuracy"][0], h["contrastive_accuracy"][-1]


def probe_signal(seed, shuffle_labels=False):
    """Online probe on a toy set whose class is its bright quadrant (linearly separable).

    The encoder passes the pixels through (Flatten), so the probe alone decides.
    """
    rng = np.random.default_rng(seed)
    labels = (np.arange(256) % 4).astype("int32")
    images = rng.integers(0, 40, size=(256, 8, 8, 1)).astype("uint8")
    for i, label in enumerate(labels):
        r, c = divmod(int(label), 2)
        images[i, 4 * r : 4 * r + 4, 4 * c : 4 * c + 4] += 120
    if shuffle_labels:  # what a probe trained on other images' labels would see
        labels = rng.permutation(labels)
    keras.utils.set_random_seed(seed)
    pixels = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten()])
    model = SimCLR(
        pixels, projection_hidden_dim=16, projection_dim=8, num_classes=4,
        augmenter=keras.layers.Identity(), seed=seed,
    )
    h = history_of(model, images, labels, epochs=6, batch_size=32, seed=seed, learning_rate=0.01)
    return h["probe_accuracy"][-1]


def clip_signal(seed):
    names = ("red", "green", "blue")
    rng = np.random.default_rng(seed)
    labels = np.arange(96) % 3
    images = rng.integers(0, 60, size=(96, 8, 8, 3)).astype("uint8")
    for i, label in enumerate(labels):
        images[i, ..., label] += 180
    captions = captions_lib.captions_from_labels(labels, names, templates=["a {} square."], seed=seed)
    tokenizer = Tokenizer.from_texts(captions, max_length=8)
    keras.utils.set_random_seed(seed)
    text_encoder = TextEncoder(tokenizer.vocab_size, max_length=8, width=16, depth=1, num_heads=2)
    model = CLIP(tiny_encoder((8, 8, 3)), text_encoder, embed_dim=8, tokenizer=tokenizer, seed=seed)
    h = history_of(model, images, captions, epochs=6, batch_size=32, seed=seed)
    return h["image_to_text_accuracy"][0], h["image_to_text_accuracy"][-1]


def rotnet_signal(seed):
    keras.utils.set_random_seed(seed)
    x, _ = digits()
    model = RotNet(tiny_encoder((8, 8, 1)), hidden_dim=32)
    h = history_of(model, x, epochs=4, seed=seed)
    return h["rotation_accuracy"][0], h["rotation_accuracy"][-1]


def jigsaw_signal(seed):
    keras.utils.set_random_seed(seed)
    x, _ = digits(size=16)
    encoder = kerassl.backbones.small_convnet(input_shape=(None, None, 1), width=8, feature_dim=16)
    model = Jigsaw(encoder, grid=2, num_permutations=6, hidden_dim=32, seed=seed)
    h = history_of(model, x, epochs=4, seed=seed)
    return h["puzzle_accuracy"][0], h["puzzle_accuracy"][-1]


def mae_signal(seed):
    keras.utils.set_random_seed(seed)
    x, _ = digits(size=16)
    encoder = kerassl.vit.vit(16, 4, 1, hidden_dim=32, depth=1, num_heads=2)
    model = MAE(encoder, decoder_dim=32, decoder_depth=1, decoder_num_heads=2, seed=seed)
    h = history_of(model, x, epochs=4, seed=seed)
    # With normalized targets, predicting every hidden pixel as its patch mean scores 1.0.
    return h["reconstruction_loss"][0], h["reconstruction_loss"][-1]


def autoencoder_signal(seed):
    keras.utils.set_random_seed(seed)
    x, _ = digits()
    pixels = x / 255.0
    mean_image_error = float(np.mean((pixels - pixels.mean(axis=0)) ** 2))
    model = Autoencoder(tiny_encoder((8, 8, 1), feature_dim=32), decoder_width=16, seed=seed)
    h = history_of(model, x, epochs=6, batch_size=32, seed=seed)
    return mean_image_error, h["reconstruction_error"][-1]


def dino_agreement(model, x):
    """How often the student's class on the second crop is the teacher's on the first."""
    out = model(x, training=True)
    student = keras.ops.argmax(out["student_logits"][1], axis=-1)
    teacher = keras.ops.argmax(out["teacher_logits"][0] - model.center, axis=-1)
    return float(keras.ops.convert_to_numpy(keras.ops.mean(keras.ops.equal(student, teacher))))


def dino_signal(seed):
    keras.utils.set_random_seed(seed)
    x, _ = digits()
    model = DINO(
        tiny_encoder((8, 8, 1), width=16, feature_dim=32), head_hidden_dim=32,
        head_bottleneck_dim=16, head_output_dim=64, num_local_crops=0, momentum_start=0.9,
        teacher_temperature=0.04, seed=seed,
    )
    model.build(x.shape)
    before = dino_agreement(model, x[:256])
    h = history_of(model, x, epochs=4, seed=seed)
    after = dino_agreement(model, x[:256])
    return h["teacher_entropy"][-1], h["teacher_batch_entropy"][-1], before, after


def gan_signal(seed):
    from kerassl.methods.gan import GAN

    keras.utils.set_random_seed(seed)
    x, _ = digits(size=16)
    gan = GAN(latent_dim=16, image_shape=(16, 16, 1), width=8, seed=seed)
    gan.compile()
    h = gan.fit(x, batch_size=64, epochs=3, verbose=0).history
    return h["real_score"][-1], h["fake_score"][-1]


# -- the tests --------------------------------------------------------------------


def test_simclr_finds_the_other_view_more_often():
    before, after = simclr_signal(0)
    # Contrastive accuracy (chance 1/63), epoch 1 -> 4 of 16 steps each. Measured, TF
    # seeds 0-4: 0.069 -> 0.199, 0.052 -> 0.200, 0.062 -> 0.082, 0.082 -> 0.188,
    # 0.073 -> 0.132; JAX seeds 0-2: 0.073 -> 0.197, 0.077 -> 0.201,
    # 0.065 -> 0.158.
    assert after > 0.05 and after > before, (before, after)


def test_online_probe_learns_a_separable_toy_set_from_its_labels():
    accuracy = probe_signal(0)
    # Chance 0.25. Measured, TF seeds 0-4: 1.0 every time (0.30-0.34 with shuffled
    # labels); JAX seeds 0-2: 1.0 every time (0.29-0.32 shuffled).
    assert accuracy > 0.9, accuracy


def test_clip_matches_images_to_their_captions_more_often():
    before, after = clip_signal(0)
    # Image-to-text accuracy, a copy of the right caption counts (chance about 1/3),
    # epoch 1 -> 6. Measured, TF seeds 0-4: 0.375 -> 0.667, 0.438 -> 1.0, 0.646 -> 0.667,
    # 0.5 -> 1.0, 0.5 -> 1.0; JAX seeds 0-2: 0.302 -> 0.865, 0.490 -> 1.0, 0.469 -> 1.0.
    assert after > 0.6 and after > before, (before, after)


def test_rotnet_learns_rotations_above_chance():
    before, after = rotnet_signal(0)
    # Rotation accuracy (chance 0.25), epoch 1 -> 4. Measured, TF seeds 0-4: 0.406 -> 0.786,
    # 0.463 -> 0.840, 0.495 -> 0.801, 0.549 -> 0.822, 0.471 -> 0.828; JAX seeds 0-2:
    # 0.420 -> 0.780, 0.505 -> 0.821, 0.433 -> 0.820.
    assert after > 0.6 and after > before + 0.15, (before, after)


def test_jigsaw_solves_puzzles_above_chance():
    before, after = jigsaw_signal(0)
    # Puzzle accuracy (chance 1/6), epoch 1 -> 4. Measured, TF seeds 0-4: 0.252 -> 0.893,
    # 0.299 -> 0.893, 0.309 -> 0.854, 0.303 -> 0.887, 0.287 -> 0.863; JAX seeds 0-2:
    # 0.326 -> 0.850, 0.246 -> 0.834, 0.318 -> 0.893.
    assert after > 0.6 and after > before + 0.3, (before, after)


def test_mae_reconstructs_hidden_patches_better_than_their_mean():
    before, after = mae_signal(0)
    # Normalized-pixel loss on hidden patches (1.0 = predicting each patch's mean), epoch
    # 1 -> 4. Measured, TF seeds 0-4: 0.886 -> 0.770, 0.883 -> 0.783, 0.882 -> 0.784,
    # 0.877 -> 0.774, 0.885 -> 0.781; JAX seeds 0-2: 0.886 -> 0.783, 0.874 -> 0.783,
    # 0.868 -> 0.778.
    assert after < 0.85 and after < before - 0.05, (before, after)


def test_autoencoder_beats_the_mean_image():
    mean_image_error, after = autoencoder_signal(0)
    # Per-pixel MSE after 6 epochs against drawing the mean image (0.072). Measured, TF
    # seeds 0-4: 0.029-0.031; JAX seeds 0-2: 0.031, 0.031, 0.033.
    assert after < 0.6 * mean_image_error, (mean_image_error, after)


def test_dino_teacher_sharpens_without_collapsing_and_the_student_agrees():
    entropy, batch_entropy, before, after = dino_signal(0)
    # Entropy of the teacher's targets and of their batch mean (nats; uniform is log 64 =
    # 4.16), last epoch. Measured, TF seeds 0-4: 1.65 / 3.40, 1.59 / 3.40, 1.44 / 3.31,
    # 1.76 / 3.30, 1.32 / 3.09; JAX seeds 0-2: 1.79 / 3.48, 1.79 / 3.55,
    # 1.60 / 3.34.
    assert entropy < 0.6 * math.log(64), entropy
    assert batch_entropy > entropy + 1.0, (entropy, batch_entropy)
    # Student (second crop) and teacher (first crop) pick the same class (chance 1/64),
    # before -> after training. Measured, TF seeds 0-4: 0.066 -> 0.184, 0.086 -> 0.203,
    # 0.125 -> 0.160, 0.117 -> 0.145, 0.059 -> 0.223; JAX seeds 0-2: 0.102 -> 0.133,
    # 0.082 -> 0.145, 0.062 -> 0.262.
    assert after > 0.1 and after > before, (before, after)


@pytest.mark.skipif(
    keras.config.backend() not in ("tensorflow", "jax"), reason="GAN training is TF and JAX only"
)
def test_gan_discriminator_tells_real_from_generated():
    real, fake = gan_signal(0)
    # Mean D(x) on real and on generated images, epoch 3. Measured, TF seeds 0-4:
    # 0.781 / 0.357, 0.816 / 0.539, 0.603 / 0.496, 0.696 / 0.546, 0.708 / 0.450; JAX
    # seeds 0-2: 0.787 / 0.527, 0.719 / 0.413, 0.743 / 0.632.
    assert real > fake + 0.05, (real, fake)


SIGNALS = {
    "simclr": simclr_signal,
    "probe": probe_signal,
    "probe_shuffled_labels": lambda seed: probe_signal(seed, shuffle_labels=True),
    "clip": clip_signal,
    "rotnet": rotnet_signal,
    "jigsaw": jigsaw_signal,
    "mae": mae_signal,
    "autoencoder": autoencoder_signal,
    "dino": dino_signal,
    "gan": gan_signal,
}

if __name__ == "__main__":
    # python -m tests.test_learning_signals [names] [--seeds 5]: the measured spreads.
    args = sys.argv[1:]
    seeds = 5
    if "--seeds" in args:
        seeds = int(args[args.index("--seeds") + 1])
        args = args[: args.index("--seeds")] + args[args.index("--seeds") + 2 :]
    for name in args or SIGNALS:
        values = [SIGNALS[name](seed) for seed in range(seeds)]
        rounded = [tuple(round(float(v), 3) for v in np.atleast_1d(value)) for value in values]
        print(keras.config.backend(), name, rounded, flush=True)
