"""Views for self-supervised learning, made on the accelerator inside the step.

Every layer here is written with `keras.ops` and `keras.random` only, draws a
different transformation for every image in the batch, and traces under XLA
(`jit_compile=True`) on TensorFlow and JAX, so augmentation compiles into the
same program as the forward and backward pass.

Keras core 3.15 has no RandomResizedCrop, no RandomApply and its crop/zoom
layers declare `supports_jit=False`; this module fills those gaps.
"""

import math

import keras
from keras import ops

# interpolation_matrix and crop_and_resize were kerassl.augment's in 0.1.0.
from kerassl.images import check_image_shape, crop_and_resize, interpolation_matrix  # noqa: F401
from kerassl.registry import register

# ITU-R BT.601 luma, as torchvision's rgb_to_grayscale.
LUMA = (0.299, 0.587, 0.114)


def _pair(value, name):
    if isinstance(value, int):
        value = (value, value)
    value = tuple(value)
    if len(value) != 2:
        raise ValueError(f"{name} must be an int or a (height, width) pair; got {value}.")
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value):
        raise ValueError(f"{name} must be positive whole pixel counts; got {value}.")
    return value


def _check_range(value, name, low=None, high=None):
    value = tuple(float(v) for v in value)
    if len(value) != 2 or value[0] > value[1]:
        raise ValueError(f"{name} must be a (min, max) pair with min <= max; got {value}.")
    if low is not None and value[0] < low or high is not None and value[1] > high:
        raise ValueError(f"{name} must lie within [{low}, {high}]; got {value}.")
    return value


