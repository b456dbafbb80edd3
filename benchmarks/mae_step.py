"""Images/s of an MAE training step (ViT-tiny, 32x32, batch 256) and, with --knn, a short kNN check.

Usage: python benchmarks/mae_step.py [--batch 256] [--warmup 2] [--steps 3] [--knn]
"""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from vit_methods import main  # noqa: E402

if __name__ == "__main__":
    main("mae")
