"""What every ViT-family converter shares: taking tensors by name, reading configs, filling a kerassl ViT.

The official checkpoints of DINO, MAE, MSN, DINOv2 and I-JEPA all use the
`transformers` ViT layout (`embeddings.*`, `encoder.layer.{i}.*`,
`layernorm.*`); the families differ in a few names and options, which each
family module passes in as a `BlockNames` and `vit` options.
"""

import dataclasses

import numpy as np

from kerassl.backbones import vit as kvit
from kerassl.zoo.convert.positions import resize_positions
from kerassl.zoo.errors import ConversionError


class Checkpoint:
    """A checkpoint's tensors under one name prefix, taken by name with their shape checked.

    Args:
        tensors: dict {name: NumPy array}.
        where: str. Names the source in error messages.
        prefix: str. Prepended to every name taken ("vit." for MAE's pretraining repos).
    """

    def __init__(self, tensors, where, prefix=""):
        self.tensors, self.where, self.prefix = tensors, where, prefix

    def has(self, name):
        return self.prefix + name in self.tensors

    def take(self, name, shape=None):
        key = self.prefix + name
        if key not in self.tensors:
            raise ConversionError(
                f"{self.where}: the checkpoint has no weight {key!r}, which this model_type's "
                "config needs. The file is incomplete or belongs to another architecture."
            )
        array = np.asarray(self.tensors[key], "float32")
        if shape is not None and tuple(array.shape) != tuple(shape):
            raise ConversionError(
                f"{self.where}: weight {key!r} has shape {tuple(array.shape)} but config.json implies "
                f"{tuple(shape)}. The config and the weights do not belong together."
            )
        return array


def find_prefix(tensors, probe, prefixes):
    """The first prefix p (of `prefixes`) for which p + probe is a tensor name, or None."""
    for prefix in prefixes:
        if prefix + probe in tensors:
            return prefix
    return None


def config_value(config, key, default=None, where="config.json"):
    value = config.get(key, default)
    if value is None:
        raise ConversionError(f"{where} has no {key!r}; it is not a complete transformers config.")
    return value


def check_activation(config, where):
    act = config.get("hidden_act", "gelu")
    if act != "gelu":
        raise ConversionError(f"{where}: hidden_act {act!r} is not supported by this converter (only 'gelu').")


def pixel_statistics(preprocessor, where):
    """(mean, std) from preprocessor_config.json; ImageNet's when the repo has none."""
    preprocessor = preprocessor or {}
    if preprocessor.get("do_normalize") is False:
        return None, None
    mean = preprocessor.get("image_mean", [0.485, 0.456, 0.406])
    std = preprocessor.get("image_std", [0.229, 0.224, 0.225])
    if len(mean) != 3 or len(std) != 3:
        raise ConversionError(f"{where}: preprocessor_config.json mean/std must have 3 values each.")
    return [float(v) for v in mean], [float(v) for v in std]


def default_image_size(config, preprocessor):
    """The size the preprocessor crops to (DINOv2: 224, its positions are for 518), else config.image_size."""
    crop = (preprocessor or {}).get("crop_size")
    if isinstance(crop, dict) and crop.get("height"):
        return int(crop["height"]), int(crop["width"])
    if isinstance(crop, int):
        return crop, crop
    size = config.get("image_size", 224)
    return tuple(size) if isinstance(size, (list, tuple)) else (int(size), int(size))


def check_image_size(image_size, patch_size, where):
    size = kvit._pair(image_size, "image_size")
    if size[0] % patch_size or size[1] % patch_size:
        raise ConversionError(
            f"{where}: image_size {size} is not a multiple of the patch size {patch_size}; pick e.g. "
            f"{(size[0] // patch_size) * patch_size or patch_size}."
        )
    return size


