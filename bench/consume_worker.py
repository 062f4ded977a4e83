"""One landing consumer process for the benchmark: ``python -m bench.consume_worker``.

Runs the real ``run_consumer`` (settings from the environment) and prints one JSON line:
its counters, when it saw its first message and landed its last object, and its CPU.
"""

from __future__ import annotations

import json
import resource
import sys
import threading
import time

from streaming import consumer
from streaming.lander import Lander
from streaming.settings import Settings

marks = {"first": 0.0, "last": 0.0, "cpu_first": 0.0}


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _start() -> None:
    if not marks["first"]:
        marks["first"], marks["cpu_first"] = time.time(), _cpu()


class TimedLander(Lander):
    def add(self, msg, now=None):  # type: ignore[no-untyped-def]
        _start()
        super().add(msg, now)

    def add_batch(self, msgs, now=None):  # type: ignore[no-untyped-def]
        if msgs:  # the poll loop also hands over empty polls
            _start()
        super().add_batch(msgs, now)

    def _landed(self, batch, written):  # type: ignore[no-untyped-def]
        ok = super()._landed(batch, written)
        marks["last"] = time.time()
        return ok


def main() -> int:
    consumer.Lander = TimedLander  # type: ignore[misc]
    idle = float(sys.argv[1]) if len(sys.argv) > 1 else 3.0
    stats = consumer.run_consumer(Settings.from_env(), threading.Event(), idle_exit_s=idle)
    out = {
        "messages": stats.messages,
        "landed": stats.events_landed,
        "objects": stats.objects,
        "first": marks["first"],
        "last": marks["last"],
        "cpu": _cpu() - marks["cpu_first"],
    }
    sys.stdout.write(json.dumps(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
