"""`python -m deepkern`: the main job.

1. A small CNN learns scikit-learn's 8x8 digits (deepkern's conv2d / max_pool2d kernels under
   deepkern.nn), with a progress bar; test accuracy and time per epoch are printed.
2. Q-learning and SARSA learn the cliff of Sutton & Barto's Example 6.6; both greedy paths are
   printed as grids (Q-learning walks the edge, SARSA keeps away from it).

Nothing is downloaded: the digits ship with scikit-learn. `--device cuda` trains the CNN on cupy
arrays (needs cupy and deepkern's CUDA module); `--selfcheck` checks every op family on every backend present.
"""

import argparse
import time

import numpy as np

from .. import _backend, rl
from .cliff import cliff_runs, path_grid
from .digits import build_cnn, load_digits_split, require_device, train_cnn


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        prog="python -m deepkern", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--selfcheck",
        action="store_true",
        help="only check every op family on every backend present (each CPU ISA path, CUDA, the simulator) and print a table",
    )
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="where the CNN trains (default cpu)")
    p.add_argument("--epochs", type=int, default=12, help="CNN epochs (default 12)")
    p.add_argument("--episodes", type=int, default=500, help="cliff-walking episodes per agent (default 500)")
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="CPU kernel threads (default 1: this CNN's kernels are tiny, and on a busy machine "
        "OpenMP's spinning threads cost more than they give)",
    )
    p.add_argument("--quick", action="store_true", help="a few seconds: 2 epochs, 100 episodes")
    p.add_argument(
        "--no-progress", action="store_true", help="no progress bar (there is one only when stderr is a terminal)"
    )
    p.add_argument(
        "--subset",
        type=int,
        default=None,
        help="smoke run: only the first N training and test images (e.g. on the CUDA simulator)",
    )
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.subset is not None and args.subset < 1:
        p.error(f"--subset must be >= 1, got {args.subset}")
    for name in ("epochs", "episodes", "threads"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    return args


def run(args, print_fn=print):
    """Both parts of the main job; returns a dict of the numbers it printed."""
    t_start = time.perf_counter()
    device = require_device(args.device)  # fail before any work when CUDA is asked for and absent
    _backend.set_num_threads(args.threads)
    epochs, episodes = (2, 100) if args.quick else (args.epochs, args.episodes)
    print_fn(
        f"deepkern main job: CPU kernels {_backend._cpu.isa()}, {_backend.get_num_threads()} thread(s); CNN on {device}"
    )

    print_fn("\n[1/2] A CNN on scikit-learn's digits (8x8 grayscale, 10 classes)")
    data = load_digits_split(seed=args.seed)
    if args.subset is not None:
        data = tuple(a[: args.subset] for a in data)  # (x_train, x_test, y_train, y_test)
    model = build_cnn(seed=args.seed)
    model.summary(print_fn=lambda s: print_fn("  " + s.replace("\n", "\n  ")))
    print_fn(f"  {len(data[0])} training / {len(data[1])} test images; Adam lr 3e-3 (cosine), batch 32")
    h = train_cnn(
        model,
        data,
        epochs=epochs,
        seed=args.seed,
        device=device,
        progress=False if args.no_progress else "auto",
        print_fn=print_fn,
    )
    per_epoch = float(np.mean(h["epoch_time"]))
    print_fn(
        f"  test accuracy {h['test_acc'][-1] * 100:.2f}%  |  {per_epoch:.2f} s per epoch (training + test evaluation)"
    )

    print_fn(
        f"\n[2/2] Cliff walking (Sutton & Barto Example 6.6): Q-learning vs SARSA, {episodes} episodes, "
        f"alpha 0.5, epsilon 0.1"
    )
    runs = cliff_runs(episodes=episodes, seed=args.seed)
    env = rl.CliffWalking()
    out = {"test_acc": h["test_acc"][-1], "epoch_time": per_epoch}
    for name, (agent, returns) in runs.items():
        states = rl.rollout(env, agent.greedy_policy(), max_steps=100)
        last = returns[-min(100, len(returns)) :].mean()
        print_fn(
            f"\n  {name}: greedy path of {len(states) - 1} steps; mean return of its last "
            f"{min(100, len(returns))} (epsilon-greedy) training episodes {last:.1f}"
        )
        print_fn("    " + path_grid(env, states).replace("\n", "\n    "))
        key = name.lower().replace("-", "_")
        out[key + "_path_len"] = len(states) - 1
        out[key + "_last_return"] = float(last)
    print_fn(
        "\n  Q-learning learns the optimal path along the cliff edge but, exploring, falls off now and then;"
        "\n  SARSA learns the value of the policy it follows (exploration included) and keeps its distance."
    )
    out["total_time"] = time.perf_counter() - t_start
    print_fn(f"\nmain job done in {out['total_time']:.1f} s")
    return out
