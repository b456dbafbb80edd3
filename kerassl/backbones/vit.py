"""Vision Transformer encoders for kerassl (Dosovitskiy et al., 2021).

`vit_tiny`, `vit_small`, `vit_base` and `vit` return ordinary functional Keras
encoders, images (B, H, W, C) in [0, 1] -> features (B, D), like every other
backbone, so kNN, linear probes, fine-tuning and the zoo work unchanged. The
model holds one `VisionTransformer` layer; methods that need more than the
pooled feature (MAE runs on visible patches only, attention maps for plots)
reach it with `find_transformer(encoder)`.

Reference: Dosovitskiy et al., "An Image is Worth 16x16 Words: Transformers for
Image Recognition at Scale", ICLR 2021 (https://arxiv.org/abs/2010.11929).
"""

import contextlib

import keras
import numpy as np
from keras import ops

from kerassl.images import interpolation_matrix, to_float_images
from kerassl.registry import register

POSITION_EMBEDDINGS = ("learned", "sincos")
POOLINGS = ("cls", "mean")
ACTIVATIONS = ("gelu", "quick_gelu")
MLPS = ("mlp", "swiglu")
INPUT_RANGES = ("unit", "auto")


def quick_gelu(x):
    """CLIP's GELU approximation, x * sigmoid(1.702 x) (Radford et al., 2021)."""
    return x * ops.sigmoid(1.702 * x)


def swiglu_hidden_size(dim, mlp_ratio):
    """DINOv2's SwiGLU width: two thirds of dim * mlp_ratio, rounded up to a multiple of 8."""
    hidden = int(dim * mlp_ratio)
    return (int(hidden * 2 / 3) + 7) // 8 * 8


_WEIGHTS_TO_BE_LOADED = [False]


@contextlib.contextmanager
def weights_to_be_loaded():
    """Inside it, new ViT layers start at zeros instead of drawing random values.

    For builders that overwrite every weight right afterwards (converting a
    checkpoint): drawing 86 M truncated-normal numbers for a ViT-B costs
    seconds. Configs and saved models are unaffected.

    Example:
    ```python
    with kerassl.vit.weights_to_be_loaded():
        encoder = kerassl.vit.vit(image_size=224, patch_size=16, hidden_dim=768, depth=12, num_heads=12)
    encoder.set_weights(weights)
    ```
    """
    previous = _WEIGHTS_TO_BE_LOADED[0]
    _WEIGHTS_TO_BE_LOADED[0] = True
    try:
        yield
    finally:
        _WEIGHTS_TO_BE_LOADED[0] = previous


def _dense_initializer():
    # ViT, DeiT, MAE and DINO all start linear layers at truncated normal, std 0.02.
    if _WEIGHTS_TO_BE_LOADED[0]:
        return keras.initializers.Zeros()
    return keras.initializers.TruncatedNormal(stddev=0.02)


def _pair(value, name):
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return (int(value), int(value))
    try:
        value = tuple(int(v) for v in value)
    except TypeError:
        value = ()
    if len(value) != 2:
        raise ValueError(f"{name} must be an int or a (height, width) pair; got {value!r}.")
    return value


def _check_positive_int(value, name):
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive int; got {value!r}.")
    return int(value)


