"""Figures for looking at self-supervised training: views, curves, embeddings, attention.

Every function draws with matplotlib's Agg canvas (no display, and no change
to the global pyplot backend), writes a PNG to `path` through a temporary
file renamed when complete, and returns the path.
"""

import math
import os
import pathlib
import tempfile

import numpy as np

from kerassl.images import check_numpy_images, to_float_images

# Display size of one image cell, in inches (at 100 dpi).
CELL_INCHES = 1.2


def image_grid(rows, path, row_titles=None, col_titles=None, title=None):
    """Draws rows of images as one grid.

    Args:
        rows: list of image batches, one per row: arrays (N, H, W, 1 or 3),
            uint8 or float in [0, 1] (or lists of (H, W, C) images). Rows may
            differ in length, size, channels and dtype.
        path: str or path. The PNG to write.
        row_titles: list of str, optional. One label per row.
        col_titles: list of str, optional. One title per column.
        title: str, optional. The figure title.

    Returns:
        The path written, as a `pathlib.Path`.

    Example:
    >>> (x, y), _ = kerassl.datasets.load_digits()
    >>> kerassl.viz.image_grid([x[:8], x[8:16]], "digits.png",
    ...                        row_titles=["first", "second"])
    """
    grid = _image_rows(rows)
    _check_titles(row_titles, len(grid), "row_titles", "rows")
    if col_titles is not None:
        _check_titles(col_titles, max(len(r) for r in grid), "col_titles", "columns")
    figure = _grid_figure(grid, row_titles, col_titles, title)
    return _save(figure, path)


def augmentation_preview(images, augmenter, path, num_views=6, seed=None, max_images=8):
    """Shows each image next to `num_views` augmented views of it.

    Each view is one call `augmenter(batch, training=True)` on the float
    images in [0, 1], so it shows exactly what a method's training step sees.

    Args:
        images: array (N, H, W, 1 or 3), uint8 or float in [0, 1].
        augmenter: a Keras layer or model mapping float images in [0, 1] to
            augmented images, e.g. `kerassl.augment.simclr_augmenter(32)`.
        path: str or path. The PNG to write.
        num_views: int. Views per image.
        seed: int, optional. Makes the preview reproducible: the augmenter's
            seed-generator states are set from it for the preview and
            restored afterwards, so training randomness is left as it was.
        max_images: int. Show at most this many images (one row each).

    Returns:
        The path written.

    Example:
    >>> (x, _), _ = kerassl.datasets.load_digits(image_size=32, channels=3)
    >>> kerassl.viz.augmentation_preview(
    ...     x[:4], kerassl.augment.simclr_augmenter(32), "views.png", seed=0)
    """
    import keras

    if not callable(augmenter):
        raise TypeError(
            f"augmenter must be a callable Keras layer or model; got {type(augmenter).__name__}."
        )
    _check_positive_int(num_views, "num_views")
    _check_positive_int(max_images, "max_images")
    images = check_numpy_images(_to_numpy(images))[:max_images]
    if len(images) == 0:
        raise ValueError("images is empty: pass at least one image.")
    batch = to_float_images(images)
    originals = _display_images(images)
    views = []
    with _seeded(augmenter, seed):
        for _ in range(num_views):
            output = keras.ops.convert_to_numpy(augmenter(batch, training=True))
            if output.ndim != 4 or len(output) != len(images) or output.shape[-1] not in (1, 3):
                raise ValueError(
                    f"augmenter must return a batch shaped (N, H, W, 1 or 3) with "
                    f"N={len(images)}; it returned shape {output.shape}."
                )
            views.append(_display_images(output, clip=True))
    grid = [[originals[i]] + [view[i] for view in views] for i in range(len(images))]
    col_titles = ["original"] + [f"view {v + 1}" for v in range(num_views)]
    return _save(_grid_figure(grid, None, col_titles, None), path)


