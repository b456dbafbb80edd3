"""MAE: masked autoencoders are scalable vision learners."""

import keras
import numpy as np
from keras import ops

from kerassl import augment
from kerassl.backbones import vit
from kerassl.losses import reconstruction
from kerassl.methods.base import SSLMethod, split_inputs
from kerassl.registry import register

DECODER_POSITIONS = ("sincos", "stored")
OFFICIAL_DECODER_DEFAULTS = {
    "decoder_mlp_ratio": 4.0,
    "decoder_layer_norm_epsilon": 1e-6,
    "decoder_positions": "sincos",
    "pixel_mean": None,
    "pixel_std": None,
}


def random_masking(batch_size, num_patches, num_masked, seed, noise=None):
    """Per-image random patch masks: the argsort of uniform noise.

    Args:
        batch_size: int or scalar tensor.
        num_patches: int. N.
        num_masked: int. Patches hidden in every image (exactly).
        seed: a `keras.random.SeedGenerator` or int.
        noise: tensor (B, N) or None. Given noise instead of fresh uniform
            noise (reproduces another implementation's masks, e.g.
            transformers' `ViTMAEForPreTraining(noise=...)`).

    Returns:
        (keep_indices (B, N - num_masked) int32, restore_indices (B, N) int32,
        mask (B, N) float32 with 1 on hidden patches). `restore_indices[i]` is
        the position of patch i in the shuffled order (kept patches first).

    Example:
    >>> keep, restore, mask = kerassl.methods.mae.random_masking(8, 64, 48, seed=0)
    """
    if noise is None:
        noise = keras.random.uniform((batch_size, num_patches), seed=seed)
    shuffle = ops.cast(ops.argsort(noise, axis=1), "int32")
    restore = ops.cast(ops.argsort(shuffle, axis=1), "int32")
    num_keep = num_patches - num_masked
    mask = ops.cast(restore >= num_keep, "float32")
    return shuffle[:, :num_keep], restore, mask


