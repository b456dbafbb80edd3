"""Jigsaw: learn features by putting shuffled tiles of an image back in order."""

import functools
import itertools
import math

import keras
import numpy as np
from keras import ops

from kerassl import heads
from kerassl.methods.base import SSLMethod, split_inputs
from kerassl.registry import register

# Above this many tiles the permutations are drawn from a random pool instead
# of enumerated (9! = 362,880 is enumerable, 16! is not).
MAX_ENUMERATED_TILES = 9
CANDIDATE_POOL_SIZE = 100_000
# Noroozi and Favaro cut 64 px tiles from 75 px cells (0.85).
DEFAULT_TILE_FRACTION = 0.85


def hamming_distances(permutations, permutation):
    """Hamming distance from each row of `permutations` (N, T) to one permutation (T,)."""
    return np.count_nonzero(np.asarray(permutations) != np.asarray(permutation), axis=1)


def min_hamming_distance(permutations):
    """The smallest Hamming distance between two distinct rows of (P, T)."""
    permutations = np.asarray(permutations)
    distances = np.count_nonzero(permutations[:, None, :] != permutations[None, :, :], axis=-1)
    np.fill_diagonal(distances, permutations.shape[1] + 1)
    return int(distances.min())


def permutation_set(num_permutations, num_tiles, seed=0):
    """Permutations of `num_tiles` tiles chosen greedily for maximal Hamming distance.

    Starting from one permutation drawn at random, each step adds the candidate
    whose smallest Hamming distance to the ones already chosen is largest
    (ties broken at random), so the puzzles are as different from each other
    as the greedy search can make them: the "maximal" set of Noroozi and
    Favaro (2016), Algorithm 1. For up to 9 tiles every permutation is a
    candidate; above that a pool of 100,000 random permutations is.

    Args:
        num_permutations: int >= 2. Size of the set (classes of the puzzle).
        num_tiles: int >= 2. Tiles per puzzle (grid * grid).
        seed: int. The same seed gives the same set.

    Returns:
        int32 array (num_permutations, num_tiles); row p lists, for each
        position of the shuffled puzzle, the index of the tile placed there.

    Example:
    >>> perms = kerassl.methods.jigsaw.permutation_set(100, 9, seed=0)
    >>> kerassl.methods.jigsaw.min_hamming_distance(perms)
    """
    num_tiles, num_permutations = int(num_tiles), int(num_permutations)
    if num_tiles < 2:
        raise ValueError(f"num_tiles must be at least 2; got {num_tiles}.")
    available = math.factorial(num_tiles)
    if not 2 <= num_permutations <= available:
        raise ValueError(
            f"num_permutations must be between 2 and {available} ({num_tiles}!) "
            f"for {num_tiles} tiles; got {num_permutations}."
        )
    rng = np.random.default_rng(seed)
    if num_tiles <= MAX_ENUMERATED_TILES:
        pool = _all_permutations(num_tiles)
    else:
        draws = np.argsort(rng.random((CANDIDATE_POOL_SIZE, num_tiles)), axis=1)
        pool = np.unique(draws.astype("int8"), axis=0)
        if num_permutations > len(pool):
            raise ValueError(
                f"num_permutations={num_permutations} exceeds the {len(pool)} candidates "
                f"drawn for {num_tiles} tiles; use at most {len(pool)}."
            )
    # One contiguous row per tile position: comparing a whole column at once
    # is ~80x faster than row-wise distances over 9! candidates.
    columns = np.ascontiguousarray(pool.T)

    def distances_to(index):
        distance = np.zeros(len(pool), dtype="int8")
        for column in columns:
            distance += column != column[index]
        return distance

    chosen = [int(rng.integers(len(pool)))]
    nearest = distances_to(chosen[0])
    for _ in range(num_permutations - 1):
        best = np.flatnonzero(nearest == nearest.max())
        index = int(rng.choice(best))
        chosen.append(index)
        np.minimum(nearest, distances_to(index), out=nearest)
    return pool[chosen].astype("int32")


@functools.lru_cache(maxsize=2)
def _all_permutations(num_tiles):
    pool = np.array(list(itertools.permutations(range(num_tiles))), dtype="int8")
    pool.flags.writeable = False
    return pool