def loss_curve(history, path, keys=None):
    """Plots training metrics against the epoch, one panel per metric.

    A `val_<name>` series shares the panel of `<name>` when both are present;
    a series alone (e.g. `val_knn_accuracy`) gets its own panel.

    Args:
        history: a `keras.callbacks.History` (what `fit` returns) or a dict
            mapping metric names to per-epoch values.
        path: str or path. The PNG to write.
        keys: list of str, optional. Metrics to plot; all by default.

    Returns:
        The path written.

    Example:
    >>> history = model.fit(dataset, epochs=10)
    >>> kerassl.viz.loss_curve(history, "training.png")
    """
    from matplotlib.ticker import MaxNLocator

    logs, epochs = _history_logs(history)
    if keys is None:
        keys = list(logs)
    else:
        keys = [keys] if isinstance(keys, str) else list(keys)
        unknown = [k for k in keys if k not in logs]
        if unknown:
            raise KeyError(f"history has no metrics {unknown}; available: {sorted(logs)}.")
    if not keys:
        raise ValueError("history holds no metrics to plot (it is empty).")
    panels = {}
    for key in keys:
        base = key[4:] if key.startswith("val_") and key[4:] in keys else key
        panels.setdefault(base, []).append(key)
    figure, axes = _figure_with_axes(len(panels), columns=min(3, len(panels)), size=(4.0, 3.0))
    for ax, (name, series) in zip(axes, panels.items()):
        for key in series:
            values = logs[key]
            x = epochs if len(epochs) == len(values) else np.arange(1, len(values) + 1)
            ax.plot(x, values, marker="o" if len(values) < 30 else None, label=key)
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if len(series) > 1:
            ax.legend()
    figure.tight_layout()
    return _save(figure, path)


def reconstructions(originals, reconstructions, path, masks=None, max_images=8):
    """Shows originals, optionally their masked inputs, and reconstructions.

    Args:
        originals: array (N, H, W, 1 or 3), uint8 or float in [0, 1].
        reconstructions: array of the same shape: the model's outputs
            (floats are clipped to [0, 1] for display).
        path: str or path. The PNG to write.
        masks: array, optional. 1/True where the input was hidden. Either per
            pixel (N, H, W) or (N, H, W, 1), or per patch (N, num_patches)
            with square patches in row-major order, as MAE masks are.
            Hidden pixels are drawn gray.
        max_images: int. Show at most this many columns.

    Returns:
        The path written.

    Example:
    >>> kerassl.viz.reconstructions(x[:8], model.predict(x[:8]), "recon.png")
    """
    _check_positive_int(max_images, "max_images")
    originals = check_numpy_images(_to_numpy(originals), "originals")[:max_images]
    recon = _to_numpy(reconstructions)[:max_images]
    if recon.dtype.kind == "f":
        recon = np.clip(recon, 0.0, 1.0)  # Decoders overshoot; that is not an input error.
    recon = check_numpy_images(recon, "reconstructions")
    if recon.shape != originals.shape:
        raise ValueError(
            f"reconstructions must have the shape of originals; got {recon.shape} "
            f"vs {originals.shape}."
        )
    shown = _display_images(originals)
    rows, titles = [list(shown)], ["original"]
    if masks is not None:
        hidden = _pixel_masks(_to_numpy(masks)[:max_images], originals.shape)
        rows.append(list(np.where(hidden[..., None], 0.5, shown)))
        titles.append("masked")
    rows.append(list(_display_images(recon)))
    titles.append("reconstruction")
    return _save(_grid_figure(rows, titles, None, None), path)


def embedding_plot(features, labels, path, method="pca", class_names=None, seed=0, title=None):
    """Projects features to 2-D and scatters them, coloured by label.

    Args:
        features: array (N, D), D >= 2: e.g. `encoder.predict(images)`.
        labels: array (N,) of ints, or None for one colour.
        path: str or path. The PNG to write.
        method: str. `"pca"` (fast, linear) or `"tsne"` (slower; shows
            clusters but distorts distances between them).
        class_names: list of str, optional. Legend names for labels 0..K-1.
        seed: int. Seed of t-SNE.
        title: str, optional. The plot title.

    Returns:
        The path written.

    Example:
    >>> features = encoder.predict(x_test)
    >>> kerassl.viz.embedding_plot(features, y_test, "tsne.png", method="tsne")
    """
    features = _to_numpy(features)
    if features.ndim != 2 or features.shape[1] < 2:
        raise ValueError(
            f"features must be a 2-D array (N, D) with D >= 2; got shape {features.shape}."
        )
    if len(features) < 3:
        raise ValueError(f"embedding_plot needs at least 3 points; got {len(features)}.")
    if not np.all(np.isfinite(features)):
        raise ValueError("features contain NaN or infinite values.")
    if labels is not None:
        labels = _to_numpy(labels).reshape(-1)
        if len(labels) != len(features):
            raise ValueError(
                f"labels has {len(labels)} entries but features has {len(features)}."
            )
    points = _project(features.astype("float64"), method, seed)
    figure, (ax,) = _figure_with_axes(1, columns=1, size=(6.0, 5.0))
    if labels is None:
        ax.scatter(points[:, 0], points[:, 1], s=8, alpha=0.7)
    else:
        classes = np.unique(labels)
        palette = _palette(len(classes))
        for color, label in zip(palette, classes):
            chosen = labels == label
            name = label
            if class_names is not None and 0 <= int(label) < len(class_names):
                name = class_names[int(label)]
            ax.scatter(points[chosen, 0], points[chosen, 1], s=8, alpha=0.7,
                       color=color, label=str(name))
        if len(classes) <= 20:
            ax.legend(markerscale=2, fontsize="small", loc="best")
    ax.set_title(title or f"{method.upper()} of {features.shape[1]}-d features")
    ax.set_xticks([])
    ax.set_yticks([])
    figure.tight_layout()
    return _save(figure, path)


