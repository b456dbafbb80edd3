"""Loaders for names that files of kerassl 0.1.0 hold and no class of this release does.

In 0.1.0, `kerassl.vit.TransformerBlock` and `kerassl.text.TransformerBlock`
were both registered as `kerassl>TransformerBlock` (the last import won, so a
file with the ViT block did not load back). They are now `kerassl>ViTTransformerBlock`
and `kerassl>TextTransformerBlock`; a 0.1.0 file that says
`kerassl>TransformerBlock` loads whichever block its config describes.
"""

from kerassl.backbones.vit import TransformerBlock as ViTTransformerBlock
from kerassl.registry import register
from kerassl.text import TransformerBlock as TextTransformerBlock


@register(name="TransformerBlock", legacy=True)
class LegacyTransformerBlock:
    """Reads a 0.1.0 `kerassl>TransformerBlock` config as the block it was written by."""

    def get_config(self):  # never instantiated; Keras asks that registered classes have one
        raise NotImplementedError

    @classmethod
    def from_config(cls, config):
        if "mlp_dim" in config:
            return TextTransformerBlock.from_config(config)
        if "dim" in config:
            return ViTTransformerBlock.from_config(config)
        raise ValueError(
            "This file holds a `kerassl>TransformerBlock` written by kerassl 0.1.0 whose "
            f"config matches neither the text block (mlp_dim) nor the ViT block (dim): "
            f"{sorted(config)}. Load it with kerassl 0.1.0 and save it again."
        )
