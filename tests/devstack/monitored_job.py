"""A one-op job for the run-monitoring test: it records its pid, then waits to be killed."""

from __future__ import annotations

import os
import time
from pathlib import Path

import dagster as dg


@dg.op
def wait_forever() -> None:
    # in_process executor: this pid is the run worker's, the process the test SIGKILLs.
    Path(os.environ["PID_FILE"]).write_text(str(os.getpid()))
    while True:
        time.sleep(1)


@dg.job(executor_def=dg.in_process_executor)
def orphaned() -> None:
    wait_forever()


defs = dg.Definitions(jobs=[orphaned])
