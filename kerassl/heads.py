"""Projection and prediction heads built from a list of blocks.

A head is a stack of Dense blocks; each block optionally adds BatchNorm and an
activation. Each method's head only picks sizes, following the paper that
defines it.

Reference for `DINOHead`: Caron et al., "Emerging Properties in Self-Supervised
Vision Transformers", ICCV 2021 (https://arxiv.org/abs/2104.14294).
"""

import keras
from keras import ops

from kerassl.losses import l2_normalize
from kerassl.registry import register


@register
class MLPHead(keras.layers.Layer):
    """A multi-layer perceptron head: Dense -> [BatchNorm] -> activation, repeated.

    Hidden blocks get BatchNorm (if `batch_norm`) and `activation`; the last
    block is a plain Dense unless `last_batch_norm` adds a BatchNorm (SimSiam's
    projector, BYOL-style heads).

    Args:
        units: list of int. Output size of each block; the last is the head's
            output dimension.
        batch_norm: bool. BatchNorm after each hidden Dense.
        activation: str. Activation of hidden blocks.
        last_batch_norm: bool. BatchNorm (without scale) after the last Dense.
        use_bias: bool. Bias in the Dense layers (dropped before a BatchNorm,
            which has its own shift).

    Example:
    ```python
    head = kerassl.heads.MLPHead([2048, 128])
    z = head(features)  # (batch, 128)
    ```
    """

    def __init__(
        self,
        units,
        batch_norm=True,
        activation="relu",
        last_batch_norm=False,
        use_bias=True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        units = [int(u) for u in units]
        if not units or min(units) < 1:
            raise ValueError(f"units must be a non-empty list of positive ints; got {units}.")
        self.units = units
        self.batch_norm = batch_norm
        self.activation = activation
        self.last_batch_norm = last_batch_norm
        self.use_bias = use_bias
        self.blocks = []
        for index, size in enumerate(units):
            last = index == len(units) - 1
            norm = last_batch_norm if last else batch_norm
            block = [keras.layers.Dense(size, use_bias=use_bias and not norm, name=f"dense_{index}")]
            if norm:
                block.append(keras.layers.BatchNormalization(scale=not last, name=f"bn_{index}"))
            if not last:
                block.append(keras.layers.Activation(activation, name=f"act_{index}"))
            self.blocks.append(block)

    def build(self, input_shape):
        shape = tuple(input_shape)
        for block in self.blocks:
            for layer in block:
                layer.build(shape)
                shape = layer.compute_output_shape(shape)
        self.built = True

    def call(self, inputs, training=False):
        x = inputs
        for block in self.blocks:
            for layer in block:
                x = layer(x, training=training)
        return x

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units[-1])

    def get_config(self):
        config = super().get_config()
        config.update(
            units=self.units,
            batch_norm=self.batch_norm,
            activation=self.activation,
            last_batch_norm=self.last_batch_norm,
            use_bias=self.use_bias,
        )
        return config


def simclr_projection_head(hidden_dim=2048, output_dim=128, name="projection_head"):
    """SimCLR's projection g(h): Linear -> BN -> ReLU -> Linear.

    "We use a MLP with one hidden layer to obtain z = g(h) = W2 ReLU(W1 h)"
    (SimCLR, Sec. 2.1); BatchNorm in the hidden layer as in SimCLR v2 and lightly.

    Args:
        hidden_dim: int.
        output_dim: int.
        name: str.
    """
    return MLPHead([hidden_dim, output_dim], name=name)


@register
class DINOHead(keras.layers.Layer):
    """DINO's projection head: MLP, L2-normalized bottleneck, weight-normalized output.

    "The projection head consists of a 3-layer multi-layer perceptron (MLP)
    with hidden dimension 2048 followed by l2 normalization and a weight
    normalized fully connected layer with K dimensions" (DINO, Sec. 3.1).
    The last layer's weight norm has its gain fixed to 1 (the paper's
    `norm_last_layer=True`, which it found steadier).

    Args:
        hidden_dim: int. Width of the hidden MLP layers.
        bottleneck_dim: int. Size of the L2-normalized bottleneck.
        output_dim: int. K, the number of "prototypes" (65536 in the paper
            for ImageNet; a few thousand suit CIFAR-size data).
        num_layers: int >= 1. MLP layers including the bottleneck layer.
        batch_norm: bool. BatchNorm in the hidden MLP layers (off for ViTs).

    Example:
    ```python
    head = kerassl.heads.DINOHead(2048, 256, 4096)
    logits = head(features)  # (batch, 4096)
    ```

    Reference: Caron et al., ICCV 2021 (https://arxiv.org/abs/2104.14294).
    """

    def __init__(self, hidden_dim=2048, bottleneck_dim=256, output_dim=4096, num_layers=3, batch_norm=False, **kwargs):
        super().__init__(**kwargs)
        self.hidden_dim = int(hidden_dim)
        self.bottleneck_dim = int(bottleneck_dim)
        self.output_dim = int(output_dim)
        self.num_layers = int(num_layers)
        self.batch_norm = bool(batch_norm)
        if min(self.hidden_dim, self.bottleneck_dim, self.output_dim, self.num_layers) < 1:
            raise ValueError(
                "hidden_dim, bottleneck_dim, output_dim and num_layers must be positive; got "
                f"{hidden_dim}, {bottleneck_dim}, {output_dim}, {num_layers}."
            )
        units = [self.hidden_dim] * (self.num_layers - 1) + [self.bottleneck_dim]
        self.mlp = MLPHead(units, batch_norm=self.batch_norm, activation="gelu", name="mlp")

    def build(self, input_shape):
        self.mlp.build(input_shape)
        self.prototypes = self.add_weight(
            shape=(self.bottleneck_dim, self.output_dim),
            initializer=keras.initializers.TruncatedNormal(stddev=0.02),
            name="prototypes",
        )
        self.built = True

    def call(self, features, training=False):
        x = l2_normalize(self.mlp(features, training=training))
        weight = ops.cast(self.prototypes, "float32")
        weight = weight * ops.rsqrt(ops.maximum(ops.sum(ops.square(weight), axis=0, keepdims=True), 1e-12))
        return ops.matmul(x, weight)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.output_dim)

    def get_config(self):
        config = super().get_config()
        config.update(
            hidden_dim=self.hidden_dim,
            bottleneck_dim=self.bottleneck_dim,
            output_dim=self.output_dim,
            num_layers=self.num_layers,
            batch_norm=self.batch_norm,
        )
        return config