def sincos_position_embedding(grid_size, dim):
    """Fixed 2-D sine-cosine position embedding, as in MAE.

    Half of the channels encode the row, half the column; each half is
    sin/cos of the position at frequencies 1 / 10000^(i / (dim / 4)).

    Args:
        grid_size: int or (rows, cols). Patch grid.
        dim: int, a multiple of 4. Embedding size.

    Returns:
        NumPy float32 array (rows * cols, dim), patches in row-major order.

    Example:
    >>> kerassl.vit.sincos_position_embedding(8, 192).shape
    (64, 192)

    Reference: He et al., MAE, 2022 (https://arxiv.org/abs/2111.06377).
    """
    rows, cols = _pair(grid_size, "grid_size")
    if dim % 4:
        raise ValueError(f"a sin-cos position embedding needs dim divisible by 4; got {dim}.")
    omega = 1.0 / 10000 ** (np.arange(dim // 4, dtype="float64") / (dim / 4))
    row, col = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")

    def encode(positions):
        angles = positions.reshape(-1)[:, None] * omega[None, :]
        return np.concatenate([np.sin(angles), np.cos(angles)], axis=1)

    return np.concatenate([encode(row), encode(col)], axis=1).astype("float32")


def interpolate_position_embedding(embedding, source_grid, target_grid):
    """Resizes patch position embeddings to another patch grid.

    The embedding is seen as a (rows, cols, dim) image and resized with the
    bilinear (antialiased when shrinking) weights of
    `kerassl.images.interpolation_matrix`, the same on every backend. At the
    original grid the weights are the identity, so the original embedding comes
    back.

    Args:
        embedding: tensor (1, rows * cols, dim) or (rows * cols, dim).
        source_grid: (rows, cols) the embedding was made for.
        target_grid: (rows, cols) wanted.

    Returns:
        Tensor (1, target_rows * target_cols, dim).

    Example:
    >>> pos = keras.ops.ones((1, 64, 192))
    >>> kerassl.vit.interpolate_position_embedding(pos, (8, 8), (4, 4)).shape
    (1, 16, 192)
    """
    source_rows, source_cols = _pair(source_grid, "source_grid")
    target_rows, target_cols = _pair(target_grid, "target_grid")
    dim = embedding.shape[-1]
    if int(np.prod(embedding.shape[:-1])) != source_rows * source_cols:
        raise ValueError(
            f"embedding has {int(np.prod(embedding.shape[:-1]))} positions, but the "
            f"source grid {source_rows}x{source_cols} has {source_rows * source_cols}."
        )
    dtype = keras.backend.standardize_dtype(embedding.dtype)
    start, length = ops.zeros((1,), dtype), ops.ones((1,), dtype)
    rows = interpolation_matrix(start, length, source_rows, target_rows)[0]
    cols = interpolation_matrix(start, length, source_cols, target_cols)[0]
    grid = ops.reshape(embedding, (source_rows, source_cols, dim))
    resized = ops.einsum("ah,bw,hwd->abd", rows, cols, grid)
    return ops.reshape(resized, (1, target_rows * target_cols, dim))


def patchify(images, patch_size):
    """Cuts images into non-overlapping square patches, flattened.

    Args:
        images: tensor (B, H, W, C), H and W multiples of `patch_size`.
        patch_size: int.

    Returns:
        Tensor (B, (H / p) * (W / p), p * p * C), patches in row-major order,
        pixels inside a patch in (row, col, channel) order.

    Example:
    >>> kerassl.vit.patchify(keras.ops.zeros((2, 32, 32, 3)), 4).shape
    (2, 64, 48)
    """
    height, width, channels = images.shape[1:]
    rows, cols = _grid(height, width, patch_size)
    x = ops.reshape(images, (-1, rows, patch_size, cols, patch_size, channels))
    x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
    return ops.reshape(x, (-1, rows * cols, patch_size * patch_size * channels))


def unpatchify(patches, patch_size, grid_size, channels):
    """Inverse of `patchify`: (B, rows * cols, p * p * C) -> (B, H, W, C).

    Args:
        patches: tensor (B, rows * cols, p * p * C).
        patch_size: int.
        grid_size: int or (rows, cols).
        channels: int.

    Example:
    >>> x = keras.ops.zeros((2, 64, 48))
    >>> kerassl.vit.unpatchify(x, 4, 8, 3).shape
    (2, 32, 32, 3)
    """
    rows, cols = _pair(grid_size, "grid_size")
    x = ops.reshape(patches, (-1, rows, cols, patch_size, patch_size, channels))
    x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
    return ops.reshape(x, (-1, rows * patch_size, cols * patch_size, channels))


def _grid(height, width, patch_size):
    if height is None or width is None:
        raise ValueError(
            "a Vision Transformer needs a known image height and width to lay out "
            f"its patches; got ({height}, {width})."
        )
    if height % patch_size or width % patch_size:
        raise ValueError(
            f"image size {height}x{width} is not a multiple of the patch size "
            f"{patch_size}: resize or crop the images (or choose crop sizes) to a "
            f"multiple of {patch_size}."
        )
    return height // patch_size, width // patch_size


@register
class MultiHeadSelfAttention(keras.layers.Layer):
    """Multi-head self-attention with one fused query-key-value projection.

    Args:
        dim: int. Token size; a multiple of `num_heads`.
        num_heads: int.
        qkv_bias: bool. Whether the query-key-value projection has a bias.

    Example:
    ```python
    attention = kerassl.vit.MultiHeadSelfAttention(192, 3)
    out, weights = attention(tokens, return_attention=True)
    ```
    """

    def __init__(self, dim, num_heads, qkv_bias=True, **kwargs):
        super().__init__(**kwargs)
        self.dim = _check_positive_int(dim, "dim")
        self.num_heads = _check_positive_int(num_heads, "num_heads")
        if dim % num_heads:
            raise ValueError(f"dim ({dim}) must be a multiple of num_heads ({num_heads}).")
        self.head_dim = dim // num_heads
        self.qkv_bias = bool(qkv_bias)
        self.qkv = keras.layers.Dense(
            3 * dim, use_bias=self.qkv_bias, kernel_initializer=_dense_initializer(), name="qkv"
        )
        self.projection = keras.layers.Dense(
            dim, kernel_initializer=_dense_initializer(), name="projection"
        )

    def build(self, input_shape):
        self.qkv.build(input_shape)
        self.projection.build((*input_shape[:-1], self.dim))
        self.built = True

    def call(self, tokens, return_attention=False):
        length = tokens.shape[1]
        qkv = ops.reshape(self.qkv(tokens), (-1, length, 3, self.num_heads, self.head_dim))
        query, key, value = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
        if return_attention:
            scores = ops.einsum("bqhd,bkhd->bhqk", query, key) / np.sqrt(self.head_dim)
            weights = ops.softmax(scores, axis=-1)
            out = ops.einsum("bhqk,bkhd->bqhd", weights, value)
        else:
            # The fused op picks flash / cuDNN kernels where the backend has them.
            out = ops.dot_product_attention(query, key, value)
        out = self.projection(ops.reshape(out, (-1, length, self.dim)))
        return (out, weights) if return_attention else out

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(dim=self.dim, num_heads=self.num_heads)
        if not self.qkv_bias:
            config["qkv_bias"] = False
        return config


BLOCK_DEFAULTS = {"qkv_bias": True, "activation": "gelu", "layer_scale": None, "mlp": "mlp"}


def _check_block_options(activation, layer_scale, mlp):
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}; got {activation!r}.")
    if mlp not in MLPS:
        raise ValueError(f"mlp must be one of {MLPS}; got {mlp!r}.")
    if layer_scale is not None and (isinstance(layer_scale, bool) or not isinstance(layer_scale, (int, float))):
        raise ValueError(f"layer_scale must be None or a float (its initial value); got {layer_scale!r}.")
    return None if layer_scale is None else float(layer_scale)


@register(name="ViTTransformerBlock")
class TransformerBlock(keras.layers.Layer):
    """A pre-norm Transformer block: x + MSA(LN(x)), then x + MLP(LN(x)).

    The options beyond the first five reproduce published variants exactly:
    CLIP's quick GELU, DINOv2's layer scale (each branch times a learned
    per-channel vector before the residual sum) and DINOv2-giant's SwiGLU MLP
    (silu(x W1) * (x W2), then W3; `mlp_in` holds W1 and W2 side by side).

    Args:
        dim: int. Token size.
        num_heads: int. Attention heads.
        mlp_ratio: float. Hidden size of the MLP relative to `dim`.
        dropout: float. Dropout after attention and MLP (0 in SSL pretraining).
        layer_norm_epsilon: float.
        qkv_bias: bool. Bias in the query-key-value projection.
        activation: str. "gelu" (exact, erf-based) or "quick_gelu" (CLIP).
        layer_scale: float or None. Initial value of the layer-scale vectors
            (DINOv2: 1.0 before training, 1e-5 in its recipe); None: no layer scale.
        mlp: str. "mlp" (two linear layers) or "swiglu" (DINOv2-giant; hidden
            size from `swiglu_hidden_size`).

    Example:
    ```python
    block = kerassl.vit.TransformerBlock(192, num_heads=3)
    tokens = block(tokens)
    ```

    References: Touvron et al., "Going deeper with Image Transformers" (layer
    scale, https://arxiv.org/abs/2103.17239); Shazeer, "GLU Variants Improve
    Transformer" (https://arxiv.org/abs/2002.05202); Oquab et al., DINOv2
    (https://arxiv.org/abs/2304.07193).
    """

    def __init__(
        self,
        dim,
        num_heads,
        mlp_ratio=4.0,
        dropout=0.0,
        layer_norm_epsilon=1e-6,
        qkv_bias=True,
        activation="gelu",
        layer_scale=None,
        mlp="mlp",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.dim = _check_positive_int(dim, "dim")
        self.num_heads = _check_positive_int(num_heads, "num_heads")
        self.mlp_ratio = float(mlp_ratio)
        self.dropout = float(dropout)
        self.layer_norm_epsilon = float(layer_norm_epsilon)
        self.layer_scale = _check_block_options(activation, layer_scale, mlp)
        self.qkv_bias = bool(qkv_bias)
        self.activation = activation
        self.mlp = mlp
        if mlp == "swiglu":
            self.hidden_size = swiglu_hidden_size(dim, self.mlp_ratio)
            units, dense_activation = 2 * self.hidden_size, None
        else:
            self.hidden_size = max(1, int(round(dim * self.mlp_ratio)))
            units = self.hidden_size
            dense_activation = "gelu" if activation == "gelu" else None
        self.norm1 = keras.layers.LayerNormalization(epsilon=layer_norm_epsilon, name="norm1")
        self.attention = MultiHeadSelfAttention(dim, num_heads, qkv_bias=self.qkv_bias, name="attention")
        self.norm2 = keras.layers.LayerNormalization(epsilon=layer_norm_epsilon, name="norm2")
        self.mlp_in = keras.layers.Dense(
            units, activation=dense_activation, kernel_initializer=_dense_initializer(), name="mlp_in"
        )
        self.mlp_out = keras.layers.Dense(dim, kernel_initializer=_dense_initializer(), name="mlp_out")
        self.drop = keras.layers.Dropout(self.dropout) if self.dropout else None

    def build(self, input_shape):
        for layer in (self.norm1, self.attention, self.norm2, self.mlp_in):
            layer.build(input_shape)
        self.mlp_out.build((*input_shape[:-1], self.hidden_size))
        if self.layer_scale is not None:
            init = keras.initializers.Constant(self.layer_scale)
            self.layer_scale_1 = self.add_weight(shape=(self.dim,), initializer=init, name="layer_scale_1")
            self.layer_scale_2 = self.add_weight(shape=(self.dim,), initializer=init, name="layer_scale_2")
        self.built = True

    def feed_forward(self, tokens):
        """The MLP (or SwiGLU) branch on already normed tokens."""
        hidden = self.mlp_in(tokens)
        if self.mlp == "swiglu":
            gate, value = hidden[..., : self.hidden_size], hidden[..., self.hidden_size :]
            hidden = ops.silu(gate) * value
        elif self.activation == "quick_gelu":
            hidden = quick_gelu(hidden)
        return self.mlp_out(hidden)

    def call(self, tokens, training=False, return_attention=False):
        attended = self.attention(self.norm1(tokens), return_attention=return_attention)
        if return_attention:
            attended, weights = attended
        if self.layer_scale is not None:
            attended = attended * ops.cast(self.layer_scale_1, attended.dtype)
        if self.drop is not None:
            attended = self.drop(attended, training=training)
        tokens = tokens + attended
        hidden = self.feed_forward(self.norm2(tokens))
        if self.layer_scale is not None:
            hidden = hidden * ops.cast(self.layer_scale_2, hidden.dtype)
        if self.drop is not None:
            hidden = self.drop(hidden, training=training)
        tokens = tokens + hidden
        return (tokens, weights) if return_attention else tokens

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            dim=self.dim,
            num_heads=self.num_heads,
            mlp_ratio=self.mlp_ratio,
            dropout=self.dropout,
            layer_norm_epsilon=self.layer_norm_epsilon,
        )
        # Only options away from their defaults, so older configs stay as they were.
        for key, default in BLOCK_DEFAULTS.items():
            if getattr(self, key) != default:
                config[key] = getattr(self, key)
        return config


TRANSFORMER_DEFAULTS = {
    **BLOCK_DEFAULTS,
    "num_register_tokens": 0,
    "class_token": True,
    "pre_norm": False,
    "patch_bias": True,
    "mean": None,
    "std": None,
    "input_range": "unit",
}


def _pixel_statistics(mean, std, channels):
    if (mean is None) != (std is None):
        raise ValueError("give both mean and std (per-channel pixel statistics), or neither.")
    if mean is None:
        return None, None
    mean, std = [float(v) for v in np.ravel(mean)], [float(v) for v in np.ravel(std)]
    if len(mean) != channels or len(std) != channels:
        raise ValueError(f"mean and std need {channels} values each (one per channel); got {mean} and {std}.")
    if min(std) <= 0:
        raise ValueError(f"std values must be positive; got {std}.")
    return mean, std


@register
class VisionTransformer(keras.layers.Layer):
    """A Vision Transformer: patch embedding, CLS token, pre-norm blocks.

    Called on images (B, H, W, C) in [0, 1] it returns one feature vector per
    image: the final-normed CLS token (`pooling="cls"`) or the mean of the
    patch tokens (`pooling="mean"`). Images of another size than `image_size`
    (any multiple of the patch size) work: the position embeddings are
    interpolated to the new patch grid, which DINO's small local crops need.

    Beyond `call`:
    - `encode(images, keep_indices=None, return_attention=False)`: all final
      tokens (B, 1 + N, D), CLS first; with `keep_indices` (B, K) only those
      patches go through the blocks (MAE's visible patches).
    - `pool(tokens)`: the feature vector from `encode`'s tokens.

    Args:
        image_size: int or (height, width). Size the position embeddings are
            made for.
        patch_size: int. Side of the square patches.
        channels: int. 1 or 3.
        hidden_dim: int. Token size D.
        depth: int. Number of Transformer blocks.
        num_heads: int. Attention heads; divides `hidden_dim`.
        mlp_ratio: float. MLP hidden size relative to `hidden_dim`.
        position_embedding: str. "learned" (ViT, DeiT, DINO) or "sincos"
            (fixed 2-D sine-cosine, MAE).
        pooling: str. "cls" or "mean" (of the patch tokens: registers and
            CLS left out).
        dropout: float. Dropout inside the blocks.
        layer_norm_epsilon: float.
        qkv_bias, activation, layer_scale, mlp: block options, see
            `TransformerBlock` (CLIP: activation="quick_gelu"; DINOv2:
            layer_scale=1.0; DINOv2-giant: mlp="swiglu").
        num_register_tokens: int. Learned register tokens put after the CLS
            token, without position embedding (Darcet et al., 2024).
        class_token: bool. False for models without a CLS token (I-JEPA);
            then `pooling` must be "mean".
        pre_norm: bool. A LayerNorm on the tokens before the first block
            (CLIP's `ln_pre`).
        patch_bias: bool. Whether the patch embedding has a bias (CLIP: no).
        mean, std: sequences of `channels` floats, or None. When given, the
            layer normalizes [0, 1] pixels as (x - mean) / std itself, so the
            model takes [0, 1] images like every kerassl encoder.
        input_range: str. "unit": images are floats in [0, 1]. "auto": also
            0-255 images (uint8 arrays reach the layer cast to float by the
            Keras input): each image whose largest value exceeds 1 is divided
            by 255 (an image of only 0s and 1s in 0-255 units would be read
            as [0, 1]).

    Example:
    ```python
    layer = kerassl.vit.VisionTransformer(32, patch_size=4, hidden_dim=192, depth=12, num_heads=3)
    features = layer(images)            # (B, 192)
    tokens = layer.encode(images)       # (B, 65, 192)
    ```

    Reference: Dosovitskiy et al., ICLR 2021 (https://arxiv.org/abs/2010.11929).
    """

    def __init__(
        self,
        image_size=32,
        patch_size=4,
        channels=3,
        hidden_dim=192,
        depth=12,
        num_heads=3,
        mlp_ratio=4.0,
        position_embedding="learned",
        pooling="cls",
        dropout=0.0,
        layer_norm_epsilon=1e-6,
        qkv_bias=True,
        activation="gelu",
        layer_scale=None,
        mlp="mlp",
        num_register_tokens=0,
        class_token=True,
        pre_norm=False,
        patch_bias=True,
        mean=None,
        std=None,
        input_range="unit",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.patch_size = _check_positive_int(patch_size, "patch_size")
        self.image_size = _pair(image_size, "image_size")
        self.grid_size = _grid(*self.image_size, self.patch_size)
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 (grayscale) or 3 (RGB); got {channels!r}.")
        self.channels = int(channels)
        self.hidden_dim = _check_positive_int(hidden_dim, "hidden_dim")
        self.depth = _check_positive_int(depth, "depth")
        self.num_heads = _check_positive_int(num_heads, "num_heads")
        if hidden_dim % num_heads:
            raise ValueError(
                f"hidden_dim ({hidden_dim}) must be a multiple of num_heads ({num_heads})."
            )
        if position_embedding not in POSITION_EMBEDDINGS:
            raise ValueError(
                f"position_embedding must be one of {POSITION_EMBEDDINGS}; got {position_embedding!r}."
            )
        if position_embedding == "sincos" and hidden_dim % 4:
            raise ValueError(f"sin-cos position embeddings need hidden_dim divisible by 4; got {hidden_dim}.")
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}; got {pooling!r}.")
        self.layer_scale = _check_block_options(activation, layer_scale, mlp)
        self.qkv_bias, self.activation, self.mlp = bool(qkv_bias), activation, mlp
        if not isinstance(num_register_tokens, (int, np.integer)) or num_register_tokens < 0:
            raise ValueError(f"num_register_tokens must be an int >= 0; got {num_register_tokens!r}.")
        self.num_register_tokens = int(num_register_tokens)
        self.class_token = bool(class_token)
        if pooling == "cls" and not self.class_token:
            raise ValueError('pooling="cls" needs a CLS token: use pooling="mean" with class_token=False.')
        self.pre_norm = bool(pre_norm)
        self.patch_bias = bool(patch_bias)
        self.mean, self.std = _pixel_statistics(mean, std, self.channels)
        if input_range not in INPUT_RANGES:
            raise ValueError(f"input_range must be one of {INPUT_RANGES}; got {input_range!r}.")
        self.input_range = input_range
        self.mlp_ratio = float(mlp_ratio)
        self.position_embedding = position_embedding
        self.pooling = pooling
        self.dropout = float(dropout)
        self.layer_norm_epsilon = float(layer_norm_epsilon)
        self.patch_embedding = keras.layers.Conv2D(
            hidden_dim,
            self.patch_size,
            strides=self.patch_size,
            use_bias=self.patch_bias,
            kernel_initializer=_dense_initializer(),
            name="patch_embedding",
        )
        self.blocks = [
            TransformerBlock(
                hidden_dim,
                num_heads,
                mlp_ratio,
                dropout,
                layer_norm_epsilon,
                qkv_bias=self.qkv_bias,
                activation=activation,
                layer_scale=self.layer_scale,
                mlp=mlp,
                name=f"block_{index}",
            )
            for index in range(self.depth)
        ]
        if self.pre_norm:
            self.pre_norm_layer = keras.layers.LayerNormalization(epsilon=layer_norm_epsilon, name="pre_norm")
        self.norm = keras.layers.LayerNormalization(epsilon=layer_norm_epsilon, name="norm")

    @property
    def num_patches(self):
        return self.grid_size[0] * self.grid_size[1]

    @property
    def num_prefix_tokens(self):
        """Tokens before the patch tokens in `encode`'s output: CLS and registers."""
        return int(self.class_token) + self.num_register_tokens

    def build(self, input_shape=None):
        self.patch_embedding.build((None, *self.image_size, self.channels))
        if self.class_token:
            self.cls_token = self.add_weight(
                shape=(1, 1, self.hidden_dim), initializer=_dense_initializer(), name="cls_token"
            )
        if self.position_embedding == "learned":
            self.patch_positions = self.add_weight(
                shape=(1, self.num_patches, self.hidden_dim),
                initializer=_dense_initializer(),
                name="patch_positions",
            )
            if self.class_token:
                self.cls_position = self.add_weight(
                    shape=(1, 1, self.hidden_dim), initializer=_dense_initializer(), name="cls_position"
                )
        else:
            table = sincos_position_embedding(self.grid_size, self.hidden_dim)[None]
            self.patch_positions = self.add_weight(
                shape=table.shape,
                initializer=keras.initializers.Constant(table),
                trainable=False,
                name="patch_positions",
            )
            if self.class_token:
                self.cls_position = self.add_weight(
                    shape=(1, 1, self.hidden_dim), initializer="zeros", trainable=False, name="cls_position"
                )
        if self.num_register_tokens:
            self.register_tokens = self.add_weight(
                shape=(1, self.num_register_tokens, self.hidden_dim),
                initializer=_dense_initializer(),
                name="register_tokens",
            )
        for block in self.blocks:
            block.build((None, None, self.hidden_dim))
        if self.pre_norm:
            self.pre_norm_layer.build((None, None, self.hidden_dim))
        self.norm.build((None, None, self.hidden_dim))
        self.built = True

    def positions_for(self, grid):
        """Patch position embeddings (1, rows * cols, D) for a patch grid."""
        if tuple(grid) == self.grid_size:
            return self.patch_positions
        return interpolate_position_embedding(self.patch_positions, self.grid_size, grid)

    def normalize_pixels(self, images):
        """Images as the patch embedding expects them (see `input_range`, `mean`, `std`)."""
        images = ops.cast(images, self.compute_dtype)
        if self.input_range == "auto":
            largest = ops.max(images, axis=(1, 2, 3), keepdims=True)
            images = ops.where(largest > 1.0, images / 255.0, images)
        if self.mean is not None:
            mean = ops.convert_to_tensor(np.asarray(self.mean, "float32"), images.dtype)
            std = ops.convert_to_tensor(np.asarray(self.std, "float32"), images.dtype)
            images = (images - mean) / std
        return images

    def embed(self, images):
        """Patch tokens with their position embeddings, (B, N, D); no CLS."""
        if images.shape[-1] != self.channels:
            raise ValueError(
                f"this Vision Transformer was built for {self.channels}-channel images; "
                f"got shape {tuple(images.shape)}."
            )
        grid = _grid(images.shape[1], images.shape[2], self.patch_size)
        tokens = self.patch_embedding(self.normalize_pixels(images))
        tokens = ops.reshape(tokens, (-1, grid[0] * grid[1], self.hidden_dim))
        return tokens + ops.cast(self.positions_for(grid), tokens.dtype)

    def encode(self, images, training=False, keep_indices=None, return_attention=False):
        """Final tokens (B, P + N, D), after the last LayerNorm.

        The P = `num_prefix_tokens` first tokens are the CLS token (if any)
        then the register tokens; the N patch tokens follow.

        Args:
            images: tensor (B, H, W, C), floats in [0, 1]; H, W multiples of
                the patch size.
            training: bool.
            keep_indices: int tensor (B, K) or None. Only these patches (per
                image, indices in row-major order) enter the blocks; the output
                then has P + K tokens in that order.
            return_attention: bool. Also return the last block's attention
                weights (B, heads, T, T).
        """
        tokens = self.embed(images)
        if keep_indices is not None:
            index = ops.expand_dims(ops.cast(keep_indices, "int32"), -1)
            tokens = ops.take_along_axis(tokens, index, axis=1)
        prefix = []
        if self.class_token:
            cls = ops.cast(self.cls_token + self.cls_position, tokens.dtype)
            prefix.append(ops.zeros_like(tokens[:, :1]) + cls)
        if self.num_register_tokens:
            registers = ops.cast(self.register_tokens, tokens.dtype)
            prefix.append(ops.zeros_like(tokens[:, :1]) + registers)
        if prefix:
            tokens = ops.concatenate([*prefix, tokens], axis=1)
        if self.pre_norm:
            tokens = self.pre_norm_layer(tokens)
        weights = None
        for index, block in enumerate(self.blocks):
            last = index == len(self.blocks) - 1
            if return_attention and last:
                tokens, weights = block(tokens, training=training, return_attention=True)
            else:
                tokens = block(tokens, training=training)
        tokens = self.norm(tokens)
        return (tokens, weights) if return_attention else tokens

    def pool(self, tokens):
        """The feature vector (B, D) from `encode`'s tokens."""
        if self.pooling == "cls":
            return tokens[:, 0]
        return ops.mean(tokens[:, self.num_prefix_tokens :], axis=1)

    def call(self, images, training=False):
        return self.pool(self.encode(images, training=training))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.hidden_dim)

    def get_config(self):
        config = super().get_config()
        config.update(
            image_size=self.image_size,
            patch_size=self.patch_size,
            channels=self.channels,
            hidden_dim=self.hidden_dim,
            depth=self.depth,
            num_heads=self.num_heads,
            mlp_ratio=self.mlp_ratio,
            position_embedding=self.position_embedding,
            pooling=self.pooling,
            dropout=self.dropout,
            layer_norm_epsilon=self.layer_norm_epsilon,
        )
        # Only options away from their defaults, so older configs stay as they were.
        for key, default in TRANSFORMER_DEFAULTS.items():
            if getattr(self, key) != default:
                config[key] = getattr(self, key)
        return config