@register
class RandomResizedCrop(keras.layers.Layer):
    """Crops a random area of each image and resizes it to a fixed size.

    For every image, a box covering a fraction `scale` of the image area with
    aspect ratio (width / height) drawn log-uniformly from `ratio` is placed
    uniformly at random and resized bilinearly to `size`. The crop is the most
    important augmentation of contrastive learning (SimCLR, Table 3). Boxes too
    large for the image are shrunk to fit along the overflowing side, a
    vectorized stand-in for torchvision's rejection sampling.

    Outside training the whole image is resized to `size`.

    Args:
        size: int or (height, width). Output size.
        scale: (min, max) fraction of the image area the crop covers.
        ratio: (min, max) aspect ratio of the crop.
        antialias: bool. Smooth when a crop is shrunk (large images, small
            outputs as in DINO's local crops).
        seed: int or None. Seed of the layer's `keras.random.SeedGenerator`.

    Example:
    ```python
    crop = kerassl.augment.RandomResizedCrop(32, scale=(0.2, 1.0), seed=0)
    views = crop(images, training=True)  # (batch, 32, 32, channels)
    ```

    Reference: Szegedy et al., "Going deeper with convolutions", 2015;
    Chen et al., "A Simple Framework for Contrastive Learning of Visual
    Representations", 2020 (https://arxiv.org/abs/2002.05709).
    """

    def __init__(
        self,
        size,
        scale=(0.08, 1.0),
        ratio=(3.0 / 4.0, 4.0 / 3.0),
        antialias=True,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.size = _pair(size, "size")
        self.scale = _check_range(scale, "scale", 0.0, 1.0)
        if self.scale[0] <= 0:
            raise ValueError(f"scale must be positive; got {self.scale}.")
        self.ratio = _check_range(ratio, "ratio", 1e-3, 1e3)
        self.antialias = antialias
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def sample_boxes(self, batch_size, height, width, dtype="float32"):
        """Draws (top, left, box_height, box_width) per image, relative units."""
        area = keras.random.uniform(
            (batch_size,), self.scale[0], self.scale[1], dtype, seed=self.seed_generator
        )
        log_ratio = keras.random.uniform(
            (batch_size,),
            math.log(self.ratio[0]),
            math.log(self.ratio[1]),
            dtype,
            seed=self.seed_generator,
        )
        # The aspect ratio is in pixels; convert it to relative units.
        pixel_ratio = ops.exp(log_ratio) * (height / width)
        box_w = ops.minimum(ops.sqrt(area * pixel_ratio), 1.0)
        box_h = ops.minimum(ops.sqrt(area / pixel_ratio), 1.0)
        offsets = keras.random.uniform((batch_size, 2), dtype=dtype, seed=self.seed_generator)
        top = offsets[:, 0] * (1.0 - box_h)
        left = offsets[:, 1] * (1.0 - box_w)
        return ops.stack([top, left, box_h, box_w], axis=1)

    def call(self, images, training=True):
        check_image_shape(images.shape, "RandomResizedCrop input")
        batch_size = ops.shape(images)[0]
        height, width = images.shape[1], images.shape[2]
        dtype = keras.backend.standardize_dtype(images.dtype)
        if training:
            boxes = self.sample_boxes(batch_size, height, width, dtype)
        else:
            boxes = ops.tile(ops.array([[0.0, 0.0, 1.0, 1.0]], dtype=dtype), (batch_size, 1))
        return crop_and_resize(images, boxes, self.size, self.antialias)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *self.size, input_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update(
            size=self.size,
            scale=self.scale,
            ratio=self.ratio,
            antialias=self.antialias,
            seed=self.seed,
        )
        return config


def _grayscale(images):
    weights = ops.convert_to_tensor(LUMA, dtype=images.dtype)
    return ops.sum(images * weights, axis=-1, keepdims=True)


def _yiq_hue_rotation(angle):
    """Per-sample 3x3 RGB matrices rotating hue by `angle` in YIQ space."""
    rgb_to_yiq = ops.convert_to_tensor(
        [[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]],
        dtype=angle.dtype,
    )
    yiq_to_rgb = ops.convert_to_tensor(
        [[1.0, 0.956, 0.621], [1.0, -0.272, -0.647], [1.0, -1.106, 1.703]],
        dtype=angle.dtype,
    )
    cos, sin = ops.cos(angle), ops.sin(angle)
    one, zero = ops.ones_like(angle), ops.zeros_like(angle)
    rotation = ops.stack(
        [
            ops.stack([one, zero, zero], -1),
            ops.stack([zero, cos, -sin], -1),
            ops.stack([zero, sin, cos], -1),
        ],
        axis=1,
    )
    return ops.einsum("ij,bjk,kl->bil", yiq_to_rgb, rotation, rgb_to_yiq)


@register
class ColorJitter(keras.layers.Layer):
    """Randomly changes brightness, contrast, saturation and hue of each image.

    Factors follow torchvision's `ColorJitter`, the convention of every SSL
    paper and of lightly: brightness, contrast and saturation multiply by a
    factor drawn from `[1 - x, 1 + x]`; hue shifts by a fraction of the colour
    circle drawn from `[-hue, hue]`. Hue is rotated in YIQ space (a 3x3 matrix
    per image) rather than through HSV: the same effect up to small differences
    in saturated colours, and a matrix product instead of the branchy HSV
    conversion that ran single-threaded under XLA on CPUs. Values are clipped to
    [0, 1] after each step. Grayscale images only get brightness and contrast.

    Args:
        brightness: float >= 0.
        contrast: float >= 0.
        saturation: float >= 0.
        hue: float in [0, 0.5].
        seed: int or None.

    Example:
    ```python
    jitter = kerassl.augment.ColorJitter(0.4, 0.4, 0.4, 0.1, seed=0)
    images = jitter(images, training=True)
    ```

    Reference: Chen et al., SimCLR, 2020, Appendix A
    (https://arxiv.org/abs/2002.05709).
    """

    def __init__(self, brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1, seed=None, **kwargs):
        super().__init__(**kwargs)
        for name, value in (("brightness", brightness), ("contrast", contrast), ("saturation", saturation)):
            if value < 0:
                raise ValueError(f"{name} must be >= 0; got {value}.")
        if not 0 <= hue <= 0.5:
            raise ValueError(f"hue must be in [0, 0.5]; got {hue}.")
        self.brightness = float(brightness)
        self.contrast = float(contrast)
        self.saturation = float(saturation)
        self.hue = float(hue)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def _factor(self, batch_size, spread, dtype):
        factor = keras.random.uniform(
            (batch_size, 1, 1, 1), 1.0 - spread, 1.0 + spread, dtype, seed=self.seed_generator
        )
        return ops.maximum(factor, 0.0)

    def call(self, images, training=True):
        if not training:
            return images
        dtype = keras.backend.standardize_dtype(images.dtype)
        batch_size = ops.shape(images)[0]
        rgb = images.shape[-1] == 3
        if self.brightness:
            images = ops.clip(images * self._factor(batch_size, self.brightness, dtype), 0.0, 1.0)
        if self.contrast:
            gray = _grayscale(images) if rgb else images
            mean = ops.mean(gray, axis=(1, 2, 3), keepdims=True)
            factor = self._factor(batch_size, self.contrast, dtype)
            images = ops.clip(mean + factor * (images - mean), 0.0, 1.0)
        if rgb and self.saturation:
            gray = _grayscale(images)
            factor = self._factor(batch_size, self.saturation, dtype)
            images = ops.clip(gray + factor * (images - gray), 0.0, 1.0)
        if rgb and self.hue:
            shift = keras.random.uniform(
                (batch_size,), -self.hue, self.hue, dtype, seed=self.seed_generator
            )
            matrices = _yiq_hue_rotation(2.0 * math.pi * shift)
            images = ops.clip(ops.einsum("bij,bhwj->bhwi", matrices, images), 0.0, 1.0)
        return images

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            brightness=self.brightness,
            contrast=self.contrast,
            saturation=self.saturation,
            hue=self.hue,
            seed=self.seed,
        )
        return config


