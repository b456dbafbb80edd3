"""Tests for kerassl.backbones: shapes, stems, parameter counts, wrap, saving."""

import keras
import numpy as np
import pytest

from kerassl import backbones

from tests.conftest import infer, random_images


def _images(n=2, size=32, channels=3):
    return random_images(n=n, size=size, channels=channels, dtype="float32")


# JAX compiles each random initializer once per weight shape (~0.3 s each):
# a MobileNet's many distinct shapes cost ~13 s of CPU there, ~2 s on TensorFlow.
SLOW_ON_JAX = pytest.mark.slow if keras.config.backend() == "jax" else (lambda test: test)


def _trainable_count(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def _non_trainable_count(model):
    return sum(int(np.prod(w.shape)) for w in model.non_trainable_weights)


# Parameter counts from the architecture, independently of the Keras code:
# convs have no bias; each BatchNormalization has gamma and beta (trainable)
# and a moving mean and variance (not trainable).
def _conv(kernel, cin, cout):
    return kernel * kernel * cin * cout


def _resnet_counts(kind, width, stem_kernel, channels=3):
    """(trainable, non-trainable) parameter counts of a ResNet without classifier."""
    conv_weights, bn_channels = _conv(stem_kernel, channels, width), width
    cin = width
    blocks = (2, 2, 2, 2) if kind == "resnet18" else (3, 4, 6, 3)
    for stage, num_blocks in enumerate(blocks):
        mid = width * 2**stage
        cout = mid if kind == "resnet18" else 4 * mid
        for index in range(num_blocks):
            if kind == "resnet18":
                conv_weights += _conv(3, cin, mid) + _conv(3, mid, cout)
                bn_channels += mid + cout
            else:
                conv_weights += _conv(1, cin, mid) + _conv(3, mid, mid) + _conv(1, mid, cout)
                bn_channels += 2 * mid + cout
            if index == 0 and (stage > 0 or cin != cout):
                conv_weights += _conv(1, cin, cout)
                bn_channels += cout
            cin = cout
    return conv_weights + 2 * bn_channels, 2 * bn_channels


@pytest.mark.parametrize(
    "stem, size, final",
    [("cifar", 32, 4), ("imagenet", 64, 2), ("cifar", 16, 2)],
)
def test_resnet18_shapes_per_stem(stem, size, final):
    encoder = backbones.resnet18(input_shape=(size, size, 3), stem=stem, width=8)
    assert encoder.output.shape == (None, 64)
    assert encoder.get_layer("avg_pool").input.shape == (None, final, final, 64)
    features = infer(encoder, _images(size=size))
    assert features.shape == (2, 64)
    assert np.all(np.isfinite(features))


def test_cifar_stem_keeps_resolution_until_first_stage():
    encoder = backbones.resnet18(input_shape=(32, 32, 3), stem="cifar", width=8)
    assert encoder.get_layer("stem_relu").output.shape == (None, 32, 32, 8)
    assert encoder.get_layer("stage1_block2_out").output.shape == (None, 32, 32, 8)
    assert encoder.get_layer("stage2_block1_out").output.shape == (None, 16, 16, 16)
    assert "stem_pool" not in [layer.name for layer in encoder.layers]
    assert encoder.get_layer("stem_conv").kernel.shape == (3, 3, 3, 8)


def test_imagenet_stem_downsamples_by_four():
    encoder = backbones.resnet18(input_shape=(64, 64, 3), stem="imagenet", width=8)
    assert encoder.get_layer("stem_conv").kernel.shape == (7, 7, 3, 8)
    assert encoder.get_layer("stem_relu").output.shape == (None, 32, 32, 8)
    assert encoder.get_layer("stem_pool").output.shape == (None, 16, 16, 8)


@pytest.mark.parametrize(
    "input_shape, has_pool",
    [((32, 32, 3), False), ((64, 64, 1), False), ((96, 96, 3), True), ((None, None, 3), True)],
)
def test_auto_stem(input_shape, has_pool):
    encoder = backbones.resnet18(input_shape=input_shape, stem="auto", width=8)
    assert ("stem_pool" in [layer.name for layer in encoder.layers]) == has_pool


@pytest.mark.parametrize("stem, size, final", [("cifar", 16, 2), ("imagenet", 64, 2)])
def test_resnet50_shapes(stem, size, final):
    encoder = backbones.resnet50(input_shape=(size, size, 3), stem=stem, width=8)
    assert encoder.output.shape == (None, 256)
    assert encoder.get_layer("avg_pool").input.shape == (None, final, final, 256)
    # The first block widens 8 -> 32 channels, so it needs a projection shortcut.
    assert encoder.get_layer("stage1_block1_downsample_conv").kernel.shape == (1, 1, 8, 32)
    # Stride on the 3x3 conv (v1.5): the first 1x1 keeps the resolution.
    if stem == "cifar":
        assert encoder.get_layer("stage2_block1_1_conv").output.shape[1] == size
        assert encoder.get_layer("stage2_block1_2_conv").output.shape[1] == size // 2
    assert infer(encoder, _images(size=size)).shape == (2, 256)


def test_resnet18_parameter_count_matches_standard():
    encoder = backbones.resnet18(input_shape=(32, 32, 3), stem="cifar", width=64)
    trainable, non_trainable = _resnet_counts("resnet18", 64, stem_kernel=3)
    # torchvision resnet18: 11,689,512 - fc (512*1000 + 1000) - 7x7 stem + 3x3 stem
    assert 11_689_512 - 513_000 - 7 * 7 * 3 * 64 + 3 * 3 * 3 * 64 == 11_168_832
    assert _trainable_count(encoder) == trainable == 11_168_832
    assert _non_trainable_count(encoder) == non_trainable


@pytest.mark.slow  # ~6 s of CPU on JAX for two full-width builds
def test_resnet_parameter_counts_imagenet_stem():
    r18 = backbones.resnet18(input_shape=(224, 224, 3), stem="imagenet", width=64)
    # torchvision resnet18 / resnet50 minus their fc layers.
    assert _trainable_count(r18) == 11_689_512 - 513_000
    r50 = backbones.resnet50(input_shape=(224, 224, 3), stem="imagenet", width=64)
    trainable, _ = _resnet_counts("resnet50", 64, stem_kernel=7)
    assert _trainable_count(r50) == trainable == 25_557_032 - 2_049_000


@pytest.mark.parametrize("builder", [backbones.resnet18, backbones.resnet50])
@pytest.mark.parametrize("stem, kernel", [("cifar", 3), ("imagenet", 7)])
def test_small_width_parameter_counts(builder, stem, kernel):
    encoder = builder(input_shape=(32, 32, 3), stem=stem, width=8)
    trainable, non_trainable = _resnet_counts(builder.__name__, 8, kernel)
    assert _trainable_count(encoder) == trainable
    assert _non_trainable_count(encoder) == non_trainable


def test_zero_init_residual_makes_blocks_identity():
    encoder = backbones.resnet18(
        input_shape=(16, 16, 3), stem="cifar", width=8, zero_init_residual=True
    )
    last_bns = [l for l in encoder.layers if l.name.endswith("_2_bn")]
    assert len(last_bns) == 8
    assert all(np.all(keras.ops.convert_to_numpy(l.gamma) == 0) for l in last_bns)
    probe = keras.Model(
        encoder.input,
        [encoder.get_layer("stem_relu").output, encoder.get_layer("stage1_block2_out").output],
    )
    stem_out, stage1_out = infer(probe, _images(size=16))
    # Stage 1 has no projection: with zero gammas both blocks pass ReLU'd input through.
    np.testing.assert_allclose(stage1_out, stem_out, rtol=1e-6, atol=1e-6)
    default = backbones.resnet18(input_shape=(16, 16, 3), width=8)
    assert np.all(keras.ops.convert_to_numpy(default.get_layer("stage1_block1_2_bn").gamma) == 1)


@pytest.mark.parametrize(
    "builder", [backbones.resnet18, backbones.resnet50, backbones.small_convnet]
)
def test_unknown_spatial_dims(builder):
    encoder = builder(input_shape=(None, None, 3), width=8)
    dim = backbones.feature_dim(encoder)
    rng = np.random.default_rng(0)
    for height, width in [(24, 40), (8, 8)]:
        x = rng.random((2, height, width, 3), dtype="float32")
        assert keras.ops.convert_to_numpy(encoder(x)).shape == (2, dim)


def test_normalization_matches_manual_standardization():
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    normalized = backbones.resnet18(
        input_shape=(16, 16, 3), width=8, normalization=(mean, std)
    )
    plain = backbones.resnet18(input_shape=(16, 16, 3), width=8)
    plain.set_weights(normalized.get_weights())
    x = _images(size=16)
    expected = infer(plain, (x - np.array(mean)) / np.array(std))
    np.testing.assert_allclose(infer(normalized, x), expected, rtol=1e-4, atol=1e-5)
    gray = backbones.small_convnet(input_shape=(8, 8, 1), width=8, normalization=(0.5, 0.25))
    assert gray.get_layer("input_normalization") is not None


@pytest.mark.parametrize(
    "normalization, match",
    [
        ((0.5, 0.5, 0.5), "pair"),
        (((0.5, 0.5), (0.2, 0.2)), "1 or 3 values"),
        ((0.5, 0.0), "positive"),
    ],
)
def test_normalization_errors(normalization, match):
    with pytest.raises(ValueError, match=match):
        backbones.resnet18(input_shape=(16, 16, 3), width=8, normalization=normalization)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(input_shape=(32, 32)), "height, width, channels"),
        (dict(input_shape=(32, 32, 4)), "1 \\(grayscale\\) or 3"),
        (dict(input_shape=(0, 32, 3)), "positive"),
        (dict(stem="tiny"), "stem must be one of"),
        (dict(width=0), "width must be a positive int"),
    ],
)
def test_builder_argument_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        backbones.resnet18(**kwargs)


