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