@register
class RandomApply(keras.layers.Layer):
    """Applies a layer to a random subset of the batch, each image with probability p.

    The wrapped layer runs on the whole batch and a per-image coin picks its
    output or the input, which keeps shapes static for XLA.

    Args:
        layer: a Keras layer mapping images to images of the same shape.
        probability: float in [0, 1].
        seed: int or None.

    Example:
    ```python
    jitter = kerassl.augment.RandomApply(kerassl.augment.ColorJitter(), 0.8)
    ```
    """

    def __init__(self, layer, probability=0.5, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= probability <= 1.0:
            raise ValueError(f"probability must be in [0, 1]; got {probability}.")
        self.layer = layer
        self.probability = float(probability)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape):
        if not self.layer.built:
            self.layer.build(input_shape)
        self.built = True

    def call(self, images, training=True):
        if not training or self.probability == 0.0:
            return images
        changed = self.layer(images, training=True)
        if self.probability == 1.0:
            return changed
        batch_size = ops.shape(images)[0]
        coin = keras.random.uniform((batch_size, 1, 1, 1), seed=self.seed_generator)
        return ops.where(coin < self.probability, changed, images)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            layer=keras.saving.serialize_keras_object(self.layer),
            probability=self.probability,
            seed=self.seed,
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["layer"] = keras.saving.deserialize_keras_object(config["layer"])
        return cls(**config)


@register
class RandomGrayscale(keras.layers.Layer):
    """Turns each RGB image gray with probability p, keeping 3 channels.

    Keras core's `RandomGrayscale` does the same; this one uses torchvision's
    luma weights, matching lightly, and passes 1-channel images through.

    Args:
        probability: float in [0, 1].
        seed: int or None.
    """

    def __init__(self, probability=0.2, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= probability <= 1.0:
            raise ValueError(f"probability must be in [0, 1]; got {probability}.")
        self.probability = float(probability)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=True):
        if not training or images.shape[-1] != 3 or self.probability == 0.0:
            return images
        gray = ops.broadcast_to(_grayscale(images), ops.shape(images))
        coin = keras.random.uniform((ops.shape(images)[0], 1, 1, 1), seed=self.seed_generator)
        return ops.where(coin < self.probability, gray, images)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(probability=self.probability, seed=self.seed)
        return config