def _split_input_shape(input_shape):
    try:
        height, width, channels = input_shape
    except (TypeError, ValueError):
        raise ValueError(
            f"input_shape must be (height, width, channels), e.g. (32, 32, 3); got {input_shape!r}."
        ) from None
    if height is None or width is None:
        raise ValueError(
            "A ViT needs fixed height and width in input_shape (its position embeddings are made "
            f"for one patch grid; other sizes are interpolated when called); got {input_shape!r}."
        )
    return (height, width), channels


def vit(
    image_size=32,
    patch_size=4,
    channels=3,
    hidden_dim=192,
    depth=12,
    num_heads=3,
    mlp_ratio=4.0,
    position_embedding="learned",
    pooling="cls",
    dropout=0.0,
    name="vit",
    input_shape=None,
    **options,
):
    """A Vision Transformer encoder of any size.

    Returns a functional model with one input (image_size, image_size,
    channels) and one `VisionTransformer` layer; its output is the pooled
    feature (B, hidden_dim). Methods call it on other sizes (multiples of
    the patch size) through `encoder.call(images)`, which skips Keras's input
    shape check; the position embeddings are then interpolated.

    Args:
        image_size: int or (height, width). Multiples of `patch_size`.
        patch_size: int.
        channels: int. 1 or 3.
        hidden_dim: int. Token size, also the feature size.
        depth: int. Transformer blocks.
        num_heads: int. Attention heads; divides `hidden_dim`.
        mlp_ratio: float.
        position_embedding: str. "learned" or "sincos".
        pooling: str. "cls" (CLS token) or "mean" (mean of patch tokens).
        dropout: float.
        name: str. The model name.
        input_shape: (height, width, channels) or None. The signature every
            backbone shares; when given it sets `image_size` and `channels`.
        **options: further `VisionTransformer` options (layer_norm_epsilon,
            qkv_bias, activation, layer_scale, mlp, num_register_tokens,
            class_token, pre_norm, patch_bias, mean, std, input_range), for
            published architectures such as DINOv2 or CLIP.

    Returns:
        A keras.Model mapping (B, H, W, C) images in [0, 1] to (B, hidden_dim).

    Example:
    >>> encoder = kerassl.backbones.vit(image_size=16, patch_size=4, hidden_dim=32, depth=2, num_heads=2)
    >>> encoder.output.shape
    (None, 32)

    Reference: Dosovitskiy et al., ICLR 2021 (https://arxiv.org/abs/2010.11929).
    """
    if input_shape is not None:
        image_size, channels = _split_input_shape(input_shape)
    height, width = _pair(image_size, "image_size")
    transformer = VisionTransformer(
        (height, width),
        patch_size,
        channels,
        hidden_dim,
        depth,
        num_heads,
        mlp_ratio,
        position_embedding,
        pooling,
        dropout,
        name=f"{name}_transformer",
        **options,
    )
    inputs = keras.Input((height, width, channels), name=f"{name}_images")
    return keras.Model(inputs, transformer(inputs), name=name)


