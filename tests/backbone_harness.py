"""One harness that runs any backbone builder through the contract encoders share.

`run_backbone_test(build, input_shape)` checks, for a builder from
`kerassl.backbones.list_backbones()`:
- it takes `input_shape=(height, width, channels)` and maps (B, H, W, C) floats
  in [0, 1] to (B, D) features, D = `feature_dim(encoder)`;
- `get_config`/`from_config` rebuilds the same graph (same outputs with the
  same weights);
- `.keras` save and load with `safe_mode=True` and no custom objects gives
  the same features;
- under the `mixed_bfloat16` policy it builds and runs with finite outputs;
- where the architecture allows (`variable_size=True`), `None` spatial sizes
  accept two image sizes; a ViT, whose position embeddings are made for one
  grid, is called on another grid through its transformer layer.
"""

import keras
import numpy as np

import kerassl
from tests.conftest import infer


def _images(shape, count=2, seed=0):
    return np.random.default_rng(seed).uniform(size=(count, *shape)).astype("float32")


def run_backbone_test(build, tmp_path, input_shape=(16, 16, 3), variable_size=False,
                      other_size=(24, 24)):
    """Runs the shared contract checks on one backbone builder.

    Args:
        build: callable(input_shape=...) -> encoder.
        tmp_path: pathlib.Path for the saved file.
        input_shape: (height, width, channels) of the test images.
        variable_size: bool. Also build with (None, None, C) and run two sizes.
        other_size: (height, width) of the second size tried.
    """
    encoder = build(input_shape=input_shape)
    images = _images(input_shape)
    features = infer(encoder, images)
    dim = kerassl.backbones.feature_dim(encoder)
    assert features.shape == (2, dim) and np.all(np.isfinite(features))

    clone = keras.Model.from_config(encoder.get_config())
    clone.set_weights(encoder.get_weights())
    np.testing.assert_allclose(
        infer(clone, images), features, rtol=1e-5, atol=1e-5
    )

    path = tmp_path / "encoder.keras"
    encoder.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(
        infer(loaded, images), features, rtol=1e-5, atol=1e-5
    )

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        mixed = build(input_shape=input_shape)
        out = infer(mixed, images).astype("float32")
    finally:
        keras.config.set_dtype_policy(previous)
    assert out.shape == (2, dim) and np.all(np.isfinite(out))

    other = _images((*other_size, input_shape[-1]), seed=1)
    if variable_size:
        free = build(input_shape=(None, None, input_shape[-1]))
        for batch in (images, other):
            assert infer(free, batch).shape == (2, dim)
    elif encoder.layers and any(
        isinstance(layer, kerassl.vit.VisionTransformer) for layer in encoder.layers
    ):
        transformer = kerassl.vit.find_transformer(encoder)
        assert tuple(transformer(other, training=False).shape) == (2, dim)
    return encoder
