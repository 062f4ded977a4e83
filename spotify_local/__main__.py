"""Command line of the local stack: ``spotify-local {dev,demo,reset,audit,query}``."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import duckdb

from spotify_dagster.environment import REPO_ROOT

from . import audit, demo, dev
from . import warehouse as local_warehouse

# `make demo` streams, as the product does: at 5,000 plays/s a 200,000-play demo produces for
# 40 s, several ingest runs commit while it does, and a reader watches Gold grow. Produced
# as fast as it goes, the whole demo lands in seconds and one run takes it all.
DEMO_RATE = 5_000.0


def positive_int(text: str) -> int:
    """argparse type: an integer above 0 (rejected before anything is started or wiped)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a number above 0 (a rate of 0 would divide by zero)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="spotify-local", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("dev", help="run the whole stack with the UI until Ctrl-C")
    d.add_argument("--rate", type=positive_float, default=200.0, help="plays produced per second")
    d.add_argument(
        "--sensor-interval", type=positive_int, default=5, help="seconds between sensor ticks"
    )
    d.add_argument(
        "--workdir",
        type=Path,
        default=dev.DEV_DIR,
        help="where the durable state lives (default .local/dev)",
    )
    m = sub.add_parser("demo", help="push N events through, wait for Gold, print a summary")
    m.add_argument("--events", type=positive_int, default=20_000)
    m.add_argument("--seed", type=int, default=42)
    m.add_argument(
        "--rate",
        type=positive_float,
        default=DEMO_RATE,
        help=f"plays/s (default {DEMO_RATE:,.0f}: a stream, so Gold fills while you watch; "
        "a high rate sends a burst)",
    )
    m.add_argument("--timeout", type=positive_float, default=600.0, help="seconds before giving up")
    m.add_argument(
        "--workdir",
        type=Path,
        default=REPO_ROOT / ".local" / "demo",
        help="scratch directory, emptied first (default .local/demo)",
    )
    r = sub.add_parser("reset", help="wipe the durable state of make dev (.local/dev)")
    r.add_argument("--workdir", type=Path, default=dev.DEV_DIR)
    a = sub.add_parser(
        "audit",
        help="check that every offset the consumer committed is in Bronze exactly once "
        "(running or stopped stack); JSON on the last line",
    )
    a.add_argument("--workdir", type=Path, default=dev.DEV_DIR)
    q = sub.add_parser(
        "query",
        help="run one SQL statement on the warehouse and print the rows (while make dev runs "
        "or after it stopped; on the lake it never waits for or blocks a run)",
    )
    q.add_argument("sql", help='for example "select count(*) from gold.fct_plays"')
    q.add_argument("--limit", type=positive_int, default=50, help="rows printed at most")
    q.add_argument("--workdir", type=Path, default=dev.DEV_DIR)
    return p


def main(argv: list[str] | None = None) -> int:
    # Argument errors exit 2 here, before any directory is wiped or service started.
    args = parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr
    )
    if args.command == "dev":
        return dev.main(args.rate, args.sensor_interval, args.workdir.resolve())
    if args.command == "reset":
        return dev.reset(args.workdir.resolve())
    if args.command == "audit":
        workdir = args.workdir.resolve()
        running = dev.running_launcher(workdir) is not None
        return audit.main(workdir, running, dev.warehouse_path(workdir))
    if args.command == "query":
        return query(args.sql, args.limit, args.workdir.resolve())
    return demo.main(args.events, args.seed, args.timeout, args.workdir.resolve(), args.rate)


def query(sql: str, limit: int, workdir: Path) -> int:
    warehouse = dev.warehouse_path(workdir)
    if not audit.has_run(workdir, warehouse):
        logging.error("no warehouse in %s: has make dev run here?", workdir)
        return 2
    running = dev.running_launcher(workdir) is not None
    with audit.stack_endpoints(workdir, running, warehouse) as endpoints:
        try:
            columns, rows = local_warehouse.query(endpoints, sql)
        except duckdb.Error as exc:  # the user's SQL: say why in one line, exit 1
            logging.error("query failed: %s", str(exc).splitlines()[0])
            return 1
    sys.stdout.write(local_warehouse.format_table(columns, rows, limit) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
