"""The names the bench's per-program CPU breakdown gives processes."""

from __future__ import annotations

from bench.common import program_label


def test_programs_are_named_by_what_they_run() -> None:
    def label(*argv: str) -> str:
        return program_label("\0".join(argv) + "\0")

    assert label("/v/bin/python", "/v/bin/dbt", "build", "--select", "x") == "dbt build"
    assert label("/v/bin/python", "-m", "streaming.consumer") == "streaming.consumer"
    assert label("/v/bin/python", "-m", "dagster", "api", "grpc", "--socket", "s") == (
        "dagster api grpc"
    )
    assert label("/v/bin/python", "-B", "-c", "from multiprocessing.forkserver import main; m") == (
        "python -c from multiprocessing.forkserver import main;"
    )
    assert label("/usr/bin/weed", "mini", "-dir=/tmp/s3") == "weed"
    assert label("") == "?"


def test_the_dbt_steps_fork_counts_as_dbt_and_its_run_worker_does_not() -> None:
    """A fork keeps its parent's command line; the dbt step's fork names itself "dbt"
    (components/dbt_zygote.py) and its CPU must go to dbt, the run worker's must not."""
    import os
    import time

    from bench.common import TreeCpu
    from spotify_dagster.components.dbt_zygote import PROCESS_NAME, _name_process

    def burn(seconds: float) -> None:
        end = time.process_time() + seconds
        while time.process_time() < end:
            pass

    with TreeCpu(interval=0.05) as cpu:
        worker = os.fork()
        if worker == 0:  # the run worker: a fork of this process, then its dbt fork
            dbt = os.fork()
            if dbt == 0:
                _name_process(PROCESS_NAME)
                burn(0.6)
                os._exit(0)
            burn(0.3)
            os.waitpid(dbt, 0)
            time.sleep(0.2)
            os._exit(0)
        os.waitpid(worker, 0)
    assert cpu.of("dbt") >= 0.4
    assert cpu.of("dbt") <= 0.8
    labels = cpu.by_program()
    assert labels.get("dbt build (fork)", 0) >= 0.4
