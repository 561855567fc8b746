"""`python -m deepkern`: the main job (a CNN on the digits, then Q-learning vs SARSA on the cliff);
`python -m deepkern --selfcheck`: the backend self-check. See deepkern/demo/main.py."""

import sys

from . import _selfcheck


def main(argv=None):
    from .demo.main import parse_args, run

    args = parse_args(argv)
    if args.selfcheck:
        return 0 if _selfcheck.run() else 1
    try:
        run(args)
    except RuntimeError as e:  # --device cuda without cupy / a CUDA module / a GPU: say why, no traceback
        if "--device" not in str(e):
            raise
        print(f"python -m deepkern: {e}", file=sys.stderr)
        return 2
    except NotImplementedError as e:  # an op without a CUDA kernel in this build
        if args.device != "cuda":
            raise
        print(f"python -m deepkern --device cuda: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