def cut_tiles(images, grid, tile_size, order, offsets):
    """Cuts `grid * grid` square tiles out of each image, in the order given.

    The image is split into a grid of cells (centred, leftover border pixels
    dropped); position k of sample b gets a `tile_size` square from cell
    `order[b, k]` (row-major), at `offsets[b, k]` pixels from the cell's
    top-left corner. One gather, so it compiles on every backend.

    Args:
        images: tensor (B, H, W, C) with static H, W, C.
        grid: int. Cells per side.
        tile_size: int. Side of the tiles, at most the cell's smaller side.
        order: int tensor (B, grid * grid). Source cell of each position.
        offsets: int tensor (B, grid * grid, 2). (dy, dx) of each position's
            tile inside its cell, each in [0, cell side - tile_size].

    Returns:
        tensor (B, grid * grid, tile_size, tile_size, C).
    """
    height, width, channels = images.shape[1:]
    cell_h, cell_w = height // grid, width // grid
    top, left = (height - grid * cell_h) // 2, (width - grid * cell_w) // 2
    order = ops.cast(order, "int32")
    offsets = ops.cast(offsets, "int32")
    rows = top + (order // grid) * cell_h + offsets[..., 0]
    cols = left + (order % grid) * cell_w + offsets[..., 1]
    steps = ops.arange(tile_size, dtype="int32")
    y = rows[:, :, None] + steps  # (B, T, tile)
    x = cols[:, :, None] + steps
    sample = ops.arange(ops.shape(images)[0], dtype="int32")[:, None, None, None]
    flat = sample * (height * width) + y[:, :, :, None] * width + x[:, :, None, :]
    pixels = ops.take(ops.reshape(images, (-1, channels)), ops.reshape(flat, (-1,)), axis=0)
    return ops.reshape(pixels, (-1, grid * grid, tile_size, tile_size, channels))


@register
class Jigsaw(SSLMethod):
    """Jigsaw puzzles: which of a fixed set of permutations shuffled the tiles?

    Each image is cut into `grid x grid` cells; from every cell a
    `tile_size` square is taken at a random position, so neighbouring tiles
    are separated by a random gap (0 to 2 * (cell - tile_size) px) and
    misaligned by random jitter: continuing edges and lines cannot give the
    answer away. The tiles are shuffled by a permutation drawn from a fixed
    set (chosen for maximal Hamming distance, generated from
    `permutation_seed` and stored in the config, so it is saved with the
    model), all B * T tiles go through the shared (siamese) encoder as one
    batch, the features are concatenated in position order and a head
    classifies the permutation. `puzzle_accuracy` is logged (chance is
    1 / num_permutations).

    The encoder sees tile-size images in pretraining and full images when it
    is used afterwards (kNN, fine-tuning, `predict`), so it must accept any
    image size: build it with `input_shape=(None, None, C)` and global
    pooling, e.g. `kerassl.backbones.small_convnet(input_shape=(None, None, 3))`
    or `kerassl.backbones.resnet18(input_shape=(None, None, 3), stem="cifar")`.
    An encoder with fixed sizes is refused with that advice.

    Args:
        encoder: keras.Model with free spatial sizes: images (batch, h, w, C)
            in [0, 1] to features (batch, D).
        grid: int >= 2. Cells per side; the puzzle has grid * grid tiles.
        num_permutations: int >= 2. Classes of the puzzle.
        tile_size: int or None. Side of the tiles; None takes 0.85 of the
            cell's smaller side (64 of 75 px in the paper), at most cell - 1.
        hidden_dim: int or None. Hidden width of the permutation head; None
            makes it linear.
        head: Keras layer or None. Replaces the default head; maps
            (batch, grid * grid * D) to num_permutations logits.
        permutation_seed: int. Seed of the permutation set.
        permutations: array-like (num_permutations, grid * grid) or None. An
            explicit permutation set (each row a permutation of the tiles); a
            loaded model passes the one it was trained with.
        num_classes: int or None. Enables the online linear probe, trained on
            stop-gradient features of the full images (one more encoder pass).
        seed: int or None. Seeds the permutation and jitter draws.

    Example:
    ```python
    encoder = kerassl.backbones.small_convnet(input_shape=(None, None, 3))
    model = kerassl.Jigsaw(encoder, grid=3, num_permutations=100)
    model.compile(optimizer="adam")
    model.fit(images, epochs=10, batch_size=128)
    features = model.predict(images)  # full images
    ```

    Reference: Noroozi and Favaro, "Unsupervised Learning of Visual
    Representations by Solving Jigsaw Puzzles", ECCV 2016
    (https://arxiv.org/abs/1603.09246).
    """

    nested_config_keys = ("encoder", "head")

    def __init__(
        self,
        encoder,
        grid=3,
        num_permutations=100,
        tile_size=None,
        hidden_dim=512,
        head=None,
        permutation_seed=0,
        permutations=None,
        num_classes=None,
        seed=None,
        **kwargs,
    ):
        super().__init__(encoder, num_classes=num_classes, seed=seed, **kwargs)
        if not isinstance(grid, int) or isinstance(grid, bool) or grid < 2:
            raise ValueError(f"grid must be an int >= 2; got {grid!r}.")
        if tile_size is not None and (not isinstance(tile_size, int) or tile_size < 1):
            raise ValueError(f"tile_size must be a positive int or None; got {tile_size!r}.")
        if hidden_dim is not None and int(hidden_dim) < 1:
            raise ValueError(f"hidden_dim must be a positive int or None; got {hidden_dim}.")
        self.grid = grid
        self.num_tiles = grid * grid
        self.tile_size = tile_size
        self.hidden_dim = None if hidden_dim is None else int(hidden_dim)
        self.permutation_seed = int(permutation_seed)
        if permutations is None:
            permutations = permutation_set(num_permutations, self.num_tiles, permutation_seed)
        self.permutations = self._check_permutations(permutations)
        self.num_permutations = len(self.permutations)
        if num_permutations is not None and int(num_permutations) != self.num_permutations:
            raise ValueError(
                f"num_permutations={num_permutations} but {self.num_permutations} "
                "permutations were given."
            )
        self.min_hamming_distance = min_hamming_distance(self.permutations)
        units = [self.num_permutations]
        if self.hidden_dim is not None:
            units = [self.hidden_dim, self.num_permutations]
        self.head = head or heads.MLPHead(units, name="permutation_head")
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.puzzle_accuracy_tracker = keras.metrics.Mean(name="puzzle_accuracy")

    def _check_permutations(self, permutations):
        permutations = np.asarray(permutations)
        tiles = np.arange(self.num_tiles)
        if (
            permutations.ndim != 2
            or permutations.shape[1] != self.num_tiles
            or not np.all(np.sort(permutations, axis=1) == tiles)
        ):
            raise ValueError(
                f"permutations must be an array (P, {self.num_tiles}) whose rows are "
                f"permutations of 0..{self.num_tiles - 1}; got shape {permutations.shape}."
            )
        if len(np.unique(permutations, axis=0)) != len(permutations):
            raise ValueError("permutations contain duplicate rows; each class must differ.")
        return permutations.astype("int32")

    # -- geometry ----------------------------------------------------------
    def cell_size(self, image_shape):
        height, width = image_shape[-3], image_shape[-2]
        return height // self.grid, width // self.grid

    def resolve_tile_size(self, image_shape):
        cell = min(self.cell_size(image_shape))
        if cell < 1:
            raise ValueError(
                f"images of {image_shape[-3]}x{image_shape[-2]} px are too small for a "
                f"{self.grid}x{self.grid} grid; use a smaller grid or larger images."
            )
        if self.tile_size is None:
            return max(1, min(round(DEFAULT_TILE_FRACTION * cell), cell - 1))
        if self.tile_size > cell:
            raise ValueError(
                f"tile_size={self.tile_size} is larger than the grid cells ({cell} px for "
                f"{image_shape[-3]}x{image_shape[-2]} images and grid={self.grid}); "
                f"use at most {cell}."
            )
        return self.tile_size

    def _check_encoder_sizes(self, tile_shape, image_shape):
        fixed = getattr(self.encoder, "input_shape", None)
        advice = (
            f"Jigsaw trains the encoder on {tile_shape[1]}x{tile_shape[2]} tiles, and it "
            f"is used on full {image_shape[1]}x{image_shape[2]} images afterwards, so it "
            "must accept any image size: build it with input_shape=(None, None, "
            f"{image_shape[-1]}) and global pooling, e.g. kerassl.backbones.small_convnet("
            f"input_shape=(None, None, {image_shape[-1]}))."
        )
        if isinstance(fixed, tuple) and len(fixed) == 4 and fixed[1:3] != (None, None):
            raise ValueError(f"the encoder takes fixed {fixed[1:]} inputs. {advice}")
        try:
            shapes = [
                tuple(self.encoder.compute_output_shape((None, *s[1:])))
                for s in (tile_shape, image_shape)
            ]
        except Exception as error:
            raise ValueError(f"the encoder failed on tiles or full images ({error}). {advice}")
        if shapes[0] != shapes[1] or len(shapes[0]) != 2:
            raise ValueError(
                f"the encoder gives {shapes[0]} for tiles and {shapes[1]} for full images. "
                f"{advice}"
            )
        return shapes[0][-1]

    def encoder_input_shape(self):
        return None  # the encoder sees tiles: the image size comes with the data

    def build(self, input_shape):
        image_shape = self.image_shape(input_shape)
        if image_shape[1] is None or image_shape[2] is None:
            raise ValueError(f"Jigsaw needs static image sizes; got input shape {image_shape}.")
        size = self.resolve_tile_size(image_shape)
        tile_shape = (None, size, size, image_shape[-1])
        if not self.encoder.built:
            self.encoder.build(tile_shape)
        feature_dim = self._check_encoder_sizes(tile_shape, image_shape)
        self.build_encoder(tile_shape)
        if not self.head.built:
            self.head.build((None, self.num_tiles * feature_dim))
        self.build_probe(feature_dim)
        self.built = True

    # -- forward -----------------------------------------------------------
    def shuffled_tiles(self, images):
        """Random puzzles for a batch: (tiles (B, T, s, s, C), permutation index (B,))."""
        image_shape = tuple(images.shape)
        size = self.resolve_tile_size(image_shape)
        cell_h, cell_w = self.cell_size(image_shape)
        batch = ops.shape(images)[0]
        labels = keras.random.randint(
            (batch,), 0, self.num_permutations, seed=self.seed_generator, dtype="int32"
        )
        order = ops.take(ops.convert_to_tensor(self.permutations), labels, axis=0)
        dy = keras.random.randint(
            (batch, self.num_tiles, 1), 0, cell_h - size + 1, seed=self.seed_generator,
            dtype="int32",
        )
        dx = keras.random.randint(
            (batch, self.num_tiles, 1), 0, cell_w - size + 1, seed=self.seed_generator,
            dtype="int32",
        )
        offsets = ops.concatenate([dy, dx], axis=-1)
        return cut_tiles(images, self.grid, size, order, offsets), labels

    def call(self, inputs, training=False):
        if not training:
            return super().call(inputs)
        images, _ = split_inputs(inputs)
        images = self.prepare_images(images)
        tiles, labels = self.shuffled_tiles(images)
        size, channels = tiles.shape[-2], tiles.shape[-1]
        features = self.encoder(ops.reshape(tiles, (-1, size, size, channels)), training=self.layers_training)
        joint = ops.reshape(features, (-1, self.num_tiles * features.shape[-1]))
        outputs = {"logits": self.head(joint, training=self.layers_training), "puzzle_labels": labels}
        if self.probe is not None:
            outputs["features"] = self.encoder(images, training=False)
        return outputs

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        y_pred, labels = self.training_outputs(x, y, y_pred, training)
        logits = ops.cast(y_pred["logits"], "float32")
        targets = y_pred["puzzle_labels"]
        loss = ops.mean(
            keras.losses.sparse_categorical_crossentropy(targets, logits, from_logits=True)
        )
        correct = ops.cast(ops.equal(ops.argmax(logits, axis=-1), targets), "float32")
        self.puzzle_accuracy_tracker.update_state(ops.mean(correct))
        if self.probe is not None:
            loss = loss + self.online_probe_loss(labels, y_pred["features"])
        return loss

    def get_config(self):
        config = super().get_config()
        config.update(
            grid=self.grid,
            num_permutations=self.num_permutations,
            tile_size=self.tile_size,
            hidden_dim=self.hidden_dim,
            head=keras.saving.serialize_keras_object(self.head),
            permutation_seed=self.permutation_seed,
            permutations=self.permutations.tolist(),
        )
        return config