@register
class MAE(SSLMethod):
    """Masked autoencoder: rebuild the hidden patches of an image from the rest.

    Each image is cut into patches and a random `mask_ratio` of them (the same
    count in every image, a different choice per image) is hidden. The ViT
    encoder sees only the visible patches, which makes pretraining about 3x
    cheaper at 75 % masking; a light Transformer decoder gets the encoded
    visible tokens plus a shared learned mask token at every hidden position
    and predicts their pixels. The loss is the mean squared error on hidden
    patches only, by default against per-patch normalized pixels.

    `model.predict(images)` returns the encoder's features on the whole image
    (no masking). `reconstruct(images)` returns reconstructions and masks;
    `kerassl.viz.mae_reconstructions(mae, images, path)` draws them.

    Views: as in the paper, each training image is first randomly cropped
    (area 0.2-1, `kerassl.augment.RandomResizedCrop`) and flipped, inside the
    step; pass `augmenter=keras.layers.Identity()` to train on the images as
    given.

    Args:
        encoder: a ViT encoder from `kerassl.backbones.vit_tiny`, `vit_small`,
            `vit_base` or `vit` (MAE needs its patch tokens).
        mask_ratio: float in (0, 1). Fraction of patches hidden; the count
            per image is round(mask_ratio * num_patches), kept in [1, N - 1].
        decoder_dim: int. Token size of the decoder.
        decoder_depth: int. Decoder Transformer blocks.
        decoder_num_heads: int.
        normalize_targets: bool. MAE's norm_pix_loss.
        augmenter: Keras layer or None. Makes the training view with
            `training=True`; None: random resized crop (scale 0.2-1) and
            horizontal flip, the paper's recipe.
        num_classes: int or None. Online linear probe on the pooled visible
            tokens.
        seed: int or None. Seeds the masks and the default augmenter.
        decoder_mlp_ratio: float. Decoder MLP width relative to `decoder_dim`.
        decoder_layer_norm_epsilon: float.
        decoder_positions: str. "sincos": the fixed table computed on the fly;
            "stored": a frozen (1, 1 + N, decoder_dim) weight, CLS row
            included, initialized to sin-cos and overwritten by converted
            checkpoints (the official MAE decoder's own table).
        pixel_mean, pixel_std: 3 floats each, or None. Targets (and
            reconstructions) in normalized pixels (x - mean) / std, as the
            official MAE trains; None: [0, 1] pixels.

    Example:
    ```python
    vit = kerassl.backbones.vit_tiny(image_size=32, patch_size=4)
    mae = kerassl.MAE(vit, mask_ratio=0.75)
    mae.compile(optimizer=keras.optimizers.AdamW(1.5e-4, weight_decay=0.05))
    mae.fit(images, epochs=100, batch_size=256)
    recon, mask = mae.reconstruct(images[:8])
    kerassl.viz.reconstructions(images[:8], recon, "mae.png", masks=mask)
    ```

    Reference: He et al., "Masked Autoencoders Are Scalable Vision Learners",
    CVPR 2022 (https://arxiv.org/abs/2111.06377).
    """

    nested_config_keys = ("encoder", "augmenter")

    def __init__(
        self,
        encoder,
        mask_ratio=0.75,
        decoder_dim=128,
        decoder_depth=2,
        decoder_num_heads=4,
        normalize_targets=True,
        augmenter=None,
        num_classes=None,
        seed=None,
        decoder_mlp_ratio=4.0,
        decoder_layer_norm_epsilon=1e-6,
        decoder_positions="sincos",
        pixel_mean=None,
        pixel_std=None,
        **kwargs,
    ):
        super().__init__(encoder, num_classes=num_classes, seed=seed, **kwargs)
        if decoder_positions not in DECODER_POSITIONS:
            raise ValueError(f"decoder_positions must be one of {DECODER_POSITIONS}; got {decoder_positions!r}.")
        if (pixel_mean is None) != (pixel_std is None):
            raise ValueError("give both pixel_mean and pixel_std, or neither.")
        self.decoder_mlp_ratio = float(decoder_mlp_ratio)
        self.decoder_layer_norm_epsilon = float(decoder_layer_norm_epsilon)
        self.decoder_positions = decoder_positions
        self.pixel_mean = None if pixel_mean is None else [float(v) for v in pixel_mean]
        self.pixel_std = None if pixel_std is None else [float(v) for v in pixel_std]
        transformer = vit.find_transformer(encoder, "MAE")
        if not 0.0 < float(mask_ratio) < 1.0:
            raise ValueError(f"mask_ratio must be strictly between 0 and 1; got {mask_ratio}.")
        self.mask_ratio = float(mask_ratio)
        self.decoder_dim = int(decoder_dim)
        self.decoder_depth = int(decoder_depth)
        self.decoder_num_heads = int(decoder_num_heads)
        if self.decoder_dim % 4:
            raise ValueError(f"decoder_dim must be a multiple of 4 (sin-cos positions); got {decoder_dim}.")
        self.normalize_targets = bool(normalize_targets)
        self.augmenter = augmenter
        self.seed_generator = keras.random.SeedGenerator(seed)
        init = keras.initializers.TruncatedNormal(stddev=0.02)
        self.decoder_embedding = keras.layers.Dense(
            self.decoder_dim, kernel_initializer=init, name="decoder_embedding"
        )
        self.decoder_blocks = [
            vit.TransformerBlock(
                self.decoder_dim,
                self.decoder_num_heads,
                mlp_ratio=self.decoder_mlp_ratio,
                layer_norm_epsilon=self.decoder_layer_norm_epsilon,
                name=f"decoder_block_{i}",
            )
            for i in range(self.decoder_depth)
        ]
        self.decoder_norm = keras.layers.LayerNormalization(
            epsilon=self.decoder_layer_norm_epsilon, name="decoder_norm"
        )
        self.decoder_prediction = keras.layers.Dense(
            transformer.patch_size**2 * transformer.channels,
            kernel_initializer=init,
            name="decoder_prediction",
        )
        self.reconstruction_loss_tracker = keras.metrics.Mean(name="reconstruction_loss")

    @property
    def transformer(self):
        """The encoder's `VisionTransformer` layer."""
        return vit.find_transformer(self.encoder, "MAE")

    def build(self, input_shape):
        image_shape = self.image_shape(input_shape)
        if self.augmenter is None:
            size = tuple(image_shape[1:3])
            if None in size:
                size = tuple(self.encoder.input_shape[1:3])
            self.augmenter = augment.simclr_augmenter(
                size, image_shape[-1], scale=(0.2, 1.0), jitter_strength=0.0,
                grayscale_probability=0.0, blur_probability=0.0, seed=self.seed, name="augmenter",
            )
        if not self.augmenter.built:
            self.augmenter.build(image_shape)
        feature_dim = self.build_encoder(image_shape)
        hidden_dim = self.transformer.hidden_dim
        self.decoder_embedding.build((None, None, hidden_dim))
        self.mask_token = self.add_weight(
            shape=(1, 1, self.decoder_dim),
            initializer=keras.initializers.TruncatedNormal(stddev=0.02),
            name="mask_token",
        )
        if self.decoder_positions == "stored":
            grid = self.transformer.grid_size
            table = np.concatenate(
                [np.zeros((1, self.decoder_dim), "float32"), vit.sincos_position_embedding(grid, self.decoder_dim)]
            )[None]
            self.decoder_position_table = self.add_weight(
                shape=table.shape,
                initializer=keras.initializers.Constant(table),
                trainable=False,
                name="decoder_position_table",
            )
        for block in self.decoder_blocks:
            block.build((None, None, self.decoder_dim))
        self.decoder_norm.build((None, None, self.decoder_dim))
        self.decoder_prediction.build((None, None, self.decoder_dim))
        self.build_probe(feature_dim)
        self.built = True

    def num_masked(self, num_patches):
        """Patches hidden per image for a grid of `num_patches`."""
        return int(min(max(round(self.mask_ratio * num_patches), 1), num_patches - 1))

    def decode(self, tokens, restore_indices, grid):
        """Decoder pixels (B, N, p*p*C) from encoded [CLS, visible] tokens.

        Args:
            tokens: tensor (B, 1 + K, D) from the encoder, CLS first.
            restore_indices: int tensor (B, N) from `random_masking`.
            grid: (rows, cols) of the patch grid, rows * cols = N.
        """
        num_patches = restore_indices.shape[1]
        x = self.decoder_embedding(tokens)
        cls, visible = x[:, :1], x[:, 1:]
        hidden_count = num_patches - visible.shape[1]
        mask_tokens = ops.zeros_like(visible[:, :1]) + ops.cast(self.mask_token, x.dtype)
        shuffled = ops.concatenate([visible, ops.repeat(mask_tokens, hidden_count, axis=1)], axis=1)
        patches = ops.take_along_axis(shuffled, ops.expand_dims(restore_indices, -1), axis=1)
        if self.decoder_positions == "stored":
            table = ops.cast(self.decoder_position_table, patches.dtype)
            cls_position, positions = table[:, :1], table[:, 1:]
            if tuple(grid) != tuple(self.transformer.grid_size):
                positions = vit.interpolate_position_embedding(positions, self.transformer.grid_size, grid)
            cls, patches = cls + cls_position, patches + positions
        else:
            positions = vit.sincos_position_embedding(grid, self.decoder_dim)[None]
            patches = patches + ops.convert_to_tensor(positions, dtype=patches.dtype)
        x = ops.concatenate([cls, patches], axis=1)
        for block in self.decoder_blocks:
            x = block(x)
        return self.decoder_prediction(self.decoder_norm(x))[:, 1:]

    def target_pixels(self, images):
        """Images in the units the decoder predicts: [0, 1], or (x - pixel_mean) / pixel_std."""
        if self.pixel_mean is None:
            return images
        mean = ops.convert_to_tensor(np.asarray(self.pixel_mean, "float32"), images.dtype)
        std = ops.convert_to_tensor(np.asarray(self.pixel_std, "float32"), images.dtype)
        return (images - mean) / std

    def masked_forward(self, images, training, noise=None):
        """Masks, encodes the visible patches and decodes all of them."""
        transformer = self.transformer
        patch = transformer.patch_size
        grid = (images.shape[1] // patch, images.shape[2] // patch)
        targets = vit.patchify(self.target_pixels(images), patch)
        num_patches = targets.shape[1]
        keep, restore, mask = random_masking(
            ops.shape(images)[0], num_patches, self.num_masked(num_patches), self.seed_generator, noise=noise
        )
        tokens = transformer.encode(images, training=training, keep_indices=keep)
        return {
            "features": transformer.pool(tokens),
            "predictions": self.decode(tokens, restore, grid),
            "targets": targets,
            "mask": mask,
        }

    def call(self, inputs, training=False):
        if not training:
            return super().call(inputs)
        images, _ = split_inputs(inputs)
        views = self.augmenter(self.prepare_images(images), training=True)
        return self.masked_forward(views, training=self.layers_training)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        y_pred, labels = self.training_outputs(x, y, y_pred, training)
        loss = reconstruction.masked_patch_loss(
            y_pred["predictions"], y_pred["targets"], y_pred["mask"], self.normalize_targets
        )
        self.reconstruction_loss_tracker.update_state(loss)
        return loss + self.online_probe_loss(labels, y_pred["features"])

    def reconstruct(self, images, noise=None):
        """Masks images at random and reconstructs them (inference mode).

        Args:
            images: array (B, H, W, C), uint8 or floats in [0, 1].
            noise: array (B, N) or None. Noise whose argsort picks the masks
                (as transformers' MAE takes it); None: random.

        Returns:
            (reconstructions, masks): NumPy float32 images (B, H, W, C) in
            [0, 1], the decoder's pixels on hidden patches and the input on
            visible ones (as in the paper's figures), and (B, N) masks with 1
            on hidden patches (row-major), which `kerassl.viz.reconstructions`
            accepts.

        Example:
        >>> recon, mask = mae.reconstruct(images[:8])
        """
        images = self.prepare_images(ops.convert_to_tensor(images))
        if not self.built:
            self.build(tuple(images.shape))
        if noise is not None:
            noise = ops.convert_to_tensor(np.asarray(noise, "float32"))
        out = self.masked_forward(images, training=False, noise=noise)
        predictions = ops.cast(out["predictions"], "float32")
        targets = ops.cast(out["targets"], "float32")
        if self.normalize_targets:
            # Predictions are in per-patch normalized units: undo with the true stats.
            mean = ops.mean(targets, axis=-1, keepdims=True)
            std = ops.sqrt(ops.var(targets, axis=-1, keepdims=True) + 1e-6)
            predictions = predictions * std + mean
        mask = out["mask"]
        patches = ops.where(ops.expand_dims(mask, -1) > 0, predictions, targets)
        patch = self.transformer.patch_size
        grid = (images.shape[1] // patch, images.shape[2] // patch)
        recon = vit.unpatchify(patches, patch, grid, images.shape[-1])
        if self.pixel_mean is not None:
            recon = recon * np.asarray(self.pixel_std, "float32") + np.asarray(self.pixel_mean, "float32")
        recon = np.clip(ops.convert_to_numpy(recon), 0.0, 1.0).astype("float32")
        return recon, ops.convert_to_numpy(mask).astype("float32")

    def get_config(self):
        config = super().get_config()
        config.update(
            mask_ratio=self.mask_ratio,
            decoder_dim=self.decoder_dim,
            decoder_depth=self.decoder_depth,
            decoder_num_heads=self.decoder_num_heads,
            normalize_targets=self.normalize_targets,
            augmenter=keras.saving.serialize_keras_object(self.augmenter),
        )
        # Only options away from their defaults, so older configs stay as they were.
        for key, default in OFFICIAL_DECODER_DEFAULTS.items():
            if getattr(self, key) != default:
                config[key] = getattr(self, key)
        return config
