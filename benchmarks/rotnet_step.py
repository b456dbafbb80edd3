"""Images/s of a rotnet training step (32x32, batch 256) and, with --knn, the short MNIST kNN check.

Usage: python benchmarks/rotnet_step.py [--batch 256] [--warmup 3] [--steps 5] [--knn]
See pretext_methods.py for the protocol.
"""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from pretext_methods import main  # noqa: E402

if __name__ == "__main__":
    main("rotnet")