# --- internals ---------------------------------------------------------------


def _to_numpy(x):
    if isinstance(x, np.ndarray):
        return x
    if isinstance(x, (list, tuple)):
        return np.asarray(x)
    import keras

    return keras.ops.convert_to_numpy(x)


def _check_positive_int(value, name):
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}.")


def _check_titles(titles, expected, name, what):
    if titles is None:
        return
    if isinstance(titles, str) or len(titles) != expected:
        raise ValueError(f"{name} must be a list of {expected} strings (one per {what[:-1]}); "
                         f"got {titles!r}.")


def _image_rows(rows):
    """Validates rows of images; returns lists of display-ready float arrays."""
    if isinstance(rows, np.ndarray) or not isinstance(rows, (list, tuple)) or not rows:
        raise ValueError(
            "rows must be a non-empty list of image batches, one per row, e.g. "
            "[x[:8], y[:8]]; to draw one batch, pass [x]."
        )
    grid = []
    for i, row in enumerate(rows):
        if isinstance(row, (list, tuple)):
            images = [check_numpy_images(_to_numpy(img)[None], f"rows[{i}] images")[0]
                      for img in row]
            grid.append([_display_images(img[None])[0] for img in images])
        else:
            images = check_numpy_images(_to_numpy(row), f"rows[{i}]")
            grid.append(list(_display_images(images)))
        if not grid[-1]:
            raise ValueError(f"rows[{i}] is empty; every row needs at least one image.")
    return grid


def _display_images(images, clip=False):
    """uint8 or [0, 1] floats -> float32 in [0, 1] with channels kept."""
    images = np.asarray(images)
    if images.dtype == np.uint8:
        return images.astype("float32") / 255.0
    if clip:
        images = np.nan_to_num(images)
    return np.clip(images.astype("float32"), 0.0, 1.0)


def _grid_figure(grid, row_titles, col_titles, title):
    num_rows, num_cols = len(grid), max(len(row) for row in grid)
    figure, axes = _figure_with_axes(
        num_rows * num_cols, columns=num_cols, size=(CELL_INCHES, CELL_INCHES), flat=False
    )
    for r in range(num_rows):
        for c in range(num_cols):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c < len(grid[r]):
                image = grid[r][c]
                if image.shape[-1] == 1:
                    ax.imshow(image[..., 0], cmap="gray", vmin=0.0, vmax=1.0,
                              interpolation="nearest")
                else:
                    ax.imshow(image, interpolation="nearest")
            else:
                ax.axis("off")
            if r == 0 and col_titles is not None and c < len(col_titles):
                ax.set_title(str(col_titles[c]), fontsize="small")
            if c == 0 and row_titles is not None:
                ax.set_ylabel(str(row_titles[r]), fontsize="small")
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return figure


