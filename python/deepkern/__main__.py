"""`python -m deepkern`: the main job. For now, a self-check of every backend and a short timing table."""
import argparse
import sys

from . import _selfcheck


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m deepkern", description=__doc__)
    parser.add_argument("--selfcheck", action="store_true", help="only run the backend self-check")
    parser.parse_args(argv)
    ok = _selfcheck.run()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
