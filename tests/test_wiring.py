"""Wiring: each method feeds its loss the views, pairs, targets and labels it claims to.

Loss functions are checked against NumPy in their own test files; these tests check
what the methods hand them: that SimCLR pairs each view with the other view of the
same image, that DINO's targets are the teacher head on the teacher encoder, that the
attention map is the CLS row of softmax(QK^T / sqrt(d)), that the online probe learns
from the labels it is given and from nothing else, and so on for every method. Each
test would fail under one of the breakages listed in `tools/mutations.py`.
"""

import keras
import numpy as np
import pytest
from keras import ops

import kerassl
from kerassl.methods.autoencoder import Autoencoder
from kerassl.methods.clip import CLIP
from kerassl.methods.dino import DINO
from kerassl.methods.jigsaw import Jigsaw
from kerassl.methods.mae import MAE
from kerassl.methods.rotnet import RotNet
from kerassl.methods.simclr import SimCLR
from kerassl.text import TextEncoder, Tokenizer
from tests.conftest import random_images, tiny_encoder


def numpy(x):
    return np.asarray(ops.convert_to_numpy(x), dtype="float64")


def log_softmax(logits):
    logits = logits - logits.max(axis=-1, keepdims=True)
    return logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))


def cross_entropy(labels, logits):
    return -np.mean(log_softmax(logits)[np.arange(len(labels)), labels])


def normalize(z):
    return z / np.linalg.norm(z, axis=-1, keepdims=True)


def flatten_encoder(shape):
    """An encoder that returns its input pixels, so features show the views themselves."""
    return keras.Sequential([keras.Input(shape), keras.layers.Flatten()], name="pixels")


