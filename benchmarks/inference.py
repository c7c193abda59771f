"""Inference speed table: python benchmarks/inference.py [--params P] [--reps N] [--threads 2] ...

Same options as ``ssd-mnv2 benchmark``. The thread count is set before MXNet is imported.
"""
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> int:
    import argparse

    from ssd_mnv2.commands import benchmark

    parser = argparse.ArgumentParser(prog="benchmarks/inference.py")
    sub = parser.add_subparsers(dest="command")
    benchmark.add_parser(sub)
    args = parser.parse_args(["benchmark"] + list(sys.argv[1:] if argv is None else argv))
    os.environ["OMP_NUM_THREADS"] = str(args.threads)  # before mxnet is imported
    try:
        return benchmark.run(args)
    except (FileNotFoundError, ValueError, RuntimeError) as e:
        print(f"benchmarks/inference.py: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
