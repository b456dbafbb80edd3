"""MAE (`model_type` "vit_mae": facebook/vit-mae-base, -large, -huge) -> a kerassl encoder or a whole kerassl.MAE.

The repos hold `ViTMAEForPreTraining`: the encoder under `vit.` and the
pretraining decoder under `decoder.` (decoder_embed, mask_token,
decoder_pos_embed, the decoder layers, decoder_norm, decoder_pred).
`encoder_from_checkpoint` keeps the encoder (feature: the CLS token after the
final LayerNorm, all patches visible); `method_from_checkpoint` returns a
`kerassl.MAE` with the official decoder, so `reconstruct` shows the official
reconstructions and `fit` continues pretraining. Targets are in the
checkpoint's normalized pixels, as the official recipe trains.

Reference: He et al., "Masked Autoencoders Are Scalable Vision Learners",
CVPR 2022 (https://arxiv.org/abs/2111.06377).
"""

import numpy as np

from kerassl.backbones import vit as kvit
from kerassl.zoo.convert import common
from kerassl.zoo.convert.positions import resize_positions
from kerassl.zoo.errors import ConversionError

MODEL_TYPES = ("vit_mae",)
PREFIXES = ("vit.", "")
# transformers < 5 wrote decoder layers as decoder_layers.{i}; 5.x writes decoder_encoder.layer.{i}.
DECODER_LAYER_NAMES = ("decoder.decoder_layers.{i}.", "decoder.decoder_encoder.layer.{i}.")


def encoder_from_checkpoint(config, tensors, preprocessor, image_size=None, where="checkpoint"):
    """A kerassl encoder (CLS feature, no masking) from a transformers ViT-MAE checkpoint.

    Args: as `kerassl.zoo.convert.dino.encoder_from_checkpoint`.

    Example:
    ```python
    encoder = kerassl.zoo.convert.mae.encoder_from_checkpoint(config, tensors, preprocessor)
    ```
    """
    checkpoint = common.strip_to(tensors, "embeddings.patch_embeddings.projection.weight", PREFIXES, where)
    encoder = common.build_encoder(
        config, preprocessor, image_size, where, name="mae_vit", pooling="cls", position_embedding="sincos"
    )
    return common.fill_encoder(encoder, checkpoint)


def method_from_checkpoint(config, tensors, preprocessor, image_size=None, where="checkpoint"):
    """A `kerassl.MAE` holding the converted encoder and the official decoder.

    Args: as `encoder_from_checkpoint`. At another `image_size` the decoder's
    position table is resized on its 2-D grid like the encoder's (transformers
    resizes it along the flattened sequence instead).

    Example:
    ```python
    mae = kerassl.zoo.convert.mae.method_from_checkpoint(config, tensors, preprocessor)
    reconstructions, masks = mae.reconstruct(images)
    ```
    """
    from kerassl.methods.mae import MAE

    if not any(key.startswith("decoder.") for key in tensors):
        raise ConversionError(
            f"{where}: the checkpoint holds no MAE decoder (no 'decoder.*' weights), only an encoder; "
            "use kerassl.zoo.load_encoder."
        )
    encoder = encoder_from_checkpoint(config, tensors, preprocessor, image_size=image_size, where=where)
    transformer = kvit.find_transformer(encoder)
    decoder_dim = int(common.config_value(config, "decoder_hidden_size", where=where))
    mean, std = common.pixel_statistics(preprocessor, where)
    with kvit.weights_to_be_loaded():  # the decoder's weights are all assigned below
        method = MAE(
            encoder,
            mask_ratio=float(config.get("mask_ratio", 0.75)),
            decoder_dim=decoder_dim,
            decoder_depth=int(common.config_value(config, "decoder_num_hidden_layers", where=where)),
            decoder_num_heads=int(common.config_value(config, "decoder_num_attention_heads", where=where)),
            normalize_targets=bool(config.get("norm_pix_loss", False)),
            decoder_mlp_ratio=common.config_value(config, "decoder_intermediate_size", where=where) / decoder_dim,
            decoder_layer_norm_epsilon=float(config.get("layer_norm_eps", 1e-12)),
            decoder_positions="stored",
            pixel_mean=mean,
            pixel_std=std,
            name="mae",
        )
        method.build((None, *transformer.image_size, transformer.channels))
    checkpoint = common.Checkpoint(tensors, where)
    assign = common.Assignments(where)
    assign.dense(method.decoder_embedding, checkpoint, "decoder.decoder_embed")
    assign.add(method.mask_token, checkpoint.take("decoder.mask_token").reshape(1, 1, decoder_dim), "decoder.mask_token")
    table = checkpoint.take("decoder.decoder_pos_embed").reshape(-1, decoder_dim)
    grid = common.source_grid(len(table) - 1, where)
    patches = table[1:].reshape(*grid, decoder_dim)
    if tuple(grid) != tuple(transformer.grid_size):
        patches = resize_positions(patches, transformer.grid_size)
    table = np.concatenate([table[:1], patches.reshape(-1, decoder_dim)])[None]
    assign.add(method.decoder_position_table, table, "decoder.decoder_pos_embed")
    layer_names = next(
        (n for n in DECODER_LAYER_NAMES if checkpoint.has(n.format(i=0) + "layernorm_before.weight")),
        DECODER_LAYER_NAMES[0],
    )
    names = common.BlockNames(layer=layer_names)
    for index, block in enumerate(method.decoder_blocks):
        common.add_block(assign, block, checkpoint, names, index, qkv_bias=bool(config.get("qkv_bias", True)))
    assign.norm(method.decoder_norm, checkpoint, "decoder.decoder_norm")
    assign.dense(method.decoder_prediction, checkpoint, "decoder.decoder_pred")
    # The encoder was filled by encoder_from_checkpoint; the method's other weights are the decoder's.
    encoder_ids = {id(w) for w in encoder.weights}
    assign.check_complete([w for w in method.weights if id(w) not in encoder_ids])
    return method
