"""Command line of the local stack: ``python -m spotify_dagster.devstack {dev,demo}``."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ..environment import REPO_ROOT
from . import demo, dev


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="spotify_dagster.devstack", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("dev", help="run the whole stack with the UI until Ctrl-C")
    d.add_argument("--rate", type=float, default=200.0, help="plays produced per second")
    d.add_argument("--sensor-interval", type=int, default=5, help="seconds between sensor ticks")
    m = sub.add_parser("demo", help="push N events through, wait for Gold, print a summary")
    m.add_argument("--events", type=int, default=20_000)
    m.add_argument("--seed", type=int, default=42)
    m.add_argument("--timeout", type=float, default=600.0, help="seconds before giving up")
    m.add_argument(
        "--workdir",
        type=Path,
        default=REPO_ROOT / ".local" / "demo",
        help="scratch directory, emptied first (default .local/demo)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr
    )
    if args.command == "dev":
        return dev.main(args.rate, args.sensor_interval)
    return demo.main(args.events, args.seed, args.timeout, args.workdir.resolve())


if __name__ == "__main__":
    sys.exit(main())