def vit_tiny(image_size=32, patch_size=4, channels=3, name="vit_tiny", **kwargs):
    """ViT-Tiny (DeiT-Ti): width 192, 12 blocks, 3 heads (5.4 M parameters at 32 px).

    Defaults suit CIFAR-size images (32 px, patches of 4: 64 tokens + CLS);
    the paper setting is `image_size=224, patch_size=16`.

    Args:
        image_size: int or (height, width).
        patch_size: int.
        channels: int. 1 or 3.
        name: str.
        **kwargs: other `kerassl.backbones.vit` arguments (input_shape,
            pooling, position_embedding, dropout, mlp_ratio).

    Example:
    >>> encoder = kerassl.backbones.vit_tiny(image_size=32, patch_size=4)
    >>> encoder.output.shape
    (None, 192)

    Reference: Touvron et al., "Training data-efficient image transformers",
    2021 (https://arxiv.org/abs/2012.12877).
    """
    return vit(image_size, patch_size, channels, 192, 12, 3, name=name, **kwargs)


def vit_small(image_size=32, patch_size=4, channels=3, name="vit_small", **kwargs):
    """ViT-Small (DeiT-S, DINO's ViT-S): width 384, 12 blocks, 6 heads (about 21 M parameters).

    Args: as `vit_tiny`.

    Example:
    >>> encoder = kerassl.backbones.vit_small(image_size=32, patch_size=4)
    >>> encoder.output.shape
    (None, 384)
    """
    return vit(image_size, patch_size, channels, 384, 12, 6, name=name, **kwargs)