@pytest.mark.parametrize("size, final", [(8, 2), (16, 4)])
def test_small_convnet_on_digit_sizes(size, final):
    encoder = backbones.small_convnet(input_shape=(size, size, 1), width=8, feature_dim=32)
    # Full resolution in the first stage, never below 2x2 for 8x8 digits.
    assert encoder.get_layer("stage1_2_relu").output.shape == (None, size, size, 8)
    assert encoder.get_layer("avg_pool").input.shape == (None, final, final, 32)
    assert backbones.feature_dim(encoder) == 32
    x = random_images(n=3, size=size, channels=1, dtype="float32")
    assert infer(encoder, x).shape == (3, 32)
    pooled_only = backbones.small_convnet(input_shape=(size, size, 1), width=8, feature_dim=None)
    assert backbones.feature_dim(pooled_only) == 32
    assert "features_dense" not in [layer.name for layer in pooled_only.layers]


def test_small_convnet_learns_digits(digits):
    # A quick supervised check that the architecture trains on 8x8 digits.
    images, labels = digits
    x = images.astype("float32") / 255.0
    encoder = backbones.small_convnet(input_shape=(8, 8, 1), width=8, feature_dim=32)
    classifier = keras.Sequential([encoder, keras.layers.Dense(10)])
    classifier.compile(
        optimizer=keras.optimizers.Adam(3e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    classifier.fit(x[:1200], labels[:1200], epochs=4, batch_size=64, verbose=0)
    _, accuracy = classifier.evaluate(x[1200:], labels[1200:], verbose=0)
    assert accuracy > 0.8


def _feature_map_model(input_shape=(16, 16, 3), channels=5):
    inputs = keras.Input(input_shape)
    outputs = keras.layers.Conv2D(channels, 3, strides=2, padding="same")(inputs)
    return keras.Model(inputs, outputs, name="feature_map")


@pytest.mark.parametrize("pooling, reduce", [("avg", np.mean), ("max", np.max)])
def test_wrap_feature_map_model(pooling, reduce):
    base = _feature_map_model()
    encoder = backbones.wrap(base, pooling=pooling)
    assert encoder.output.shape == (None, 5)
    assert encoder.name == "feature_map_encoder"
    assert encoder.get_layer("feature_map") is base
    x = _images(size=16)
    expected = reduce(infer(base, x), axis=(1, 2))
    np.testing.assert_allclose(infer(encoder, x), expected, rtol=1e-5, atol=1e-6)


def test_wrap_unknown_spatial_dims():
    encoder = backbones.wrap(_feature_map_model(input_shape=(None, None, 1)), name="enc")
    assert encoder.name == "enc"
    assert encoder.input.shape == (None, None, None, 1)
    x = random_images(n=2, size=12, channels=1, dtype="float32")
    assert keras.ops.convert_to_numpy(encoder(x)).shape == (2, 5)


@SLOW_ON_JAX
def test_wrap_keras_applications_model():
    base = keras.applications.MobileNetV3Small(
        include_top=False, weights=None, input_shape=(32, 32, 3)
    )
    assert len(base.output.shape) == 4
    encoder = backbones.wrap(base, preprocessing=keras.layers.Rescaling(255.0))
    assert encoder.output.shape == (None, 576)
    assert backbones.feature_dim(encoder) == 576
    # No forward pass: on JAX it costs ~10 s of per-op compilation, and the
    # pooling itself is checked numerically on a small model above.


def test_wrap_token_model():
    # A ViT-like patchifier: (B, 16, 16, 3) -> (B, 16 tokens, 6).
    inputs = keras.Input((16, 16, 3))
    patches = keras.layers.Conv2D(6, 4, strides=4)(inputs)
    tokens = keras.layers.Reshape((16, 6))(patches)
    base = keras.Model(inputs, tokens, name="tokens")
    encoder = backbones.wrap(base)
    assert encoder.output.shape == (None, 6)
    x = _images(size=16)
    expected = infer(base, x).mean(axis=1)
    np.testing.assert_allclose(infer(encoder, x), expected, rtol=1e-5, atol=1e-6)


def test_wrap_returns_pooled_model_unchanged(make_encoder):
    encoder = make_encoder()
    assert backbones.wrap(encoder) is encoder
    scaled = backbones.wrap(encoder, preprocessing=keras.layers.Rescaling(0.5))
    assert scaled is not encoder and scaled.output.shape == (None, 16)
    x = _images(size=16)
    expected = infer(encoder, x * 0.5)
    np.testing.assert_allclose(infer(scaled, x), expected, rtol=1e-5, atol=1e-6)


def test_wrap_subclassed_model_needs_input_shape():
    class Features(keras.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.conv = keras.layers.Conv2D(4, 3)

        def call(self, x):
            return self.conv(x)

    with pytest.raises(ValueError, match="input_shape"):
        backbones.wrap(Features(name="sub"))
    encoder = backbones.wrap(Features(name="sub2"), input_shape=(12, 12, 3))
    assert backbones.feature_dim(encoder) == 4


def test_wrap_errors():
    with pytest.raises(ValueError, match="pooling must be"):
        backbones.wrap(_feature_map_model(), pooling="sum")
    with pytest.raises(ValueError, match="keras.Model"):
        backbones.wrap(keras.layers.Dense(3))

    inputs = keras.Input((4, 4, 3))
    rank5 = keras.layers.Reshape((4, 4, 3, 1))(inputs)
    with pytest.raises(ValueError, match="rank 5"):
        backbones.wrap(keras.Model(inputs, rank5))

    two_outputs = keras.Model(inputs, [inputs, keras.layers.Flatten()(inputs)])
    with pytest.raises(ValueError, match="several outputs"):
        backbones.wrap(two_outputs)

    other = keras.Input((4, 4, 3))
    two_inputs = keras.Model([inputs, other], keras.layers.Add()([inputs, other]))
    with pytest.raises(ValueError, match="several inputs"):
        backbones.wrap(two_inputs)


def _wrapped_user_model():
    return backbones.wrap(_feature_map_model(), pooling="max")


@pytest.mark.parametrize(
    "build",
    [
        lambda: backbones.resnet18(
            input_shape=(16, 16, 3), width=8, zero_init_residual=True,
            normalization=((0.5, 0.4, 0.3), (0.2, 0.2, 0.2)),
        ),
        lambda: backbones.resnet50(input_shape=(16, 16, 3), stem="cifar", width=8),
        lambda: backbones.small_convnet(
            input_shape=(16, 16, 3), width=8, normalization=(0.5, 0.2)
        ),
        _wrapped_user_model,
    ],
    ids=["resnet18", "resnet50", "small_convnet", "wrap"],
)
def test_save_load_round_trip(build, tmp_path):
    encoder = build()
    # One training step moves the BatchNormalization statistics off their
    # initial values, so the round trip has to restore them.
    encoder(_images(n=4, size=16), training=True)
    path = tmp_path / "encoder.keras"
    encoder.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    x = _images(n=3, size=16)
    np.testing.assert_array_equal(infer(encoder, x), infer(loaded, x))
    assert loaded.name == encoder.name


def test_feature_dim():
    assert backbones.feature_dim(backbones.resnet18(input_shape=(16, 16, 3), width=8)) == 64
    assert backbones.feature_dim(backbones.resnet50(input_shape=(16, 16, 3), width=8)) == 256
    assert backbones.feature_dim(backbones.small_convnet(input_shape=(8, 8, 1), width=8)) == 128


def test_feature_dim_errors():
    with pytest.raises(ValueError, match="kerassl.backbones.wrap"):
        backbones.feature_dim(_feature_map_model())
    inputs = keras.Input((16, 16, 3))
    with pytest.raises(ValueError, match="several outputs"):
        backbones.feature_dim(keras.Model(inputs, [inputs, inputs]))


def test_registry():
    assert backbones.list_backbones() == [
        "resnet18", "resnet50", "small_convnet", "vit", "vit_base", "vit_small", "vit_tiny"
    ]
    encoder = backbones.get("resnet18", input_shape=(16, 16, 1), width=8)
    assert encoder.output.shape == (None, 64)
    assert encoder.name == "resnet18"
    vit_encoder = backbones.get("vit_tiny", image_size=16, patch_size=4, channels=1)
    assert backbones.feature_dim(vit_encoder) == 192
    assert backbones.feature_dim(backbones.get("small_convnet", width=8, feature_dim=7)) == 7
    with pytest.raises(ValueError, match="resnet18, resnet50, small_convnet, vit"):
        backbones.get("vgg16")
