"""Pictures: learning curves, the greedy policy as arrows, V(s) as a heat map; saved as PNG.

matplotlib is an optional extra (pip install deepkern[plot]); it is imported only inside the
plotting functions, with the non-interactive Agg backend when nothing else was chosen.
"""

import numpy as np

from ._checks import check_int


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise ImportError("deepkern.rl plots need matplotlib: pip install 'deepkern[plot]'") from None
    if "matplotlib.pyplot" not in __import__("sys").modules:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def smooth(returns, window=10):
    """The book's smoothing of learning curves: average over independent runs (axis 0 of a
    (runs, episodes) array), then over `window` successive episodes (a trailing running mean;
    the first window-1 points average what is there so far). -> 1-D array of len(episodes)."""
    x = np.asarray(returns, dtype=np.float64)
    if x.ndim == 2:
        x = x.mean(axis=0)
    if x.ndim != 1:
        raise ValueError(f"smooth: argument 'returns' must be (episodes,) or (runs, episodes), got shape {x.shape}")
    window = check_int("smooth", "window", window, low=1)
    c = np.cumsum(np.concatenate([[0.0], x]))
    n = np.arange(1, x.size + 1)
    lo = np.maximum(n - window, 0)
    return (c[n] - c[lo]) / (n - lo)


def _save(fig, path):
    if path is not None:
        fig.savefig(path, dpi=100, bbox_inches="tight")


def plot_learning_curves(
    curves, window=10, path=None, ax=None, ylim=None, title=None, ylabel="Sum of rewards during episode"
):
    """curves: {label: returns} with returns (episodes,) or (runs, episodes) -> the Figure.
    Each curve is smoothed with smooth(returns, window); saved to `path` (PNG) when given."""
    if not isinstance(curves, dict) or not curves:
        raise TypeError("plot_learning_curves: argument 'curves' must be a non-empty dict {label: returns}")
    plt = _pyplot()
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(7, 4.5))
    for label, ret in curves.items():
        y = smooth(ret, window)
        ax.plot(np.arange(1, y.size + 1), y, label=str(label))
    ax.set_xlabel("Episodes")
    ax.set_ylabel(ylabel)
    if ylim is not None:
        ax.set_ylim(*ylim)
    if title:
        ax.set_title(title)
    ax.legend()
    _save(fig, path)
    return fig


def _grid_shape(env, shape, n, where):
    if shape is None:
        shape = getattr(env, "shape", None) if env is not None else None
        base = getattr(env, "unwrapped", env)
        if shape is None and hasattr(base, "nrow"):
            shape = (base.nrow, base.ncol)
        if shape is None and hasattr(base, "shape"):
            shape = base.shape
    if shape is None:
        raise ValueError(f"{where}: pass 'shape' (rows, cols) or an env with a grid shape")
    shape = tuple(int(v) for v in shape)
    if len(shape) != 2 or shape[0] * shape[1] != n:
        raise ValueError(f"{where}: argument 'shape' {shape} does not hold {n} states")
    return shape


def plot_policy(policy, env=None, shape=None, action_deltas=None, path=None, ax=None, values=None, title=None, skip=()):
    """The greedy policy as an arrow per cell (policy: one action per state, state = row*cols+col).
    The grid shape and the arrows' directions (d_row, d_col per action) come from env when it has
    them (deepkern's grid envs; Gymnasium's FrozenLake / CliffWalking), else from shape /
    action_deltas (default: 0 up, 1 right, 2 down, 3 left). values: optional V(s) shown as the
    background. skip: states to leave without an arrow (terminal cells, walls)."""
    p = np.asarray(policy)
    if p.ndim != 1 or p.dtype.kind not in "iu":
        raise ValueError(
            f"plot_policy: argument 'policy' must be a 1-D int array (one action per state), got {p.dtype} {p.shape}"
        )
    shape = _grid_shape(env, shape, p.size, "plot_policy")
    if action_deltas is None:
        base = getattr(env, "unwrapped", env)
        action_deltas = getattr(base, "action_deltas", None)
        if action_deltas is None and type(base).__name__.startswith("FrozenLake"):
            action_deltas = ((0, -1), (1, 0), (0, 1), (-1, 0))
        if action_deltas is None:
            action_deltas = ((-1, 0), (0, 1), (1, 0), (0, -1))
    deltas = np.asarray(action_deltas, dtype=np.float64)
    if p.size and p.max() >= len(deltas):
        raise ValueError(f"plot_policy: argument 'policy' holds actions beyond the {len(deltas)} action directions")
    plt = _pyplot()
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(0.6 * shape[1] + 1.5, 0.6 * shape[0] + 1))
    if values is not None:
        ax.imshow(np.asarray(values, dtype=np.float64).reshape(shape), cmap="viridis")
    else:
        ax.imshow(np.zeros(shape), cmap="Greys", vmin=0, vmax=1)
    rows, cols = np.divmod(np.arange(p.size), shape[1])
    keep = ~np.isin(np.arange(p.size), np.asarray(list(skip), dtype=np.int64))
    d = deltas[p]
    # imshow puts row 0 on top (y grows downward), so d_row maps to +y in data coordinates.
    ax.quiver(
        cols[keep],
        rows[keep],
        d[keep, 1],
        d[keep, 0],
        angles="xy",
        scale_units="xy",
        scale=1.6,
        pivot="middle",
        color="tab:red" if values is not None else "black",
    )
    ax.set_xticks(np.arange(-0.5, shape[1], 1), minor=True)
    ax.set_yticks(np.arange(-0.5, shape[0], 1), minor=True)
    ax.grid(which="minor", color="grey", linewidth=0.5)
    ax.tick_params(which="both", length=0, labelbottom=False, labelleft=False)
    if title:
        ax.set_title(title)
    _save(fig, path)
    return fig


def plot_values(values, env=None, shape=None, path=None, ax=None, title=None, annotate=True, cmap="viridis"):
    """V(s) as a heat map over the grid (values: one per state), with the numbers written in
    when annotate=True; saved to `path` (PNG) when given."""
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1:
        raise ValueError(f"plot_values: argument 'values' must be 1-D (one value per state), got shape {v.shape}")
    shape = _grid_shape(env, shape, v.size, "plot_values")
    plt = _pyplot()
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(0.6 * shape[1] + 2, 0.6 * shape[0] + 1))
    img = ax.imshow(v.reshape(shape), cmap=cmap)
    fig.colorbar(img, ax=ax, shrink=0.8)
    if annotate:
        for s, val in enumerate(v):
            r, c = divmod(s, shape[1])
            ax.text(
                c,
                r,
                f"{val:.2g}" if abs(val) < 100 else f"{val:.0f}",
                ha="center",
                va="center",
                fontsize=7,
                color="white",
            )
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title)
    _save(fig, path)
    return fig
