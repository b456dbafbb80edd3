"""MSN (`model_type` "vit_msn": facebook/vit-msn-small, -base, -large, ...) -> a kerassl ViT encoder.

Same layout as ViT, layer-norm epsilon 1e-6; the feature is the CLS token
after the final LayerNorm (the paper's linear-probe input).

Reference: Assran et al., "Masked Siamese Networks for Label-Efficient
Learning", ECCV 2022 (https://arxiv.org/abs/2204.07141).
"""

from kerassl.zoo.convert import common

MODEL_TYPES = ("vit_msn",)
PREFIXES = ("", "vit.")


def encoder_from_checkpoint(config, tensors, preprocessor, image_size=None, where="checkpoint"):
    """A kerassl encoder (CLS feature) from a transformers ViT-MSN checkpoint.

    Args: as `kerassl.zoo.convert.dino.encoder_from_checkpoint`.

    Example:
    ```python
    encoder = kerassl.zoo.convert.msn.encoder_from_checkpoint(config, tensors, preprocessor)
    ```
    """
    checkpoint = common.strip_to(tensors, "embeddings.patch_embeddings.projection.weight", PREFIXES, where)
    encoder = common.build_encoder(config, preprocessor, image_size, where, name="msn_vit", pooling="cls")
    return common.fill_encoder(encoder, checkpoint)
