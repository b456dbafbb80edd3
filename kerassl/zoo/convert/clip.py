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
from kerassl.backbones.vit import VisionTransformer, weights_to_be_loaded
from kerassl.zoo.convert.common import Assignments, Checkpoint, check_image_size, source_grid
from kerassl.zoo.convert.positions import resize_positions
from kerassl.zoo.errors import ConversionError

MODEL_TYPES = ("clip",)
# OpenAI's pixel statistics, used when a repo has no preprocessor_config.json.
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
ACTIVATIONS = ("quick_gelu", "gelu")
WHERE = "CLIP checkpoint"
# The repo files method_from_checkpoint reads as `tokenizer_files`.
TOKENIZER_FILES = ("vocab.json", "merges.txt")


def _sub_config(config, key, where=WHERE):
    sub = config.get(key)
    if not isinstance(sub, dict):
        raise ConversionError(f"{where}: config.json of a CLIP model needs a {key!r} object.")
    return sub


def _activation(sub, tower, where):
    act = sub.get("hidden_act", "quick_gelu")
    if act not in ACTIVATIONS:
        raise ConversionError(
            f"{where}: the {tower} tower uses hidden_act={act!r}; kerassl converts {ACTIVATIONS}."
        )
    return act


def _pixel_statistics(preprocessor):
    preprocessor = preprocessor or {}
    mean = [float(v) for v in preprocessor.get("image_mean", OPENAI_MEAN)]
    std = [float(v) for v in preprocessor.get("image_std", OPENAI_STD)]
    return mean, std


def _image_size(config, image_size, where):
    sub = _sub_config(config, "vision_config", where)
    size = int(sub.get("image_size", 224)) if image_size is None else image_size
    return check_image_size(size, int(sub.get("patch_size", 32)), where)


def _vision_transformer(config, preprocessor, image_size, input_range, where):
    sub = _sub_config(config, "vision_config", where)
    dim = int(sub.get("hidden_size", 768))
    mean, std = _pixel_statistics(preprocessor)
    options = dict(
        image_size=_image_size(config, image_size, where),
        patch_size=int(sub.get("patch_size", 32)),
        channels=int(sub.get("num_channels", 3)),
        hidden_dim=dim,
        depth=int(sub.get("num_hidden_layers", 12)),
        num_heads=int(sub.get("num_attention_heads", 12)),
        mlp_ratio=int(sub.get("intermediate_size", 4 * dim)) / dim,
        layer_norm_epsilon=float(sub.get("layer_norm_eps", 1e-5)),
        activation=_activation(sub, "vision", where),
        pre_norm=True,
        patch_bias=False,
        mean=mean,
        std=std,
        input_range=input_range,
    )
    with weights_to_be_loaded():  # zeros, not random draws: every weight is assigned next
        transformer = VisionTransformer(**options, name="clip_vision_transformer")
        transformer.build()
    return transformer


def _add_vision(assign, transformer, checkpoint):
    """The vision tower's weights; position embeddings resized as transformers does."""
    p, dim = "vision_model.", transformer.hidden_dim
    kernel = checkpoint.take(p + "embeddings.patch_embedding.weight")
    assign.add(transformer.patch_embedding.kernel, kernel.transpose(2, 3, 1, 0), "patch_embedding")
    cls = checkpoint.take(p + "embeddings.class_embedding")
    assign.add(transformer.cls_token, cls.reshape(1, 1, -1), "class_embedding")
    positions = checkpoint.take(p + "embeddings.position_embedding.weight")
    assign.add(transformer.cls_position, positions[None, :1], "CLS position embedding")
    grid = source_grid(len(positions) - 1, checkpoint.where)
    table = positions[1:].reshape(*grid, positions.shape[-1])
    if tuple(grid) != tuple(transformer.grid_size):
        # transformers' interpolate_pos_encoding: bicubic, align_corners=False, no antialiasing.
        table = resize_positions(table, transformer.grid_size)
    assign.add(transformer.patch_positions, table.reshape(1, -1, dim), "patch position embeddings")
    assign.norm(transformer.pre_norm_layer, checkpoint, p + "pre_layrnorm")
    for i, block in enumerate(transformer.blocks):
        base = f"{p}encoder.layers.{i}."
        attn = base + "self_attn."
        kernels = [checkpoint.take(f"{attn}{n}_proj.weight").T for n in "qkv"]
        biases = [checkpoint.take(f"{attn}{n}_proj.bias") for n in "qkv"]
        assign.add(block.attention.qkv.kernel, np.concatenate(kernels, axis=1), attn + "q/k/v")
        assign.add(block.attention.qkv.bias, np.concatenate(biases), attn + "q/k/v bias")
        assign.dense(block.attention.projection, checkpoint, attn + "out_proj")
        assign.norm(block.norm1, checkpoint, base + "layer_norm1")
        assign.norm(block.norm2, checkpoint, base + "layer_norm2")
        assign.dense(block.mlp_in, checkpoint, base + "mlp.fc1")
        assign.dense(block.mlp_out, checkpoint, base + "mlp.fc2")
    assign.norm(transformer.norm, checkpoint, p + "post_layernorm")