@dataclasses.dataclass(frozen=True)
class BlockNames:
    """Checkpoint names inside block i, relative to `layer` (e.g. "encoder.layer.{i}.")."""

    layer: str = "encoder.layer.{i}."
    norm1: str = "layernorm_before"
    norm2: str = "layernorm_after"
    attention: str = "attention.attention."
    attention_out: str = "attention.output.dense"
    mlp_in: str = "intermediate.dense"
    mlp_out: str = "output.dense"
    layer_scale: tuple = ()  # ("layer_scale1.lambda1", "layer_scale2.lambda1") for DINOv2


DINOV2_NAMES = BlockNames(
    norm1="norm1", norm2="norm2", mlp_in="mlp.fc1", mlp_out="mlp.fc2",
    layer_scale=("layer_scale1.lambda1", "layer_scale2.lambda1"),
)


class Assignments:
    """Shape-checked assignments into a freshly built model; every variable must get one.

    Each value is assigned as soon as it is checked, so a full-size checkpoint
    is held once as NumPy and once as variables, not a third time as copies.
    A failure leaves a half-filled model, which the caller discards.
    """

    def __init__(self, where):
        self.where, self.assigned = where, set()

    def add(self, variable, value, what):
        value = np.asarray(value, "float32")
        if tuple(variable.shape) != tuple(value.shape):
            raise ConversionError(
                f"{self.where}: {what} has shape {tuple(value.shape)} but the model built from "
                f"config.json expects {tuple(variable.shape)}."
            )
        variable.assign(value.astype(variable.dtype, copy=False))
        self.assigned.add(id(variable))

    def dense(self, layer, checkpoint, name, has_bias=True):
        self.add(layer.kernel, checkpoint.take(name + ".weight").T, name + ".weight")
        if has_bias:
            self.add(layer.bias, checkpoint.take(name + ".bias"), name + ".bias")

    def norm(self, layer, checkpoint, name):
        self.add(layer.gamma, checkpoint.take(name + ".weight"), name + ".weight")
        self.add(layer.beta, checkpoint.take(name + ".bias"), name + ".bias")

    def check_complete(self, weights):
        """Raises unless every variable in `weights` was assigned."""
        missing = [v.path for v in weights if id(v) not in self.assigned]
        if missing:
            raise ConversionError(f"{self.where}: the converter left weights unset: {missing[:5]}.")

    def apply(self, models):
        """Raises unless every weight of `models` was assigned (values are assigned as they are added)."""
        self.check_complete([v for model in models for v in model.weights])


def add_block(assign, block, checkpoint, names, index, qkv_bias=True):
    """Adds the weights of one transformers ViT layer to `assign`."""
    base = names.layer.format(i=index)
    attention = block.attention
    kernels = [checkpoint.take(f"{base}{names.attention}{part}.weight").T for part in ("query", "key", "value")]
    assign.add(attention.qkv.kernel, np.concatenate(kernels, axis=1), f"{base}{names.attention}query/key/value")
    if qkv_bias:
        biases = [checkpoint.take(f"{base}{names.attention}{part}.bias") for part in ("query", "key", "value")]
        assign.add(attention.qkv.bias, np.concatenate(biases), f"{base}{names.attention}query/key/value bias")
    assign.dense(attention.projection, checkpoint, base + names.attention_out)
    assign.norm(block.norm1, checkpoint, base + names.norm1)
    assign.norm(block.norm2, checkpoint, base + names.norm2)
    if block.mlp == "swiglu":
        assign.dense(block.mlp_in, checkpoint, base + "mlp.weights_in")
        assign.dense(block.mlp_out, checkpoint, base + "mlp.weights_out")
    else:
        assign.dense(block.mlp_in, checkpoint, base + names.mlp_in)
        assign.dense(block.mlp_out, checkpoint, base + names.mlp_out)
    if names.layer_scale:
        assign.add(block.layer_scale_1, checkpoint.take(base + names.layer_scale[0]), base + names.layer_scale[0])
        assign.add(block.layer_scale_2, checkpoint.take(base + names.layer_scale[1]), base + names.layer_scale[1])


def source_grid(num_positions, where):
    side = int(round(num_positions**0.5))
    if side * side != num_positions:
        raise ConversionError(f"{where}: {num_positions} patch position embeddings do not form a square grid.")
    return side, side


