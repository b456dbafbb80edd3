"""OpenAI CLIP checkpoints (`transformers`' `CLIPModel` layout) as kerassl models.

`encoder_from_checkpoint` gives the image tower with its projection,
L2-normalized (what `kerassl.CLIP.encode_image` returns); `method_from_checkpoint`
gives a whole `kerassl.CLIP`: vision and text towers, both projections, the
learned logit scale and OpenAI's BPE tokenizer, ready for `zero_shot_classifier`,
`encode_text`, retrieval or more training.

Numerics as `transformers` has them: quick GELU, layer-norm epsilon from the
config (1e-5), a LayerNorm before the vision blocks (`pre_layrnorm`), the CLS
token after `post_layernorm`, no bias in the patch embedding or projections, a
causal mask in the text tower and the text pooled at the end token (the
argmax of the ids, as `transformers` does for OpenAI's configs, whose
`eos_token_id` is the legacy 2).

Reference: Radford et al., "Learning Transferable Visual Models From Natural
Language Supervision", ICML 2021 (https://arxiv.org/abs/2103.00020).
"""

import math

import keras
import numpy as np

from kerassl.clip_bpe import CLIPTokenizer
from kerassl.methods.clip import CLIP
from kerassl.text import TextEncoder
from kerassl.vit import VisionTransformer
from kerassl.zoo.errors import ConversionError

MODEL_TYPES = ("clip",)
# OpenAI's pixel statistics, used when a repo has no preprocessor_config.json.
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
ACTIVATIONS = {"quick_gelu": "quick_gelu", "gelu": "gelu"}


class _Tensors:
    """Checkpoint tensors taken by name, each checked for presence and shape."""

    def __init__(self, tensors):
        self.tensors = tensors

    def take(self, name, shape=None):
        if name not in self.tensors:
            raise ConversionError(
                f"the checkpoint has no weight {name!r}: it is not a complete CLIPModel "
                "checkpoint (a CLIPVisionModel or a pruned file?)."
            )
        array = np.asarray(self.tensors[name], "float32")
        if shape is not None and tuple(array.shape) != tuple(shape):
            raise ConversionError(
                f"weight {name!r} has shape {tuple(array.shape)} but config.json implies "
                f"{tuple(shape)}: the weights and the config belong to different models."
            )
        return array


def _assign(variable, array):
    variable.assign(np.asarray(array, "float32").reshape(tuple(variable.shape)))


def _norm(layer, tensors, prefix, dim):
    _assign(layer.gamma, tensors.take(f"{prefix}.weight", (dim,)))
    _assign(layer.beta, tensors.take(f"{prefix}.bias", (dim,)))


def _dense(layer, tensors, prefix, units, inputs, bias=True):
    _assign(layer.kernel, tensors.take(f"{prefix}.weight", (units, inputs)).T)
    if bias:
        _assign(layer.bias, tensors.take(f"{prefix}.bias", (units,)))


def _sub_config(config, key):
    sub = config.get(key)
    if not isinstance(sub, dict):
        raise ConversionError(f"config.json of a CLIP model needs a {key!r} object.")
    return sub


def _activation(sub, tower):
    act = sub.get("hidden_act", "quick_gelu")
    if act not in ACTIVATIONS:
        raise ConversionError(
            f"the {tower} tower uses hidden_act={act!r}; kerassl converts {sorted(ACTIVATIONS)}."
        )
    return ACTIVATIONS[act]


def _pixel_statistics(preprocessor):
    preprocessor = preprocessor or {}
    return (
        tuple(preprocessor.get("image_mean", OPENAI_MEAN)),
        tuple(preprocessor.get("image_std", OPENAI_STD)),
    )