def encoder_from_checkpoint(config, tensors, preprocessor, image_size=None, where=WHERE):
    """CLIP's image tower as a kerassl encoder: images -> L2-normalized projected embeddings.

    The model takes uint8 or [0, 1] images at `image_size` (default: the
    checkpoint's, 224) and normalizes them with the checkpoint's mean/std
    inside; at another size the position embeddings are resized as
    `transformers` does with `interpolate_pos_encoding=True`.

    Args:
        config: dict. The repo's config.json (`model_type` "clip").
        tensors: dict of str -> NumPy array. The checkpoint's weights.
        preprocessor: dict or None. preprocessor_config.json (image_mean, image_std).
        image_size: int, (height, width) or None.
        where: str. Names the source in error messages.

    Returns:
        keras.Model (B, H, W, 3) -> (B, projection_dim), unit-norm rows.

    Example:
    >>> encoder = kerassl.zoo.load_encoder("clip_vitb32")
    """
    checkpoint = Checkpoint(tensors, where)
    transformer = _vision_transformer(config, preprocessor, image_size, "auto", where)
    weight = checkpoint.take("visual_projection.weight")
    projection = keras.layers.Dense(weight.shape[0], use_bias=False, name="image_projection")
    inputs = keras.Input((*transformer.image_size, transformer.channels), name="clip_images")
    outputs = keras.layers.UnitNormalization(name="l2_normalize")(projection(transformer(inputs)))
    encoder = keras.Model(inputs, outputs, name="clip_image_encoder")
    assign = Assignments(where)
    _add_vision(assign, transformer, checkpoint)
    assign.add(projection.kernel, weight.T, "visual_projection.weight")
    assign.apply([encoder])
    return encoder


def _text_encoder(config, where):
    sub = _sub_config(config, "text_config", where)
    dim, vocab_size = int(sub.get("hidden_size", 512)), int(sub.get("vocab_size", 49408))
    eos = sub.get("eos_token_id", 2)
    # transformers pools at the argmax of the ids for the legacy eos id 2 (OpenAI's configs),
    # else at the first eos id: the same position when eos is the largest id, as in OpenAI's vocab.
    if eos not in (2, vocab_size - 1):
        raise ConversionError(
            f"{where}: text_config.eos_token_id is {eos}, neither 2 (OpenAI's configs) nor the "
            f"largest id {vocab_size - 1}; kerassl pools CLIP's text at the argmax of the ids."
        )
    encoder = TextEncoder(
        vocab_size,
        max_length=int(sub.get("max_position_embeddings", 77)),
        width=dim,
        depth=int(sub.get("num_hidden_layers", 12)),
        num_heads=int(sub.get("num_attention_heads", 8)),
        mlp_dim=int(sub.get("intermediate_size", 4 * dim)),
        pooling="argmax",
        causal=True,
        activation=_activation(sub, "text", where),
        layer_norm_epsilon=float(sub.get("layer_norm_eps", 1e-5)),
        pad_id=None,
        name="clip_text_encoder",
    )
    encoder.build((None, encoder.max_length))
    return encoder


def _add_text(assign, encoder, checkpoint):
    p, heads = "text_model.", encoder.num_heads
    head_dim = encoder.width // heads
    token = checkpoint.take(p + "embeddings.token_embedding.weight")
    assign.add(encoder.token_embedding.embeddings, token, "token_embedding")
    positions = checkpoint.take(p + "embeddings.position_embedding.weight")
    assign.add(encoder.position_embedding.embeddings, positions, "text position_embedding")
    for i, block in enumerate(encoder.blocks):
        base = f"{p}encoder.layers.{i}."
        attn, attention = base + "self_attn.", block.attention
        for name, dense in (("q", attention.query_dense), ("k", attention.key_dense),
                            ("v", attention.value_dense)):
            weight = checkpoint.take(f"{attn}{name}_proj.weight")
            bias = checkpoint.take(f"{attn}{name}_proj.bias")
            assign.add(dense.kernel, weight.T.reshape(-1, heads, head_dim), f"{attn}{name}_proj.weight")
            assign.add(dense.bias, bias.reshape(heads, head_dim), f"{attn}{name}_proj.bias")
        out = checkpoint.take(attn + "out_proj.weight").T.reshape(heads, head_dim, -1)
        assign.add(attention.output_dense.kernel, out, attn + "out_proj.weight")
        out_bias = checkpoint.take(attn + "out_proj.bias")
        assign.add(attention.output_dense.bias, out_bias, attn + "out_proj.bias")
        assign.norm(block.attention_norm, checkpoint, base + "layer_norm1")
        assign.norm(block.mlp_norm, checkpoint, base + "layer_norm2")
        assign.dense(block.mlp_in, checkpoint, base + "mlp.fc1")
        assign.dense(block.mlp_out, checkpoint, base + "mlp.fc2")
    assign.norm(encoder.final_norm, checkpoint, p + "final_layer_norm")


