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

marks = {"first": 0.0, "last": 0.0}


class TimedLander(Lander):
    def add(self, msg, now=None):  # type: ignore[no-untyped-def]
        marks["first"] = marks["first"] or time.time()
        super().add(msg, now)

    def add_batch(self, msgs, now=None):  # type: ignore[no-untyped-def]
        marks["first"] = marks["first"] or time.time()
        super().add_batch(msgs, now)

    def _land(self, batch, attempts):  # type: ignore[no-untyped-def]
        ok = super()._land(batch, attempts)
        marks["last"] = time.time()
        return ok


def main() -> int:
    consumer.Lander = TimedLander  # type: ignore[misc]
    idle = float(sys.argv[1]) if len(sys.argv) > 1 else 3.0
    stats = consumer.run_consumer(Settings.from_env(), threading.Event(), idle_exit_s=idle)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    out = {
        "messages": stats.messages,
        "landed": stats.events_landed,
        "objects": stats.objects,
        "first": marks["first"],
        "last": marks["last"],
        "cpu": usage.ru_utime + usage.ru_stime,
    }
    sys.stdout.write(json.dumps(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