def _vision_transformer(config, tensors, preprocessor, input_range):
    sub = _sub_config(config, "vision_config")
    dim, depth = int(sub.get("hidden_size", 768)), int(sub.get("num_hidden_layers", 12))
    native, patch = int(sub.get("image_size", 224)), int(sub.get("patch_size", 32))
    hidden = int(sub.get("intermediate_size", 4 * dim))
    channels = int(sub.get("num_channels", 3))
    mean, std = _pixel_statistics(preprocessor)
    transformer = VisionTransformer(
        image_size=native,
        patch_size=patch,
        channels=channels,
        hidden_dim=dim,
        depth=depth,
        num_heads=int(sub.get("num_attention_heads", 12)),
        mlp_ratio=hidden / dim,
        layer_norm_epsilon=float(sub.get("layer_norm_eps", 1e-5)),
        activation=_activation(sub, "vision"),
        pre_norm=True,
        patch_bias=False,
        mean=mean,
        std=std,
        input_range=input_range,
        name="clip_vision_transformer",
    )
    transformer.build((None, native, native, channels))
    grid = (native // patch) ** 2
    p = "vision_model."
    kernel = tensors.take(p + "embeddings.patch_embedding.weight", (dim, channels, patch, patch))
    _assign(transformer.patch_embedding.kernel, kernel.transpose(2, 3, 1, 0))
    _assign(transformer.cls_token, tensors.take(p + "embeddings.class_embedding", (dim,)))
    positions = tensors.take(p + "embeddings.position_embedding.weight", (grid + 1, dim))
    _assign(transformer.cls_position, positions[:1])
    _assign(transformer.patch_positions, positions[1:])
    _norm(transformer.pre_norm_layer, tensors, p + "pre_layrnorm", dim)
    for i, block in enumerate(transformer.blocks):
        q = f"{p}encoder.layers.{i}."
        _norm(block.norm1, tensors, q + "layer_norm1", dim)
        attn = q + "self_attn."
        kernels = [tensors.take(f"{attn}{n}_proj.weight", (dim, dim)).T for n in "qkv"]
        biases = [tensors.take(f"{attn}{n}_proj.bias", (dim,)) for n in "qkv"]
        _assign(block.attention.qkv.kernel, np.concatenate(kernels, axis=1))
        _assign(block.attention.qkv.bias, np.concatenate(biases))
        _dense(block.attention.projection, tensors, attn + "out_proj", dim, dim)
        _norm(block.norm2, tensors, q + "layer_norm2", dim)
        _dense(block.mlp_in, tensors, q + "mlp.fc1", block.hidden_size, dim)
        _dense(block.mlp_out, tensors, q + "mlp.fc2", dim, block.hidden_size)
    _norm(transformer.norm, tensors, p + "post_layernorm", dim)
    return transformer


def _image_size(config, image_size):
    native = int(_sub_config(config, "vision_config").get("image_size", 224))
    return native if image_size is None else int(image_size)


def _projection(tensors, name, inputs):
    weight = tensors.take(name)
    if weight.ndim != 2 or weight.shape[1] != inputs:
        raise ConversionError(
            f"weight {name!r} has shape {weight.shape}; expected (projection_dim, {inputs})."
        )
    return weight


def encoder_from_checkpoint(config, tensors, preprocessor, image_size=None):
    """CLIP's image tower as a kerassl encoder: images -> L2-normalized projected embeddings.

    The model takes uint8 or [0, 1] images at `image_size` (default: the
    checkpoint's, 224) and normalizes them with the checkpoint's mean/std
    inside; at another size the position embeddings are interpolated as
    `transformers` does with `interpolate_pos_encoding=True`.

    Args:
        config: dict. The repo's config.json (`model_type` "clip").
        tensors: dict of str -> NumPy array. The checkpoint's weights.
        preprocessor: dict or None. preprocessor_config.json (image_mean, image_std).
        image_size: int or None.

    Returns:
        keras.Model (B, H, W, 3) -> (B, projection_dim), unit-norm rows.

    Example:
    >>> encoder = kerassl.zoo.load_encoder("clip_vitb32")
    """
    tensors = _Tensors(tensors)
    size = _image_size(config, image_size)
    transformer = _vision_transformer(config, tensors, preprocessor, input_range="auto")
    weight = _projection(tensors, "visual_projection.weight", transformer.hidden_dim)
    projection = keras.layers.Dense(weight.shape[0], use_bias=False, name="image_projection")
    inputs = keras.Input((size, size, transformer.channels), name="clip_images")
    features = transformer(inputs)
    outputs = keras.layers.UnitNormalization(name="l2_normalize")(projection(features))
    _assign(projection.kernel, weight.T)
    return keras.Model(inputs, outputs, name="clip_image_encoder")


def _text_encoder(config, tensors):
    sub = _sub_config(config, "text_config")
    dim, depth = int(sub.get("hidden_size", 512)), int(sub.get("num_hidden_layers", 12))
    vocab, length = int(sub.get("vocab_size", 49408)), int(sub.get("max_position_embeddings", 77))
    heads = int(sub.get("num_attention_heads", 8))
    encoder = TextEncoder(
        vocab,
        max_length=length,
        width=dim,
        depth=depth,
        num_heads=heads,
        mlp_dim=int(sub.get("intermediate_size", 4 * dim)),
        pooling="argmax",
        causal=True,
        activation=_activation(sub, "text"),
        layer_norm_epsilon=float(sub.get("layer_norm_eps", 1e-5)),
        pad_id=None,
        name="clip_text_encoder",
    )
    encoder.build((None, length))
    p = "text_model."
    _assign(encoder.token_embedding.embeddings,
            tensors.take(p + "embeddings.token_embedding.weight", (vocab, dim)))
    _assign(encoder.position_embedding.embeddings,
            tensors.take(p + "embeddings.position_embedding.weight", (length, dim)))
    head_dim = dim // heads
    for i, block in enumerate(encoder.blocks):
        q = f"{p}encoder.layers.{i}."
        _norm(block.attention_norm, tensors, q + "layer_norm1", dim)
        attn = q + "self_attn."
        for name, dense in (("q", block.attention.query_dense), ("k", block.attention.key_dense),
                            ("v", block.attention.value_dense)):
            _assign(dense.kernel, tensors.take(f"{attn}{name}_proj.weight", (dim, dim)).T)
            _assign(dense.bias, tensors.take(f"{attn}{name}_proj.bias", (dim,)))
        out = tensors.take(attn + "out_proj.weight", (dim, dim)).T.reshape(heads, head_dim, dim)
        _assign(block.attention.output_dense.kernel, out)
        _assign(block.attention.output_dense.bias, tensors.take(attn + "out_proj.bias", (dim,)))
        _norm(block.mlp_norm, tensors, q + "layer_norm2", dim)
        _dense(block.mlp_in, tensors, q + "mlp.fc1", encoder.mlp_dim, dim)
        _dense(block.mlp_out, tensors, q + "mlp.fc2", dim, encoder.mlp_dim)
    _norm(encoder.final_norm, tensors, p + "final_layer_norm", dim)
    return encoder


def _tokenizer(config, tokenizer_files, max_length):
    try:
        vocab, merges = tokenizer_files["vocab.json"], tokenizer_files["merges.txt"]
    except (KeyError, TypeError):
        raise ConversionError(
            "a CLIP method needs the repo's tokenizer files: tokenizer_files must map "
            "'vocab.json' and 'merges.txt' to local paths."
        ) from None
    tokenizer = CLIPTokenizer.from_files(vocab, merges, max_length=max_length)
    vocab_size = int(_sub_config(config, "text_config").get("vocab_size", 49408))
    if tokenizer.vocab_size != vocab_size:
        raise ConversionError(
            f"vocab.json has {tokenizer.vocab_size} tokens but the text tower has "
            f"vocab_size={vocab_size}: the tokenizer files belong to another model."
        )
    return tokenizer


def method_from_checkpoint(config, tensors, preprocessor, tokenizer_files, image_size=None):
    """A whole `kerassl.CLIP` from an OpenAI CLIP checkpoint, with OpenAI's BPE tokenizer.

    Args:
        config: dict. The repo's config.json (`model_type` "clip").
        tensors: dict of str -> NumPy array. The checkpoint's weights.
        preprocessor: dict or None. preprocessor_config.json (image_mean, image_std).
        tokenizer_files: dict with local paths of the repo's "vocab.json" and "merges.txt".
        image_size: int or None. Image size the method is built for (default: the
            checkpoint's); other sizes interpolate the position embeddings.

    Returns:
        `kerassl.CLIP`, built; `encode_image`/`encode_text` give the L2-normalized
        projected embeddings and `logit_scale()` the learned scale.

    Example:
    >>> clip = kerassl.zoo.load_method("clip_vitb32")
    >>> zs = clip.zero_shot_classifier(["cat", "dog"])
    """
    tensors = _Tensors(tensors)
    size = _image_size(config, image_size)
    transformer = _vision_transformer(config, tensors, preprocessor, input_range="unit")
    inputs = keras.Input((size, size, transformer.channels), name="clip_images")
    encoder = keras.Model(inputs, transformer(inputs), name="clip_vision")
    text_encoder = _text_encoder(config, tensors)
    image_weight = _projection(tensors, "visual_projection.weight", transformer.hidden_dim)
    text_weight = _projection(tensors, "text_projection.weight", text_encoder.width)
    if image_weight.shape[0] != text_weight.shape[0]:
        raise ConversionError(
            f"the image projection has {image_weight.shape[0]} outputs and the text projection "
            f"{text_weight.shape[0]}: they must meet in one embedding space."
        )
    log_scale = float(tensors.take("logit_scale").reshape(()))
    scale = math.exp(log_scale)
    clip = CLIP(
        encoder,
        text_encoder,
        embed_dim=image_weight.shape[0],
        tokenizer=_tokenizer(config, tokenizer_files, text_encoder.max_length),
        logit_scale=scale,
        max_logit_scale=max(100.0, scale),
        name="clip",
    )
    clip.build({"images": (None, size, size, transformer.channels)})
    _assign(clip.image_projection.kernel, image_weight.T)
    _assign(clip.text_projection.kernel, text_weight.T)
    clip.log_logit_scale.assign(log_scale)
    return clip