def add_embeddings(assign, transformer, checkpoint, antialias=False):
    """Patch embedding, CLS token, registers and position embeddings (resized to the model's grid)."""
    dim = transformer.hidden_dim
    kernel = checkpoint.take("embeddings.patch_embeddings.projection.weight")
    assign.add(transformer.patch_embedding.kernel, kernel.transpose(2, 3, 1, 0), "patch embedding weight")
    if transformer.patch_bias:
        assign.add(transformer.patch_embedding.bias, checkpoint.take("embeddings.patch_embeddings.projection.bias"),
                   "patch embedding bias")
    positions = checkpoint.take("embeddings.position_embeddings")
    positions = positions.reshape(-1, positions.shape[-1])
    if transformer.class_token:
        assign.add(transformer.cls_token, checkpoint.take("embeddings.cls_token").reshape(1, 1, dim), "cls_token")
        assign.add(transformer.cls_position, positions[None, :1], "CLS position embedding")
        positions = positions[1:]
    if transformer.num_register_tokens:
        assign.add(transformer.register_tokens, checkpoint.take("embeddings.register_tokens"), "register_tokens")
    grid = source_grid(len(positions), checkpoint.where)
    table = positions.reshape(*grid, positions.shape[-1])
    if tuple(grid) != tuple(transformer.grid_size):
        table = resize_positions(table, transformer.grid_size, antialias=antialias)
    assign.add(transformer.patch_positions, table.reshape(1, -1, table.shape[-1]), "patch position embeddings")


def build_encoder(config, preprocessor, image_size, where, name, **options):
    """A kerassl ViT encoder shaped by a transformers ViT-family config.

    Options (pooling, position_embedding, layer_scale, ...) come from the family module.
    """
    check_activation(config, where)
    patch = int(config_value(config, "patch_size", where=where))
    hidden = int(config_value(config, "hidden_size", where=where))
    size = check_image_size(image_size or default_image_size(config, preprocessor), patch, where)
    mean, std = pixel_statistics(preprocessor, where)
    if "mlp_ratio" not in options:
        options["mlp_ratio"] = config_value(config, "intermediate_size", where=where) / hidden
    try:
        with kvit.weights_to_be_loaded():  # every weight is assigned from the checkpoint next
            return kvit.vit(
                image_size=size,
                patch_size=patch,
                channels=int(config.get("num_channels", 3)),
                hidden_dim=hidden,
                depth=int(config_value(config, "num_hidden_layers", where=where)),
                num_heads=int(config_value(config, "num_attention_heads", where=where)),
                layer_norm_epsilon=float(config.get("layer_norm_eps", 1e-12)),
                qkv_bias=bool(config.get("qkv_bias", True)),
                mean=mean,
                std=std,
                input_range="auto",
                name=name,
                **options,
            )
    except ValueError as error:
        raise ConversionError(f"{where}: config.json describes a model kerassl cannot build: {error}") from error


def fill_encoder(encoder, checkpoint, names=BlockNames(), antialias=False):
    """Sets every weight of a kerassl ViT encoder from a transformers ViT-family checkpoint."""
    transformer = kvit.find_transformer(encoder)
    assign = Assignments(checkpoint.where)
    add_embeddings(assign, transformer, checkpoint, antialias=antialias)
    for index, block in enumerate(transformer.blocks):
        add_block(assign, block, checkpoint, names, index, qkv_bias=transformer.qkv_bias)
    assign.norm(transformer.norm, checkpoint, "layernorm")
    assign.check_complete(encoder.weights)
    return encoder


def strip_to(tensors, probe, prefixes, where):
    """A Checkpoint over the tensors under whichever of `prefixes` holds `probe`."""
    prefix = find_prefix(tensors, probe, prefixes)
    if prefix is None:
        raise ConversionError(
            f"{where}: the checkpoint has no weight {probe!r} (looked under prefixes {list(prefixes)}); "
            "it is not a transformers checkpoint of this model_type."
        )
    return Checkpoint(tensors, where, prefix)
