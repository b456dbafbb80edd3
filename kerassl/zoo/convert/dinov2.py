"""DINOv2 (`model_type` "dinov2", "dinov2_with_registers") -> a kerassl ViT encoder.

Layer scale on both branches, SwiGLU MLP for the giant (`use_swiglu_ffn`),
register tokens after the CLS token for the `-with-registers` repos. The
checkpoints' position embeddings are for 518 px (37 x 37 patches of 14); the
encoder is built for the preprocessor's 224 px crop by default, resized as
transformers does on every forward (bicubic; antialiased for the registers
family). The feature is the CLS token after the final LayerNorm.

References: Oquab et al., "DINOv2: Learning Robust Visual Features without
Supervision", TMLR 2024 (https://arxiv.org/abs/2304.07193); Darcet et al.,
"Vision Transformers Need Registers", ICLR 2024 (https://arxiv.org/abs/2309.16588).
"""

from kerassl.zoo.convert import common

MODEL_TYPES = ("dinov2", "dinov2_with_registers")
PREFIXES = ("", "dinov2.", "dinov2_with_registers.")


def encoder_from_checkpoint(config, tensors, preprocessor, image_size=None, where="checkpoint"):
    """A kerassl encoder (CLS feature) from a transformers DINOv2 checkpoint, with or without registers.

    Args: as `kerassl.zoo.convert.dino.encoder_from_checkpoint`.

    Example:
    ```python
    encoder = kerassl.zoo.convert.dinov2.encoder_from_checkpoint(config, tensors, preprocessor)
    ```
    """
    checkpoint = common.strip_to(tensors, "embeddings.patch_embeddings.projection.weight", PREFIXES, where)
    registers = config.get("model_type") == "dinov2_with_registers"
    encoder = common.build_encoder(
        config,
        preprocessor,
        image_size,
        where,
        name="dinov2_vit",
        pooling="cls",
        mlp_ratio=float(config.get("mlp_ratio", 4)),
        layer_scale=float(config.get("layerscale_value", 1.0)),
        mlp="swiglu" if config.get("use_swiglu_ffn") else "mlp",
        num_register_tokens=int(config.get("num_register_tokens", 0)) if registers else 0,
    )
    return common.fill_encoder(encoder, checkpoint, names=common.DINOV2_NAMES, antialias=registers)
