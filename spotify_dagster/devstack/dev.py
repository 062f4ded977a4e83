"""``make dev``: the whole stack with the Dagster UI, running until Ctrl-C.

The producer plays a steady stream, the consumer lands it, and the sensor (on by default)
turns every new object into an ingest run, so the asset graph materializes with no clicks.
State that must survive a restart lives under ``.local/dev`` (Dagster) and ``data/``
(the warehouse); the broker and the bucket start empty each time (see stack.py).
"""

from __future__ import annotations

import logging
import signal
import threading

from ..environment import REPO_ROOT, Environment
from .stack import dagster, local_stack, process, python, ui_port

log = logging.getLogger(__name__)


def main(rate: float, sensor_interval_s: int) -> int:
    workdir = REPO_ROOT / ".local" / "dev"
    warehouse = Environment.from_env().duckdb_path
    port = ui_port()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with local_stack(workdir, warehouse, sensor_interval_s) as stack:
        ui = dagster("dev", "-h", "127.0.0.1", "-p", str(port))
        with (
            process("consumer", python("streaming.consumer"), stack),
            process("producer", python("streaming.producer", "--rate", str(rate)), stack),
            process("dagster", ui, stack),
        ):
            log.info("Dagster UI: http://127.0.0.1:%d (ready in ~20 s)", port)
            log.info(
                "producing %.0f plays/s; warehouse %s; logs in %s",
                rate,
                warehouse,
                workdir / "logs",
            )
            log.info("press Ctrl-C to stop everything")
            stop.wait()
    log.info("stopped")
    return 0
