"""The main job (`python -m deepkern`) and the pieces the examples share with it.

- digits: a small CNN on scikit-learn's 8x8 digits (data, model, a timed training loop).
- cliff:  Q-learning vs SARSA on Sutton & Barto's cliff (Example 6.6), greedy paths as text grids.
- main:   the command line that runs both.
"""

from .cliff import cliff_runs, path_grid
from .digits import build_cnn, load_digits_split, train_cnn

__all__ = ["build_cnn", "load_digits_split", "train_cnn", "cliff_runs", "path_grid"]
