"""I-JEPA (`model_type` "ijepa": facebook/ijepa_vith14_1k, ...) -> a kerassl ViT encoder.

I-JEPA's context encoder has no CLS token; its feature is the mean of the
patch tokens after the final LayerNorm, what the paper's linear probes use.

Reference: Assran et al., "Self-Supervised Learning from Images with a
Joint-Embedding Predictive Architecture", CVPR 2023
(https://arxiv.org/abs/2301.08243).
"""

from kerassl.zoo.convert import common

MODEL_TYPES = ("ijepa",)
PREFIXES = ("", "ijepa.", "vit.")


def encoder_from_checkpoint(config, tensors, preprocessor, image_size=None, where="checkpoint"):
    """A kerassl encoder (mean of patch tokens) from a transformers I-JEPA checkpoint.

    Args: as `kerassl.zoo.convert.dino.encoder_from_checkpoint`.

    Example:
    ```python
    encoder = kerassl.zoo.convert.ijepa.encoder_from_checkpoint(config, tensors, preprocessor)
    ```
    """
    checkpoint = common.strip_to(tensors, "embeddings.patch_embeddings.projection.weight", PREFIXES, where)
    encoder = common.build_encoder(
        config, preprocessor, image_size, where, name="ijepa_vit", pooling="mean", class_token=False
    )
    return common.fill_encoder(encoder, checkpoint)
