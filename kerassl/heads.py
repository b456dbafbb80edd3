"""Projection and prediction heads built from a list of blocks.

A head is a stack of Dense blocks; each block optionally adds BatchNorm and an
activation. Each method's head only picks sizes, following the paper that
defines it.
"""

import keras

register = keras.saving.register_keras_serializable(package="kerassl")


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