def vit_base(image_size=32, patch_size=4, channels=3, name="vit_base", **kwargs):
    """ViT-Base: width 768, 12 blocks, 12 heads (about 85 M parameters).

    Args: as `vit_tiny`.

    Example:
    >>> encoder = kerassl.backbones.vit_base(image_size=224, patch_size=16)
    >>> encoder.output.shape
    (None, 768)
    """
    return vit(image_size, patch_size, channels, 768, 12, 12, name=name, **kwargs)


def find_transformer(encoder, purpose="this"):
    """The `VisionTransformer` layer of a ViT encoder.

    Args:
        encoder: a model from `kerassl.backbones.vit*` (or a bare
            `VisionTransformer` layer).
        purpose: str. Names what needs the ViT, for the error message.

    Returns:
        The `VisionTransformer` layer, fed directly by the model's input.

    Raises:
        ValueError: the encoder is not a ViT encoder.
    """
    if isinstance(encoder, VisionTransformer):
        return encoder
    layers = [
        layer
        for layer in getattr(encoder, "layers", [])
        if not isinstance(layer, keras.layers.InputLayer)
    ]
    if len(layers) == 1 and isinstance(layers[0], VisionTransformer):
        return layers[0]
    raise ValueError(
        f"{purpose} needs a Vision Transformer encoder, made by "
        "kerassl.backbones.vit_tiny / vit_small / vit_base / vit (an Input followed "
        f"by one VisionTransformer layer); got {getattr(encoder, 'name', type(encoder).__name__)!r}."
    )


