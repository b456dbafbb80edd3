"""DINO v1 (`model_type` "vit": facebook/dino-vits16, -vits8, -vitb16, -vitb8) -> a kerassl ViT encoder.

The feature is the CLS token after the final LayerNorm, what the paper's kNN
and linear evaluations use. The repos' ViT pooler (dense + tanh, untrained by
DINO) is not converted.

Reference: Caron et al., "Emerging Properties in Self-Supervised Vision
Transformers", ICCV 2021 (https://arxiv.org/abs/2104.14294).
"""

from kerassl.zoo.convert import common

MODEL_TYPES = ("vit",)
PREFIXES = ("", "vit.")


def encoder_from_checkpoint(config, tensors, preprocessor, image_size=None, where="checkpoint"):
    """A kerassl encoder (images in [0, 1] or 0-255 -> CLS feature) from a transformers ViT checkpoint.

    Args:
        config: dict. The repo's config.json.
        tensors: dict {name: NumPy array}. The checkpoint (`read_checkpoint`).
        preprocessor: dict or None. The repo's preprocessor_config.json (mean/std, crop size).
        image_size: int, (height, width) or None. None: the preprocessor's crop
            size; another size interpolates the position embeddings (bicubic,
            as transformers' `interpolate_pos_encoding=True`).
        where: str. Names the source in error messages.

    Example:
    ```python
    encoder = kerassl.zoo.convert.dino.encoder_from_checkpoint(config, tensors, preprocessor)
    ```
    """
    checkpoint = common.strip_to(tensors, "embeddings.patch_embeddings.projection.weight", PREFIXES, where)
    encoder = common.build_encoder(config, preprocessor, image_size, where, name="dino_vit", pooling="cls")
    return common.fill_encoder(encoder, checkpoint)
