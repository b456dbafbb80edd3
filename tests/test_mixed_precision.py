"""Every method trains under mixed_bfloat16 and mixed_float16 (with loss scaling).

Three steps on one batch in each policy, no NaN, and the first step's loss
within 1e-2 (relative) of the float32 run from the same weights. Views are
deterministic where a method takes an augmenter (random draws made in a 16-bit
compute dtype are other draws, hence other views and another loss); the
default augmenters run under float16 in `test_default_views_in_float16`. Losses,
logits, softmax, logsumexp and norms are computed in float32 whatever the
compute dtype, and `compile` wraps the optimizer in a `LossScaleOptimizer`
under mixed_float16 (Keras' `auto_scale_loss`).
"""

import math

import keras
import numpy as np
import pytest

import kerassl
from kerassl import augment
from kerassl.text import TextEncoder, Tokenizer
from tests.conftest import tiny_encoder

POLICIES = ("mixed_bfloat16", "mixed_float16")


def tiny_vit():
    return kerassl.backbones.vit(16, patch_size=4, hidden_dim=16, depth=1, num_heads=2)


def free_size_encoder(channels=3):
    return tiny_encoder(input_shape=(None, None, channels))


def clip():
    tokenizer = Tokenizer(None, max_length=8)
    text = TextEncoder(tokenizer.vocab_size, max_length=8, width=8, depth=1, num_heads=2)
    return kerassl.CLIP(tiny_encoder(), text, embed_dim=8, tokenizer=tokenizer, seed=0)


# name -> (make the method, its training data)
METHODS = {
    "simclr": lambda: kerassl.SimCLR(
        tiny_encoder(), projection_hidden_dim=16, projection_dim=8,
        augmenter=keras.layers.Identity(), seed=0,
    ),
    "clip": clip,
    "dino": lambda: kerassl.DINO(
        tiny_encoder(), head_hidden_dim=16, head_bottleneck_dim=8, head_output_dim=32,
        num_local_crops=2, local_crop_size=8, global_augmenter=keras.layers.Identity(),
        local_augmenter=keras.layers.Resizing(8, 8), seed=0,
    ),
    "mae": lambda: kerassl.MAE(
        tiny_vit(), decoder_dim=16, decoder_depth=1, decoder_num_heads=2,
        augmenter=keras.layers.Identity(), seed=0,
    ),
    "autoencoder": lambda: kerassl.Autoencoder(tiny_encoder(), decoder_width=8, seed=0),
    "rotnet": lambda: kerassl.RotNet(tiny_encoder(), hidden_dim=16, seed=0),
    "jigsaw": lambda: kerassl.Jigsaw(free_size_encoder(), num_permutations=10, hidden_dim=16, seed=0),
    "gan": lambda: kerassl.GAN(latent_dim=8, image_shape=(16, 16, 3), width=4, seed=0),
}


def batch(name):
    images = np.random.default_rng(0).integers(0, 256, (8, 16, 16, 3)).astype("uint8")
    if name == "clip":
        return (images, np.random.default_rng(1).integers(1, 200, (8, 8)).astype("int32"))
    return images


@pytest.fixture
def restore_policy():
    yield
    keras.config.set_dtype_policy("float32")


def three_steps(name, policy, weights=None):
    keras.config.set_dtype_policy(policy)
    keras.utils.set_random_seed(0)
    model = METHODS[name]()
    data = batch(name)
    compile_method(model, 1e-3)
    losses = []
    for step in range(3):
        history = model.fit(data, batch_size=8, epochs=1, shuffle=False, verbose=0)
        if step == 0 and weights is not None:
            # The first call built the model; restart from the float32 run's weights.
            model.set_weights(weights)
            history = model.fit(data, batch_size=8, epochs=1, shuffle=False, verbose=0)
        losses.append(first_loss(history))
    return model, losses


def compile_method(model, learning_rate):
    if isinstance(model, kerassl.GAN):
        model.compile(
            generator_optimizer=keras.optimizers.Adam(learning_rate),
            discriminator_optimizer=keras.optimizers.Adam(learning_rate),
        )
    else:
        model.compile(optimizer=keras.optimizers.Adam(learning_rate))


def first_loss(history):
    logs = history.history
    return logs["loss"][0] if "loss" in logs else logs["generator_loss"][0]


def initial_weights(name):
    """The weights a float32 model has before its first step (built by one fit, then reset)."""
    keras.config.set_dtype_policy("float32")
    keras.utils.set_random_seed(0)
    model = METHODS[name]()
    data = batch(name)
    compile_method(model, 0.0)
    model.fit(data, batch_size=8, epochs=1, shuffle=False, verbose=0)
    weights = model.get_weights()
    return weights


@pytest.mark.slow  # 30-90 s each on 2 shared cores: four compiled steps per method
@pytest.mark.parametrize("name", sorted(METHODS))
def test_method_trains_in_each_mixed_policy(name, restore_policy):
    start = initial_weights(name)
    _, reference = three_steps(name, "float32", start)
    assert all(math.isfinite(v) for v in reference), reference
    for policy in POLICIES:
        model, losses = three_steps(name, policy, start)
        assert model.dtype_policy.name == policy
        assert all(math.isfinite(v) for v in losses), f"{policy}: {losses}"
        gap = abs(losses[0] - reference[0]) / max(abs(reference[0]), 1.0)
        assert gap <= 1e-2, f"{policy}: first loss {losses[0]:.5f} against float32 {reference[0]:.5f}"
        if policy == "mixed_float16" and name != "gan":
            assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)


@pytest.mark.parametrize("policy", POLICIES)
def test_default_views_in_float16(policy, restore_policy):
    keras.config.set_dtype_policy(policy)
    views = augment.simclr_augmenter((16, 16), 3, seed=0)
    images = keras.ops.cast(batch("simclr"), policy.split("_")[1]) / 255.0
    out = keras.ops.convert_to_numpy(keras.ops.cast(views(images, training=True), "float32"))
    assert out.shape == (8, 16, 16, 3) and np.all(np.isfinite(out))
    assert 0.0 <= out.min() and out.max() <= 1.0 + 1e-2


def test_dino_clips_the_inner_optimizer_under_loss_scaling(restore_policy):
    keras.config.set_dtype_policy("mixed_float16")
    model = METHODS["dino"]()
    model.compile(optimizer=keras.optimizers.AdamW(1e-3))
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert model.optimizer.inner_optimizer.clipnorm == model.gradient_clip_norm