def _tokenizer(config, tokenizer_files, max_length, where):
    try:
        vocab, merges = tokenizer_files["vocab.json"], tokenizer_files["merges.txt"]
    except (KeyError, TypeError):
        raise ConversionError(
            f"{where}: a CLIP method needs the repo's tokenizer files: tokenizer_files must "
            "map 'vocab.json' and 'merges.txt' to local paths."
        ) from None
    try:
        tokenizer = CLIPTokenizer.from_files(vocab, merges, max_length=max_length)
    except (ValueError, OSError) as error:
        raise ConversionError(f"{where}: unusable tokenizer files: {error}") from error
    vocab_size = int(_sub_config(config, "text_config", where).get("vocab_size", 49408))
    if tokenizer.vocab_size != vocab_size:
        raise ConversionError(
            f"{where}: vocab.json has {tokenizer.vocab_size} tokens but the text tower has "
            f"vocab_size={vocab_size}: the tokenizer files belong to another model."
        )
    return tokenizer


def method_from_checkpoint(
    config, tensors, preprocessor, tokenizer_files=None, image_size=None, where=WHERE
):
    """A whole `kerassl.CLIP` from an OpenAI CLIP checkpoint, with OpenAI's BPE tokenizer.

    Args:
        config: dict. The repo's config.json (`model_type` "clip").
        tensors: dict of str -> NumPy array. The checkpoint's weights.
        preprocessor: dict or None. preprocessor_config.json (image_mean, image_std).
        tokenizer_files: dict with local paths of the repo's "vocab.json" and "merges.txt".
        image_size: int, (height, width) or None. Image size the method is built for
            (default: the checkpoint's); position embeddings resized as for the encoder.
        where: str. Names the source in error messages.

    Returns:
        `kerassl.CLIP`, built; `encode_image`/`encode_text` give the L2-normalized
        projected embeddings and `logit_scale()` the learned scale.

    Example:
    >>> clip = kerassl.zoo.load_method("clip_vitb32")
    >>> zs = clip.zero_shot_classifier(["cat", "dog"])
    """
    checkpoint = Checkpoint(tensors, where)
    transformer = _vision_transformer(config, preprocessor, image_size, "unit", where)
    inputs = keras.Input((*transformer.image_size, transformer.channels), name="clip_images")
    encoder = keras.Model(inputs, transformer(inputs), name="clip_vision")
    text_encoder = _text_encoder(config, where)
    image_weight = checkpoint.take("visual_projection.weight")
    text_weight = checkpoint.take("text_projection.weight")
    if image_weight.shape[0] != text_weight.shape[0]:
        raise ConversionError(
            f"{where}: the image projection has {image_weight.shape[0]} outputs and the text "
            f"projection {text_weight.shape[0]}: they must meet in one embedding space."
        )
    log_scale = float(checkpoint.take("logit_scale").reshape(()))
    scale = math.exp(log_scale)
    clip = CLIP(
        encoder,
        text_encoder,
        embed_dim=image_weight.shape[0],
        tokenizer=_tokenizer(config, tokenizer_files, text_encoder.max_length, where),
        logit_scale=scale,
        max_logit_scale=max(100.0, scale),
        name="clip",
    )
    clip.build({"images": (None, *transformer.image_size, transformer.channels)})
    assign = Assignments(where)
    _add_vision(assign, transformer, checkpoint)
    _add_text(assign, text_encoder, checkpoint)
    assign.add(clip.image_projection.kernel, image_weight.T, "visual_projection.weight")
    assign.add(clip.text_projection.kernel, text_weight.T, "text_projection.weight")
    assign.add(clip.log_logit_scale, np.float32(log_scale), "logit_scale")
    assign.apply([clip])
    return clip