def conv_encoder(shape, channels=8):
    """A small convnet without BatchNorm: the same output in training and inference."""
    return keras.Sequential(
        [
            keras.Input(shape),
            keras.layers.Conv2D(channels, 3, padding="same", activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
        ],
        name="conv",
    )


# -- SimCLR ---------------------------------------------------------------------


def numpy_nt_xent(z1, z2, temperature):
    """The SimCLR loss written out: view i's positive is view i + N (mod 2N)."""
    z = normalize(np.concatenate([z1, z2]))
    logits = z @ z.T / temperature
    np.fill_diagonal(logits, -np.inf)
    total = len(z)
    positives = (np.arange(total) + len(z1)) % total
    return cross_entropy(positives, logits), np.mean(logits.argmax(axis=1) == positives)


def test_simclr_pairs_each_view_with_the_other_view_of_its_image():
    model = SimCLR(tiny_encoder(), projection_hidden_dim=16, projection_dim=8, seed=0)
    images = random_images(8)
    model.build(images.shape)
    y_pred = model(images, training=True)
    loss = model.compute_loss(images, y_pred=y_pred)
    z = numpy(y_pred["projections"])
    expected_loss, expected_accuracy = numpy_nt_xent(z[:8], z[8:], model.temperature)
    np.testing.assert_allclose(numpy(loss), expected_loss, rtol=1e-4)
    accuracy = numpy(model.contrastive_accuracy_tracker.result())
    np.testing.assert_allclose(accuracy, expected_accuracy, atol=1e-6)


def test_simclr_views_differ_from_each_other_and_from_the_image():
    model = SimCLR(flatten_encoder((16, 16, 3)), projection_hidden_dim=8, projection_dim=4, seed=0)
    images = random_images(8)
    views = numpy(model(images, training=True)["features"])
    pixels = images.reshape(8, -1) / 255.0
    first, second = views[:8], views[8:]
    # Crops, flips and colour jitter: every pair differs (mean |difference| 0.1-0.3 here).
    assert np.abs(first - second).mean(axis=1).min() > 0.02
    assert np.abs(first - pixels).mean(axis=1).min() > 0.02


# -- the online probe --------------------------------------------------------------


def test_probe_loss_is_cross_entropy_on_the_labels_given_for_every_view():
    model = SimCLR(tiny_encoder(), projection_hidden_dim=8, projection_dim=4, num_classes=3, seed=0)
    model.build((None, 16, 16, 3))
    rng = np.random.default_rng(0)
    features = rng.normal(size=(12, 16)).astype("float32")  # 2 views of 6 images
    labels = np.array([0, 1, 2, 2, 1, 0], dtype="int32")
    loss = model.online_probe_loss(labels, ops.convert_to_tensor(features))
    kernel, bias = (numpy(w) for w in model.probe.weights)
    logits = features @ kernel + bias
    tiled = np.tile(labels, 2)
    np.testing.assert_allclose(numpy(loss), cross_entropy(tiled, logits), rtol=1e-5)
    accuracy = numpy(model.probe_accuracy_tracker.result())
    np.testing.assert_allclose(accuracy, np.mean(logits.argmax(axis=1) == tiled), atol=1e-6)


def test_labels_reach_the_probe_and_never_the_encoder():
    images = random_images(16)
    labels = np.arange(16, dtype="int32") % 3

    def train(labels):
        keras.utils.set_random_seed(0)
        model = SimCLR(
            tiny_encoder(), projection_hidden_dim=8, projection_dim=4, num_classes=3, seed=0
        )
        model.compile(optimizer=keras.optimizers.SGD(0.1))
        model.fit(images, labels, batch_size=8, epochs=1, shuffle=False, verbose=0)
        return [numpy(w) for w in model.encoder.weights], [numpy(w) for w in model.probe.weights]

    encoder_a, probe_a = train(labels)
    encoder_b, probe_b = train((labels + 1) % 3)
    for a, b in zip(encoder_a, encoder_b):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert max(np.abs(a - b).max() for a, b in zip(probe_a, probe_b)) > 1e-3


# -- CLIP --------------------------------------------------------------------------


def make_clip():
    captions = ["a red square.", "a green square.", "a blue square.", "a red thing."]
    tokenizer = Tokenizer.from_texts(captions, max_length=8)
    text_encoder = TextEncoder(tokenizer.vocab_size, max_length=8, width=16, depth=1, num_heads=2)
    model = CLIP(tiny_encoder(), text_encoder, embed_dim=8, tokenizer=tokenizer)
    return model, captions


def test_clip_loss_pairs_image_i_with_caption_i_in_both_directions():
    model, captions = make_clip()
    images = random_images(4)
    tokens = model.tokenizer(captions)
    model.build((None, 16, 16, 3))
    y_pred = model((images, tokens), training=True)
    loss = model.compute_loss((images, tokens), y_pred=y_pred)
    image_z, text_z = numpy(y_pred["image_embeddings"]), numpy(y_pred["text_embeddings"])
    logits = numpy(model.logit_scale()) * normalize(image_z) @ normalize(text_z).T
    pairs = np.arange(4)
    expected = 0.5 * (cross_entropy(pairs, logits) + cross_entropy(pairs, logits.T))
    np.testing.assert_allclose(numpy(loss), expected, rtol=1e-4)


def test_clip_text_embeddings_depend_on_the_text():
    model, captions = make_clip()
    model.build((None, 16, 16, 3))
    texts = numpy(model.encode_text(captions))
    distances = np.linalg.norm(texts[:, None] - texts[None], axis=-1)
    assert distances[~np.eye(4, dtype=bool)].min() > 1e-3


# -- DINO --------------------------------------------------------------------------


def numpy_dino_loss(student, teacher, center, ts, tt):
    targets = np.exp(log_softmax((teacher - center) / tt))
    log_p = log_softmax(student / ts)
    terms = [
        np.mean(np.sum(-targets[g] * log_p[v], axis=-1))
        for g in range(len(teacher))
        for v in range(len(student))
        if v != g
    ]
    return np.mean(terms)


def make_dino(**kwargs):
    kwargs.setdefault("num_local_crops", 0)
    return DINO(
        conv_encoder((16, 16, 3)), head_hidden_dim=16, head_bottleneck_dim=8, head_output_dim=32,
        head_batch_norm=False, seed=0, **kwargs,
    )


def test_dino_targets_are_the_teacher_head_on_the_teacher_encoder():
    model = make_dino(global_augmenter=keras.layers.Identity())
    images = random_images(4)
    model.build(images.shape)
    rng = np.random.default_rng(0)
    for teacher, _ in model.ema_pairs():  # a teacher that differs from the student
        teacher.assign(teacher + rng.normal(size=teacher.shape).astype("float32") * 0.3)
    model.step_counter.assign(1.0)  # past the first step, which copies the student
    model.center.assign(rng.normal(size=model.center.shape).astype("float32"))
    y_pred = model(images, training=True)
    views = ops.concatenate([model.prepare_images(images)] * 2, axis=0)
    teacher = numpy(model.teacher_head(model.teacher_encoder(views)))
    student = numpy(model.head(model.student_encoder(views)))
    assert np.abs(teacher - student).max() > 1e-3  # the check below can tell them apart
    np.testing.assert_allclose(
        numpy(y_pred["teacher_logits"]), teacher.reshape(2, 4, -1), rtol=1e-4, atol=1e-5
    )
    np.testing.assert_allclose(
        numpy(y_pred["student_logits"]), student.reshape(2, 4, -1), rtol=1e-4, atol=1e-5
    )
    loss = model.compute_loss(images, y_pred=y_pred, training=False)
    expected = numpy_dino_loss(
        student.reshape(2, 4, -1), teacher.reshape(2, 4, -1), numpy(model.center),
        model.student_temperature, model.teacher_temperature,
    )
    np.testing.assert_allclose(numpy(loss), expected, rtol=1e-4)


def test_dino_global_crops_differ():
    model = DINO(
        flatten_encoder((16, 16, 3)), head_hidden_dim=8, head_bottleneck_dim=4, head_output_dim=8,
        num_local_crops=0, seed=0,
    )
    images = random_images(8)
    model.build(images.shape)
    pixels = images.reshape(8, -1) / 255.0
    views = numpy(model(images, training=True)["features"])  # the student's global crops
    first, second = views[:8], views[8:]
    assert np.abs(first - second).mean(axis=1).min() > 0.02
    assert np.abs(first - pixels).mean(axis=1).min() > 0.02


# -- ViT attention maps ----------------------------------------------------------


def test_attention_map_is_the_cls_row_of_softmax_qk_over_sqrt_d():
    encoder = kerassl.vit.vit(16, 4, 3, hidden_dim=16, depth=2, num_heads=2)
    images = np.random.default_rng(0).uniform(size=(2, 16, 16, 3)).astype("float32")
    maps = kerassl.vit.attention_maps(encoder, images)
    transformer = kerassl.vit.find_transformer(encoder)
    tokens = transformer.embed(ops.convert_to_tensor(images))
    cls = ops.zeros_like(tokens[:, :1]) + transformer.cls_token + transformer.cls_position
    tokens = ops.concatenate([cls, tokens], axis=1)
    for block in transformer.blocks[:-1]:
        tokens = block(tokens)
    last = transformer.blocks[-1]
    qkv = numpy(last.attention.qkv(last.norm1(tokens)))  # (B, T, 3 * D)
    heads, head_dim = last.attention.num_heads, last.attention.head_dim
    qkv = qkv.reshape(2, 17, 3, heads, head_dim)
    query, key = qkv[:, 0, 0], qkv[:, :, 1]  # the CLS token's query; every token's key
    scores = np.einsum("bhd,bkhd->bhk", query, key) / np.sqrt(head_dim)
    weights = np.exp(log_softmax(scores))
    np.testing.assert_allclose(maps, weights[:, :, 1:].reshape(2, heads, 4, 4), rtol=1e-4, atol=1e-6)


# -- MAE ----------------------------------------------------------------------------


def make_mae():
    encoder = kerassl.vit.vit(16, 4, 3, hidden_dim=16, depth=1, num_heads=2)
    return MAE(encoder, decoder_dim=16, decoder_depth=1, decoder_num_heads=2, seed=0)


def test_mae_loss_is_scored_on_the_hidden_patches():
    model = make_mae()
    images = random_images(4)
    model.build(images.shape)
    y_pred = model(images, training=True)
    loss = model.compute_loss(images, y_pred=y_pred)
    predictions, targets, mask = (numpy(y_pred[k]) for k in ("predictions", "targets", "mask"))
    assert np.all(mask.sum(axis=1) == model.num_masked(16))
    mean, var = targets.mean(-1, keepdims=True), targets.var(-1, keepdims=True)
    error = ((predictions - (targets - mean) / np.sqrt(var + 1e-6)) ** 2).mean(-1)
    np.testing.assert_allclose(numpy(loss), (error * mask).sum() / mask.sum(), rtol=1e-4)


def test_mae_decoder_predictions_depend_on_the_encoded_patches():
    model = make_mae()
    model.build((None, 16, 16, 3))
    keep, restore, _ = kerassl.methods.mae.random_masking(2, 16, 12, seed=0)
    transformer = model.transformer
    images = ops.convert_to_tensor(random_images(2).astype("float32") / 255.0)
    tokens = transformer.encode(images, keep_indices=keep)
    predictions = numpy(model.decode(tokens, restore, (4, 4)))
    shuffled = numpy(model.decode(ops.flip(tokens, axis=0), restore, (4, 4)))
    assert np.abs(predictions - shuffled).max() > 1e-3


# -- RotNet -------------------------------------------------------------------------


def test_rotnet_label_k_goes_with_the_image_turned_k_quarters():
    model = RotNet(flatten_encoder((8, 8, 1)), hidden_dim=None)
    images = random_images(3, size=8, channels=1)
    model.build(images.shape)
    y_pred = model(images, training=True)
    features = numpy(y_pred["features"]).reshape(4, 3, 8, 8, 1)
    for k in range(4):
        np.testing.assert_allclose(features[k], np.rot90(images / 255.0, k, axes=(1, 2)), atol=1e-6)
    loss = model.compute_loss(images, y_pred=y_pred)
    labels = np.repeat(np.arange(4), 3)
    np.testing.assert_allclose(numpy(loss), cross_entropy(labels, numpy(y_pred["logits"])), rtol=1e-5)


# -- Jigsaw -------------------------------------------------------------------------


def test_jigsaw_loss_scores_each_puzzle_against_its_own_permutation():
    encoder = kerassl.backbones.small_convnet(input_shape=(None, None, 3), width=4, feature_dim=8)
    model = Jigsaw(encoder, grid=2, num_permutations=6, hidden_dim=None, seed=0)
    images = random_images(8)
    model.build(images.shape)
    y_pred = model(images, training=True)
    labels = numpy(y_pred["puzzle_labels"]).astype(int)
    assert len(set(labels)) > 1
    loss = model.compute_loss(images, y_pred=y_pred)
    np.testing.assert_allclose(numpy(loss), cross_entropy(labels, numpy(y_pred["logits"])), rtol=1e-5)


def test_jigsaw_tiles_follow_the_drawn_permutation():
    encoder = kerassl.backbones.small_convnet(input_shape=(None, None, 3), width=4, feature_dim=8)
    model = Jigsaw(encoder, grid=2, num_permutations=6, tile_size=8, hidden_dim=None, seed=0)
    images = random_images(16).astype("float32") / 255.0
    tiles, labels = (numpy(t) for t in model.shuffled_tiles(ops.convert_to_tensor(images)))
    assert len(set(labels.astype(int))) > 1
    for b, label in enumerate(labels.astype(int)):
        for position, cell in enumerate(model.permutations[label]):
            r, c = divmod(int(cell), 2)
            np.testing.assert_allclose(tiles[b, position], images[b, 8 * r : 8 * r + 8, 8 * c : 8 * c + 8])


# -- Autoencoder -------------------------------------------------------------------


def test_denoising_autoencoder_targets_are_the_clean_images():
    model = Autoencoder(tiny_encoder(), noise="gaussian", decoder_width=8, seed=0)
    images = random_images(4)
    model.build(images.shape)
    y_pred = model(images, training=True)
    np.testing.assert_allclose(numpy(y_pred["targets"]), images / 255.0, atol=1e-6)


def test_autoencoder_reconstructions_depend_on_the_features():
    model = Autoencoder(tiny_encoder(), decoder_width=8, seed=0)
    images = random_images(4)
    model.build(images.shape)
    reconstructions = numpy(model(images, training=True)["reconstructions"])
    assert np.abs(reconstructions[0] - reconstructions[1]).max() > 1e-4


# -- GAN ----------------------------------------------------------------------------


@pytest.mark.skipif(
    keras.config.backend() not in ("tensorflow", "jax"), reason="GAN training is TF and JAX only"
)
def test_gan_discriminator_is_scored_on_real_images_as_real():
    from kerassl.methods.gan import GAN

    gan = GAN(latent_dim=8, image_shape=(16, 16, 1), width=4, seed=0)
    gan.build()
    images = ops.convert_to_tensor(random_images(8, channels=1).astype("float32") / 255.0)
    loss, (real_logits, fake_logits) = gan._discriminator_objective(images)
    np.testing.assert_allclose(
        numpy(real_logits), numpy(gan.discriminator(images, training=True)), rtol=1e-4, atol=1e-5
    )

    def bce(target, logits):
        return np.mean(np.logaddexp(0.0, logits) - target * logits)

    expected = bce(1.0, numpy(real_logits)) + bce(0.0, numpy(fake_logits))
    np.testing.assert_allclose(numpy(loss), expected, rtol=1e-5)