def _child_seed(seed, offset):
    return None if seed is None else seed + offset


def simclr_augmenter(
    image_size,
    channels=3,
    scale=(0.08, 1.0),
    jitter_strength="auto",
    jitter_probability=0.8,
    grayscale_probability=0.2,
    flip=True,
    blur_probability="auto",
    seed=None,
    name="simclr_augmenter",
):
    """The SimCLR view pipeline as a Keras `Sequential` that runs inside the step.

    Random resized crop, horizontal flip, colour jitter (p=0.8), grayscale
    (p=0.2) and, for images of 64 px and more, Gaussian blur (p=0.5), as in the
    SimCLR paper. The colour strength defaults to 1.0 for large images and to
    0.5 for small ones, following the paper's CIFAR-10 setting and lightly's
    CIFAR-10 benchmark; blur defaults off below 64 px, where a blur kernel
    would wipe out most of the image.

    Args:
        image_size: int or (height, width). Size of the views.
        channels: int. 1 (grayscale: no colour steps) or 3.
        scale: (min, max) crop area fraction.
        jitter_strength: float or "auto". Colour strength s: brightness,
            contrast and saturation 0.8 s, hue 0.2 s.
        jitter_probability: float. Probability of colour jitter.
        grayscale_probability: float. Probability of turning gray.
        flip: bool. Random horizontal flips.
        blur_probability: float or "auto". Probability of Gaussian blur
            (kernel about a tenth of the image, sigma in [0.1, 2]).
        seed: int or None. Seeds every layer (layer i gets seed + i).
        name: str.

    Returns:
        A `keras.Sequential` called as `augmenter(images, training=True)` on
        float images in [0, 1].

    Example:
    ```python
    augmenter = kerassl.augment.simclr_augmenter(32, seed=0)
    view_a = augmenter(images, training=True)
    view_b = augmenter(images, training=True)
    ```

    Reference: Chen et al., SimCLR, 2020 (https://arxiv.org/abs/2002.05709).
    """
    height, width = _pair(image_size, "image_size")
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3; got {channels}.")
    large = min(height, width) >= 64
    if jitter_strength == "auto":
        jitter_strength = 1.0 if large else 0.5
    if blur_probability == "auto":
        blur_probability = 0.5 if large else 0.0
    layers = [RandomResizedCrop((height, width), scale=scale, seed=_child_seed(seed, 0))]
    if flip:
        layers.append(keras.layers.RandomFlip("horizontal", seed=_child_seed(seed, 1)))
    if jitter_strength and jitter_probability:
        s = float(jitter_strength)
        jitter = ColorJitter(0.8 * s, 0.8 * s, 0.8 * s, 0.2 * s, seed=_child_seed(seed, 2))
        layers.append(RandomApply(jitter, jitter_probability, seed=_child_seed(seed, 3)))
    if channels == 3 and grayscale_probability:
        layers.append(RandomGrayscale(grayscale_probability, seed=_child_seed(seed, 4)))
    if blur_probability:
        kernel = max(3, int(0.1 * min(height, width)) // 2 * 2 + 1)
        layers.append(
            keras.layers.RandomGaussianBlur(
                factor=(blur_probability, blur_probability),
                kernel_size=kernel,
                sigma=(0.1, 2.0),
                value_range=(0.0, 1.0),
                seed=_child_seed(seed, 5),
            )
        )
    return keras.Sequential(layers, name=name)



@register
class RandomSolarize(keras.layers.Layer):
    """Solarizes each image with probability p: pixels at or above `threshold` become 1 - x.

    As torchvision's `RandomSolarize` and BYOL's solarization on [0, 1] images.

    Args:
        probability: float in [0, 1].
        threshold: float in [0, 1].
        seed: int or None.

    Example:
    ```python
    solarize = kerassl.augment.RandomSolarize(0.2, seed=0)
    images = solarize(images, training=True)
    ```

    Reference: Grill et al., BYOL, 2020, Table 6 (https://arxiv.org/abs/2006.07733).
    """

    def __init__(self, probability=0.2, threshold=0.5, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= probability <= 1.0:
            raise ValueError(f"probability must be in [0, 1]; got {probability}.")
        self.probability = float(probability)
        self.threshold = float(threshold)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=True):
        if not training or self.probability == 0.0:
            return images
        solarized = ops.where(images >= self.threshold, 1.0 - images, images)
        coin = keras.random.uniform((ops.shape(images)[0], 1, 1, 1), seed=self.seed_generator)
        return ops.where(coin < self.probability, solarized, images)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(probability=self.probability, threshold=self.threshold, seed=self.seed)
        return config


def byol_augmenter(
    image_size,
    channels=3,
    view=1,
    scale=(0.08, 1.0),
    blur_probability="auto",
    solarize_probability="auto",
    flip=True,
    seed=None,
    name=None,
):
    """One of BYOL's two asymmetric view pipelines, as a Keras `Sequential`.

    Random resized crop, horizontal flip, colour jitter with probability 0.8
    (brightness 0.4, contrast 0.4, saturation 0.2, hue 0.1), grayscale with
    probability 0.2, then Gaussian blur (probability 1.0 for view 1, 0.1 for
    view 2) and solarization (0.0 for view 1, 0.2 for view 2) (BYOL,
    Table 6). Barlow Twins, VICReg, MoCo v3 and NNCLR use the same pair.
    Below 64 px the blur defaults off, as in `simclr_augmenter` and lightly's
    CIFAR-10 benchmarks.

    Args:
        image_size: int or (height, width).
        channels: int. 1 or 3 (grayscale: no colour steps, solarization kept).
        view: 1 or 2.
        scale: (min, max) crop area fraction.
        blur_probability: float or "auto" (the view's value from 64 px up, else 0).
        solarize_probability: float or "auto" (the view's value).
        flip: bool.
        seed: int or None. Layer i gets seed + i (+ 10 for view 2).
        name: str or None.

    Example:
    ```python
    view_1 = kerassl.augment.byol_augmenter(32, view=1, seed=0)
    view_2 = kerassl.augment.byol_augmenter(32, view=2, seed=0)
    ```

    Reference: Grill et al., "Bootstrap Your Own Latent", NeurIPS 2020
    (https://arxiv.org/abs/2006.07733), Appendix B.
    """
    if view not in (1, 2):
        raise ValueError(f"view must be 1 or 2; got {view}.")
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3; got {channels}.")
    height, width = _pair(image_size, "image_size")
    seed = None if seed is None else seed + (0 if view == 1 else 10)
    if blur_probability == "auto":
        blur_probability = (1.0 if view == 1 else 0.1) if min(height, width) >= 64 else 0.0
    if solarize_probability == "auto":
        solarize_probability = 0.0 if view == 1 else 0.2
    layers = [RandomResizedCrop((height, width), scale=scale, seed=_child_seed(seed, 0))]
    if flip:
        layers.append(keras.layers.RandomFlip("horizontal", seed=_child_seed(seed, 1)))
    jitter = ColorJitter(0.4, 0.4, 0.2, 0.1, seed=_child_seed(seed, 2))
    layers.append(RandomApply(jitter, 0.8, seed=_child_seed(seed, 3)))
    if channels == 3:
        layers.append(RandomGrayscale(0.2, seed=_child_seed(seed, 4)))
    if blur_probability:
        kernel = max(3, int(0.1 * min(height, width)) // 2 * 2 + 1)
        layers.append(
            keras.layers.RandomGaussianBlur(
                factor=(blur_probability, blur_probability),
                kernel_size=kernel,
                sigma=(0.1, 2.0),
                value_range=(0.0, 1.0),
                seed=_child_seed(seed, 5),
            )
        )
    if solarize_probability:
        layers.append(RandomSolarize(solarize_probability, seed=_child_seed(seed, 6)))
    return keras.Sequential(layers, name=name or f"byol_view_{view}")