def patch_tokens(encoder, images):
    """The final patch tokens of a ViT encoder, inference mode.

    Args:
        encoder: a ViT encoder from `kerassl.backbones.vit*`.
        images: array (B, H, W, C), uint8 or floats in [0, 1].

    Returns:
        NumPy array (B, N, D), patches in row-major order.

    Example:
    >>> tokens = kerassl.vit.patch_tokens(encoder, images[:4])
    """
    transformer = find_transformer(encoder, "patch_tokens")
    tokens = transformer.encode(to_float_images(images), training=False)
    return ops.convert_to_numpy(tokens[:, transformer.num_prefix_tokens :])


def attention_maps(encoder, images):
    """How much the CLS token attends to each patch in the last block.

    The maps DINO made famous: for a self-supervised ViT they outline the
    main object without any label (Caron et al., 2021, Fig. 1).

    Args:
        encoder: a ViT encoder from `kerassl.backbones.vit*`.
        images: array (B, H, W, C), uint8 or floats in [0, 1].

    Returns:
        NumPy array (B, heads, rows, cols); each head's map sums to at most 1
        (the CLS token's attention to itself is left out).

    Example:
    >>> maps = kerassl.vit.attention_maps(dino.encoder, images[:4])
    """
    transformer = find_transformer(encoder, "attention_maps")
    images = to_float_images(images)
    _, weights = transformer.encode(images, training=False, return_attention=True)
    rows, cols = _grid(images.shape[1], images.shape[2], transformer.patch_size)
    if not transformer.class_token:
        raise ValueError("attention_maps shows the CLS token's attention; this ViT has no CLS token.")
    maps = ops.convert_to_numpy(weights[:, :, 0, transformer.num_prefix_tokens :])
    return maps.reshape(maps.shape[0], maps.shape[1], rows, cols)
