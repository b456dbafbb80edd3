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

import keras
import numpy as np
from keras import ops

from kerassl.images import interpolation_matrix, to_float_images
from kerassl.registry import register

POSITION_EMBEDDINGS = ("learned", "sincos")
POOLINGS = ("cls", "mean")


def _dense_initializer():
    # ViT, DeiT, MAE and DINO all start linear layers at truncated normal, std 0.02.
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

    Example:
    ```python
    attention = kerassl.vit.MultiHeadSelfAttention(192, 3)
    out, weights = attention(tokens, return_attention=True)
    ```
    """

    def __init__(self, dim, num_heads, **kwargs):
        super().__init__(**kwargs)
        self.dim = _check_positive_int(dim, "dim")
        self.num_heads = _check_positive_int(num_heads, "num_heads")
        if dim % num_heads:
            raise ValueError(f"dim ({dim}) must be a multiple of num_heads ({num_heads}).")
        self.head_dim = dim // num_heads
        self.qkv = keras.layers.Dense(3 * dim, kernel_initializer=_dense_initializer(), name="qkv")
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
        return config


@register(name="ViTTransformerBlock")
class TransformerBlock(keras.layers.Layer):
    """A pre-norm Transformer block: x + MSA(LN(x)), then x + MLP(LN(x)).

    Args:
        dim: int. Token size.
        num_heads: int. Attention heads.
        mlp_ratio: float. Hidden size of the MLP relative to `dim`.
        dropout: float. Dropout after attention and MLP (0 in SSL pretraining).
        layer_norm_epsilon: float.

    Example:
    ```python
    block = kerassl.vit.TransformerBlock(192, num_heads=3)
    tokens = block(tokens)
    ```
    """

    def __init__(self, dim, num_heads, mlp_ratio=4.0, dropout=0.0, layer_norm_epsilon=1e-6, **kwargs):
        super().__init__(**kwargs)
        self.dim = _check_positive_int(dim, "dim")
        self.num_heads = _check_positive_int(num_heads, "num_heads")
        self.mlp_ratio = float(mlp_ratio)
        self.dropout = float(dropout)
        self.layer_norm_epsilon = float(layer_norm_epsilon)
        hidden = max(1, int(round(dim * self.mlp_ratio)))
        self.norm1 = keras.layers.LayerNormalization(epsilon=layer_norm_epsilon, name="norm1")
        self.attention = MultiHeadSelfAttention(dim, num_heads, name="attention")
        self.norm2 = keras.layers.LayerNormalization(epsilon=layer_norm_epsilon, name="norm2")
        self.mlp_in = keras.layers.Dense(
            hidden, activation="gelu", kernel_initializer=_dense_initializer(), name="mlp_in"
        )
        self.mlp_out = keras.layers.Dense(dim, kernel_initializer=_dense_initializer(), name="mlp_out")
        self.drop = keras.layers.Dropout(self.dropout) if self.dropout else None

    def build(self, input_shape):
        for layer in (self.norm1, self.attention, self.norm2, self.mlp_in):
            layer.build(input_shape)
        self.mlp_out.build((*input_shape[:-1], self.mlp_in.units))
        self.built = True

    def call(self, tokens, training=False, return_attention=False):
        attended = self.attention(self.norm1(tokens), return_attention=return_attention)
        if return_attention:
            attended, weights = attended
        if self.drop is not None:
            attended = self.drop(attended, training=training)
        tokens = tokens + attended
        hidden = self.mlp_out(self.mlp_in(self.norm2(tokens)))
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
        return config


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
        pooling: str. "cls" or "mean".
        dropout: float. Dropout inside the blocks.
        layer_norm_epsilon: float.

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
        self.mlp_ratio = float(mlp_ratio)
        self.position_embedding = position_embedding
        self.pooling = pooling
        self.dropout = float(dropout)
        self.layer_norm_epsilon = float(layer_norm_epsilon)
        self.patch_embedding = keras.layers.Conv2D(
            hidden_dim,
            self.patch_size,
            strides=self.patch_size,
            kernel_initializer=_dense_initializer(),
            name="patch_embedding",
        )
        self.blocks = [
            TransformerBlock(
                hidden_dim, num_heads, mlp_ratio, dropout, layer_norm_epsilon, name=f"block_{index}"
            )
            for index in range(self.depth)
        ]
        self.norm = keras.layers.LayerNormalization(epsilon=layer_norm_epsilon, name="norm")

    @property
    def num_patches(self):
        return self.grid_size[0] * self.grid_size[1]

    def build(self, input_shape=None):
        self.patch_embedding.build((None, *self.image_size, self.channels))
        self.cls_token = self.add_weight(
            shape=(1, 1, self.hidden_dim), initializer=_dense_initializer(), name="cls_token"
        )
        if self.position_embedding == "learned":
            self.patch_positions = self.add_weight(
                shape=(1, self.num_patches, self.hidden_dim),
                initializer=_dense_initializer(),
                name="patch_positions",
            )
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
            self.cls_position = self.add_weight(
                shape=(1, 1, self.hidden_dim), initializer="zeros", trainable=False, name="cls_position"
            )
        for block in self.blocks:
            block.build((None, None, self.hidden_dim))
        self.norm.build((None, None, self.hidden_dim))
        self.built = True

    def positions_for(self, grid):
        """Patch position embeddings (1, rows * cols, D) for a patch grid."""
        if tuple(grid) == self.grid_size:
            return self.patch_positions
        return interpolate_position_embedding(self.patch_positions, self.grid_size, grid)

    def embed(self, images):
        """Patch tokens with their position embeddings, (B, N, D); no CLS."""
        if images.shape[-1] != self.channels:
            raise ValueError(
                f"this Vision Transformer was built for {self.channels}-channel images; "
                f"got shape {tuple(images.shape)}."
            )
        grid = _grid(images.shape[1], images.shape[2], self.patch_size)
        tokens = self.patch_embedding(ops.cast(images, self.compute_dtype))
        tokens = ops.reshape(tokens, (-1, grid[0] * grid[1], self.hidden_dim))
        return tokens + ops.cast(self.positions_for(grid), tokens.dtype)

    def encode(self, images, training=False, keep_indices=None, return_attention=False):
        """Final tokens (B, 1 + N, D), CLS first, after the last LayerNorm.

        Args:
            images: tensor (B, H, W, C), floats in [0, 1]; H, W multiples of
                the patch size.
            training: bool.
            keep_indices: int tensor (B, K) or None. Only these patches (per
                image, indices in row-major order) enter the blocks; the output
                then has 1 + K tokens in that order.
            return_attention: bool. Also return the last block's attention
                weights (B, heads, T, T).
        """
        tokens = self.embed(images)
        if keep_indices is not None:
            index = ops.expand_dims(ops.cast(keep_indices, "int32"), -1)
            tokens = ops.take_along_axis(tokens, index, axis=1)
        cls = ops.cast(self.cls_token + self.cls_position, tokens.dtype)
        cls = ops.zeros_like(tokens[:, :1]) + cls
        tokens = ops.concatenate([cls, tokens], axis=1)
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
        return ops.mean(tokens[:, 1:], axis=1)

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
    return ops.convert_to_numpy(tokens[:, 1:])


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
    maps = ops.convert_to_numpy(weights[:, :, 0, 1:])
    return maps.reshape(maps.shape[0], maps.shape[1], rows, cols)
