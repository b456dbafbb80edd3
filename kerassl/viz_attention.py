"""Attention-map figures for Vision Transformer encoders (meant as `kerassl.viz.attention_maps`)."""

import numpy as np

from kerassl import viz
from kerassl.images import check_numpy_images


def attention_maps(encoder, images, path, max_images=8, per_head=True):
    """Draws where the CLS token of a ViT looks, over each image.

    Row 1: the images. Row 2: the last block's CLS attention averaged over
    heads, overlaid on the image. With `per_head`, one more row per head.
    Maps are scaled to [0, 1] per image and head and drawn at the image's
    resolution (each patch a block). For a DINO-trained ViT they outline
    objects without labels (Caron et al., 2021, Fig. 1).

    Args:
        encoder: a ViT encoder from `kerassl.backbones.vit*`, e.g.
            `dino.encoder`.
        images: array (N, H, W, 1 or 3), uint8 or floats in [0, 1].
        path: str or path. The PNG to write.
        max_images: int. Columns shown.
        per_head: bool. Add one row per attention head.

    Returns:
        The path written, as a `pathlib.Path`.

    Example:
    >>> kerassl.viz.attention_maps(dino.encoder, images[:4], "attn.png")

    Reference: Caron et al., "Emerging Properties in Self-Supervised Vision
    Transformers", ICCV 2021 (https://arxiv.org/abs/2104.14294).
    """
    from kerassl.backbones import vit

    if not isinstance(max_images, int) or max_images < 1:
        raise ValueError(f"max_images must be a positive int; got {max_images!r}.")
    images = check_numpy_images(np.asarray(images), "images")[:max_images]
    maps = vit.attention_maps(encoder, images)  # (N, heads, rows, cols)
    height, width = images.shape[1:3]
    shown = viz._display_images(images)
    gray = shown.mean(axis=-1, keepdims=True)

    def overlay(attention):
        attention = attention - attention.min(axis=(1, 2), keepdims=True)
        attention = attention / np.maximum(attention.max(axis=(1, 2), keepdims=True), 1e-12)
        scale = (height // attention.shape[1], width // attention.shape[2])
        upsampled = attention.repeat(scale[0], axis=1).repeat(scale[1], axis=2)[..., None]
        heat = np.concatenate([upsampled, 0.2 * upsampled, 1.0 - upsampled], axis=-1)
        return list(np.clip(0.45 * gray + 0.55 * heat, 0.0, 1.0))

    rows, titles = [list(shown), overlay(maps.mean(axis=1))], ["image", "attention (mean)"]
    if per_head:
        for head in range(maps.shape[1]):
            rows.append(overlay(maps[:, head]))
            titles.append(f"head {head}")
    return viz.image_grid(rows, path, row_titles=titles)