def _figure_with_axes(count, columns, size, flat=True):
    """A Figure on an Agg canvas with a grid of `count` axes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = math.ceil(count / columns)
    figure = Figure(figsize=(size[0] * columns, size[1] * rows), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.subplots(rows, columns, squeeze=False)
    if not flat:
        return figure, axes
    flat_axes = list(axes.ravel())
    for ax in flat_axes[count:]:
        ax.axis("off")
    return figure, flat_axes[:count]


def _save(figure, path):
    """Writes the figure as PNG to a temp file in the same folder, then renames."""
    path = pathlib.Path(path).expanduser()
    if path.suffix.lower() != ".png":
        raise ValueError(f"path must end in .png (a PNG is written); got {path}.")
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=".png", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            figure.savefig(file, format="png")
        os.chmod(temp, _default_file_mode())  # mkstemp makes files private (0600).
        os.replace(temp, path)
    finally:
        if os.path.exists(temp):
            os.unlink(temp)
    return path


def _default_file_mode():
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _history_logs(history):
    """(dict of float arrays, epoch numbers starting at 1) from a History or dict."""
    logs = getattr(history, "history", history)
    if not isinstance(logs, dict):
        raise TypeError(
            "history must be a keras.callbacks.History (returned by fit) or a dict of "
            f"per-epoch lists; got {type(history).__name__}."
        )
    arrays = {}
    for key, values in logs.items():
        try:
            values = np.asarray(
                [np.nan if v is None else float(_to_numpy(v)) for v in values], "float64"
            )
        except (TypeError, ValueError) as error:
            raise ValueError(f"history[{key!r}] must be a list of numbers: {error}") from error
        arrays[str(key)] = values
    epochs = getattr(history, "epoch", None)
    longest = max((len(v) for v in arrays.values()), default=0)
    if epochs is not None and len(epochs) == longest:
        epochs = np.asarray(epochs) + 1
    else:
        epochs = np.arange(1, longest + 1)
    return arrays, epochs


def _pixel_masks(masks, shape):
    """Per-pixel or per-patch masks -> boolean (N, H, W)."""
    n, height, width = shape[:3]
    masks = np.asarray(masks)
    if masks.ndim == 4 and masks.shape[-1] == 1:
        masks = masks[..., 0]
    if masks.ndim == 3 and masks.shape == (n, height, width):
        return masks.astype(bool)
    if masks.ndim == 2 and masks.shape[0] == n:
        side = math.isqrt(masks.shape[1])
        if side * side == masks.shape[1] and height % side == 0 and width % side == 0:
            patches = masks.reshape(n, side, side).astype(bool)
            return patches.repeat(height // side, axis=1).repeat(width // side, axis=2)
    raise ValueError(
        f"masks must be per pixel, shape ({n}, {height}, {width}), or per patch, "
        f"shape ({n}, grid*grid) with the grid dividing the image; got {masks.shape}."
    )


def _project(features, method, seed):
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=seed).fit_transform(features)
    if method == "tsne":
        from sklearn.manifold import TSNE

        perplexity = min(30.0, (len(features) - 1) / 3.0)
        return TSNE(
            n_components=2, perplexity=perplexity, init="pca", random_state=seed
        ).fit_transform(features)
    raise ValueError(f"method must be 'pca' or 'tsne'; got {method!r}.")


def _palette(count):
    from matplotlib import colormaps

    name = "tab10" if count <= 10 else "tab20" if count <= 20 else "viridis"
    cmap = colormaps[name]
    if name == "viridis":
        return [cmap(i / max(count - 1, 1)) for i in range(count)]
    return [cmap(i) for i in range(count)]


class _seeded:
    """Sets an augmenter's seed-generator states from `seed`, then restores them."""

    def __init__(self, augmenter, seed):
        self.states = []
        if seed is not None:
            self.states = [
                v for v in getattr(augmenter, "variables", [])
                if v.name == "seed_generator_state"
            ]
        self.seed = seed
        self.saved = []

    def __enter__(self):
        import keras

        self.saved = [keras.ops.convert_to_numpy(v.value) for v in self.states]
        for i, variable in enumerate(self.states):
            variable.assign(np.asarray([self.seed + i, 0], self.saved[i].dtype))
        return self

    def __exit__(self, *exc):
        for variable, value in zip(self.states, self.saved):
            variable.assign(value)
        return False


def samples(gan, path, n=64, seed=0, columns=None):
    """Writes a PNG grid of `n` images drawn from a trained `kerassl.GAN`.

    Args:
        gan: kerassl.GAN (anything with `generate(n, seed=...)` returning images).
        path: str. Where the PNG goes.
        n: int. Number of samples.
        seed: int or None. Seed of the latent draws: a fixed seed shows the same
            latent points after every epoch, so progress is visible.
        columns: int or None. Images per row; default ceil(sqrt(n)).

    Returns:
        The path written.

    Example:
    ```python
    kerassl.viz.samples(gan, "samples.png", n=36)
    ```
    """
    if not callable(getattr(gan, "generate", None)):
        raise TypeError(f"samples expects a kerassl GAN; got {type(gan).__name__}.")
    images = gan.generate(n, seed=seed)
    columns = int(columns or math.ceil(math.sqrt(len(images))))
    rows = [images[i : i + columns] for i in range(0, len(images), columns)]
    return image_grid(rows, path, title=f"{gan.name}: {len(images)} samples")


def mae_reconstructions(mae, images, path, max_images=8):
    """Writes originals, masked inputs and an MAE's reconstructions to a PNG.

    Args:
        mae: kerassl.MAE (anything with `reconstruct(images)` returning
            `(reconstructions, mask)`).
        images: array (B, H, W, C), uint8 or floats in [0, 1].
        path: str. A .png path.
        max_images: int.

    Example:
    >>> kerassl.viz.mae_reconstructions(mae, images[:8], "mae.png")
    """
    images = np.asarray(images)[:max_images]
    recon, mask = mae.reconstruct(images)
    return reconstructions(images, recon, path, masks=mask, max_images=max_images)


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
    shown = _display_images(images)
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
    return image_grid(rows, path, row_titles=titles)
