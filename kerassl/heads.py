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


# -- prediction heads and prototypes of the staple methods ------------------------


def byol_projection_head(hidden_dim=4096, output_dim=256, name="projection_head"):
    """BYOL's projector (and, with the same sizes, its predictor).

    "a linear layer with output size 4096 followed by batch normalization,
    rectified linear units (ReLU), and a final linear layer with output
    dimension 256" (BYOL, Sec. 3.3).

    Example:
    ```python
    head = kerassl.heads.byol_projection_head(4096, 256)
    ```

    Reference: Grill et al., NeurIPS 2020 (https://arxiv.org/abs/2006.07733).
    """
    return MLPHead([hidden_dim, output_dim], name=name)


def prediction_head(hidden_dim=4096, output_dim=256, name="prediction_head"):
    """A two-layer predictor q: Linear -> BN -> ReLU -> Linear.

    BYOL's and NNCLR's predictor (4096 -> 256), SimSiam's bottleneck predictor
    (512 -> 2048: "The prediction MLP h has 2 layers ... The dimension of h's
    input and output is 2048, and h's hidden layer's dimension is 512",
    SimSiam Sec. 4), MoCo v3's (4096 -> 256).

    Example:
    ```python
    predictor = kerassl.heads.prediction_head(512, 2048)
    ```
    """
    return MLPHead([hidden_dim, output_dim], name=name)


def simsiam_projection_head(hidden_dim=2048, output_dim=2048, num_layers=3, name="projection_head"):
    """SimSiam's projector: `num_layers` Linear + BN, ReLU between, BN on the output.

    "The projection MLP has BN applied to each fully-connected (fc) layer,
    including its output fc. Its output fc has no ReLU. The hidden fc is
    2048-d. This MLP has 3 layers" (SimSiam, Sec. 4; 2 layers on CIFAR-10).
    The output BatchNorm has no scale (the official code's `affine=False`
    keeps a fixed shift too; here the shift is learned).

    Example:
    ```python
    head = kerassl.heads.simsiam_projection_head(2048, 2048)
    ```

    Reference: Chen and He, CVPR 2021 (https://arxiv.org/abs/2011.10566).
    """
    units = [hidden_dim] * (int(num_layers) - 1) + [output_dim]
    return MLPHead(units, last_batch_norm=True, name=name)


def moco_projection_head(hidden_dim=2048, output_dim=128, version="v3", name="projection_head"):
    """MoCo's projector: v2's Linear -> ReLU -> Linear, v3's with BN (on the output too).

    MoCo v2 "replace[s] the fc head in MoCo with a 2-layer MLP head (hidden
    layer 2048-d, with ReLU)"; MoCo v3's ResNet projector is
    `_build_mlp(2, 2048, 4096, 256, last_bn=True)` in
    `facebookresearch/moco-v3`: BN after every Linear, ReLU after hidden ones.

    Example:
    ```python
    head = kerassl.heads.moco_projection_head(4096, 256, version="v3")
    ```
    """
    if version == "v2":
        return MLPHead([hidden_dim, output_dim], batch_norm=False, name=name)
    return MLPHead([hidden_dim, output_dim], last_batch_norm=True, name=name)


def barlow_twins_projection_head(hidden_dim=8192, output_dim=8192, num_layers=3, name="projection_head"):
    """Barlow Twins' and VICReg's projector: Linear-BN-ReLU twice, then a bias-free Linear.

    "The projector network has three linear layers, each with 8192 output
    units. The first two layers of the projector are followed by a batch
    normalization layer and rectified linear units" (Barlow Twins, Sec. 4);
    VICReg uses the same ("8192-8192-8192").

    Example:
    ```python
    head = kerassl.heads.barlow_twins_projection_head(2048, 2048)
    ```
    """
    units = [hidden_dim] * (int(num_layers) - 1) + [output_dim]
    return MLPHead(units, use_bias=False, name=name)


def nnclr_projection_head(hidden_dim=2048, output_dim=256, name="projection_head"):
    """NNCLR's projector: 3 Linear layers with BN, ReLU between, BN on the output.

    "The projection MLP has 3 layers ... hidden dimension 2048 ... output
    256 ... batch normalization ... after every layer" (NNCLR, Sec. 4.1).

    Example:
    ```python
    head = kerassl.heads.nnclr_projection_head(2048, 256)
    ```
    """
    return MLPHead([hidden_dim, hidden_dim, output_dim], last_batch_norm=True, name=name)


@register
class Prototypes(keras.layers.Layer):
    """SwAV's prototypes: a bias-free linear layer with unit-norm columns.

    Returns `z @ C` for unit-norm prototype vectors C (dim, K). The official
    code normalizes the stored prototypes before every step and
    differentiates with respect to the normalized ones; here the columns are
    kept at unit norm by a `UnitNorm` constraint, which the optimizer applies
    after every update (also inside JAX's stateless step), and the forward
    pass uses the normalized columns with a straight-through gradient, so
    the first step is the same too. `gradient_scale=0` freezes them
    (SwAV freezes its prototypes during the first epoch).

    Args:
        num_prototypes: int. K (3000 on ImageNet).

    Example:
    ```python
    prototypes = kerassl.heads.Prototypes(3000)
    scores = prototypes(kerassl.losses.l2_normalize(z))  # cosines in [-1, 1]
    ```

    Reference: Caron et al., NeurIPS 2020 (https://arxiv.org/abs/2006.09882).
    """

    def __init__(self, num_prototypes=3000, **kwargs):
        super().__init__(**kwargs)
        if int(num_prototypes) < 1:
            raise ValueError(f"num_prototypes must be a positive int; got {num_prototypes}.")
        self.num_prototypes = int(num_prototypes)

    def build(self, input_shape):
        self.kernel = self.add_weight(
            shape=(input_shape[-1], self.num_prototypes),
            initializer="glorot_uniform",
            constraint=keras.constraints.UnitNorm(axis=0),
            name="kernel",
        )
        self.built = True

    def normalized_kernel(self, gradient_scale=1.0):
        kernel = ops.cast(self.kernel, "float32")
        norm = ops.sqrt(ops.maximum(ops.sum(ops.square(kernel), axis=0, keepdims=True), 1e-12))
        unit = ops.stop_gradient(kernel / norm)
        return unit + gradient_scale * (kernel - ops.stop_gradient(kernel))

    def call(self, inputs, gradient_scale=1.0):
        return ops.matmul(ops.cast(inputs, "float32"), self.normalized_kernel(gradient_scale))

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.num_prototypes)

    def get_config(self):
        config = super().get_config()
        config.update(num_prototypes=self.num_prototypes)
        return config
