"""Position-embedding resizing that matches PyTorch's `interpolate(mode="bicubic")` exactly.

`transformers` resizes a checkpoint's patch position embeddings for another
image size with `interpolate_pos_encoding=True`: bicubic, `align_corners=False`,
with or without antialiasing depending on the family. Both kernels are
separable, so each is a (target, source) matrix per axis, computed here in
NumPy once at conversion time and applied to the (rows, cols, dim) grid.
"""

import math

import numpy as np


def _cubic(x, a):
    x = np.abs(x)
    near = ((a + 2) * x - (a + 3)) * x * x + 1
    far = ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
    return np.where(x <= 1, near, np.where(x < 2, far, 0.0))


def bicubic_matrix(source, target):
    """(target, source) weights of torch's bicubic resize (A = -0.75, edges clamped).

    Args:
        source: int. Input length.
        target: int. Output length.

    Example:
    >>> bicubic_matrix(4, 4).round(6).tolist() == np.eye(4).tolist()
    True
    """
    scale = source / target
    matrix = np.zeros((target, source), "float64")
    for i in range(target):
        real = scale * (i + 0.5) - 0.5
        start = math.floor(real)
        t = real - start
        weights = _cubic(np.array([t + 1, t, 1 - t, 2 - t]), -0.75)
        for offset, weight in zip(range(-1, 3), weights):
            matrix[i, min(max(start + offset, 0), source - 1)] += weight
    return matrix


def antialiased_bicubic_matrix(source, target):
    """(target, source) weights of torch's bicubic resize with `antialias=True` (PIL's kernel, a = -0.5).

    Args:
        source: int. Input length.
        target: int. Output length.

    Example:
    >>> antialiased_bicubic_matrix(8, 4).sum(axis=1).round(6).tolist()
    [1.0, 1.0, 1.0, 1.0]
    """
    scale = source / target
    support = 2.0 * scale if scale >= 1.0 else 2.0
    inverse = 1.0 / scale if scale >= 1.0 else 1.0
    matrix = np.zeros((target, source), "float64")
    for i in range(target):
        center = scale * (i + 0.5)
        low = max(int(center - support + 0.5), 0)
        high = min(int(center + support + 0.5), source)
        taps = np.arange(low, high)
        weights = _cubic((taps - center + 0.5) * inverse, -0.5)
        total = weights.sum()
        matrix[i, taps] = weights / total if total else weights
    return matrix


def resize_positions(grid_embedding, target_grid, antialias=False):
    """Resizes a (rows, cols, dim) position grid to `target_grid` as torch's bicubic does.

    Args:
        grid_embedding: NumPy array (rows, cols, dim).
        target_grid: (rows, cols).
        antialias: bool. DINOv2-with-registers resizes with antialiasing; the
            other families without.

    Returns:
        float32 array (target_rows, target_cols, dim).

    Example:
    >>> resize_positions(np.zeros((14, 14, 384)), (6, 6)).shape
    (6, 6, 384)
    """
    rows, cols = grid_embedding.shape[:2]
    make = antialiased_bicubic_matrix if antialias else bicubic_matrix
    row_matrix, col_matrix = make(rows, target_grid[0]), make(cols, target_grid[1])
    resized = np.einsum("ah,bw,hwd->abd", row_matrix, col_matrix, grid_embedding.astype("float64"))
    return resized.astype("float32")
