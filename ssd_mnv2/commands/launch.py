"""``ssd-mnv2 launch``: run a distributed (parameter-server) job on this machine."""
from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    p = sub.add_parser(
        "launch", help="start scheduler, servers and workers on this machine (dist_sync training)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Start an MXNet parameter-server job on 127.0.0.1: one scheduler, -s servers "
                    "and -n workers running COMMAND, with the DMLC_* variables set. Output is "
                    "prefixed per process. If any worker dies or exits non-zero, everything is "
                    "stopped and the launcher exits non-zero naming it.",
        epilog="example:\n  ssd-mnv2 launch -n 2 -s 1 -- train --config configs/tiny.yaml "
               "--kvstore dist_sync\n\nSeveral machines: MXNet's tools/launch.py (ssh or mpi), "
               "see docs/distributed.md.")
    p.add_argument("-n", "--num-workers", type=int, required=True, help="number of workers")
    p.add_argument("-s", "--num-servers", type=int, default=1, help="number of servers (default 1)")
    p.add_argument("--port", type=int, default=None,
                   help="scheduler port on 127.0.0.1 (default: a free port)")
    p.add_argument("--grace", type=float, default=10.0,
                   help="seconds between SIGTERM and SIGKILL when stopping (default 10)")
    p.add_argument("--timeout", type=float, default=None,
                   help="stop the whole job after this many seconds (exit code 124)")
    p.add_argument("worker_command", nargs=argparse.REMAINDER, metavar="-- COMMAND ...",
                   help="an ssd-mnv2 command (train ...) or any program, after --")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..cli import COMMANDS
    from ..dist import launch

    return launch(args.worker_command, args.num_workers, args.num_servers, port=args.port,
                  grace=args.grace, timeout=args.timeout, subcommands=COMMANDS)
