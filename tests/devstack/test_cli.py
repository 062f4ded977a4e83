"""Fast checks of the launcher: argument validation, supervision backoff, reset."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from spotify_local import dev
from spotify_local.__main__ import main


@pytest.mark.parametrize("events", ["0", "-5", "abc"])
def test_demo_rejects_non_positive_events_before_wiping(tmp_path: Path, events: str) -> None:
    marker = tmp_path / "keep.txt"
    marker.write_text("still here")
    with pytest.raises(SystemExit) as exc:
        main(["demo", "--events", events, "--workdir", str(tmp_path)])
    assert exc.value.code == 2
    assert marker.read_text() == "still here"


@pytest.mark.parametrize("rate", ["0", "-1", "nan", "inf"])
def test_dev_rejects_non_positive_rate(rate: str) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["dev", "--rate", rate])
    assert exc.value.code == 2


class FakeChild:
    """Just enough of Child for the supervisor: an exit code and a start counter."""

    def __init__(self) -> None:
        self.name = "consumer"
        self.log_path = Path("consumer.log")
        self.code: int | None = None
        self.started_at = 0.0
        self.starts = 0

    def exit_code(self) -> int | None:
        return self.code

    def start(self) -> None:
        self.starts += 1
        self.code = None


def test_supervisor_backs_off_doubling_and_resets_after_health(
    caplog: pytest.LogCaptureFixture,
) -> None:
    child = FakeChild()
    sup = dev.Supervised(child)  # type: ignore[arg-type]
    delays = []
    now = 0.0
    for _ in range(7):
        child.code = 1
        sup.tick(now)
        assert sup.restart_at is not None
        delays.append(sup.restart_at - now)
        now = sup.restart_at
        sup.tick(now)
        child.started_at = now
    assert delays == [1, 2, 4, 8, 16, 30, 30]
    assert child.starts == 7
    assert "consumer exited with code 1; restarting in 30 s (restart #7)" in caplog.text
    sup.tick(now + dev.HEALTHY_AFTER_S)  # a minute of health
    child.code = 1
    sup.tick(now + dev.HEALTHY_AFTER_S + 1)
    assert sup.restart_at == now + dev.HEALTHY_AFTER_S + 1 + dev.BACKOFF_START_S


def test_config_error_waits_the_longest_backoff(caplog: pytest.LogCaptureFixture) -> None:
    child = FakeChild()
    sup = dev.Supervised(child)  # type: ignore[arg-type]
    child.code = dev.CONFIG_ERROR
    sup.tick(100.0)
    assert sup.restart_at == 100.0 + dev.BACKOFF_MAX_S
    assert "configuration or preflight error" in caplog.text


def test_reset_removes_the_state_and_says_what(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    workdir = tmp_path / "dev"
    (workdir / "s3").mkdir(parents=True)
    (workdir / "s3" / "volume.dat").write_bytes(b"x" * 10)
    (workdir / "warehouse.duckdb").write_bytes(b"y")
    caplog.set_level(logging.INFO)
    assert main(["reset", "--workdir", str(workdir)]) == 0
    assert not workdir.exists()
    assert f"removing {workdir / 's3'}" in caplog.text
    assert f"removing {workdir / 'warehouse.duckdb'}" in caplog.text


def test_reset_refuses_while_a_launcher_runs(tmp_path: Path) -> None:
    workdir = tmp_path / "dev"
    workdir.mkdir()
    (workdir / dev.PID_FILE).write_text("1")  # pid 1 is always alive
    assert dev.reset(workdir) == 1
    assert workdir.exists()


def test_a_stopped_stack_is_read_on_the_warehouse_it_ran_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`WAREHOUSE=duckdb make dev`, stopped; `spotify-local query` in a new shell (no
    WAREHOUSE) must open that DuckDB file, not an absent lake."""
    from spotify_local import audit
    from spotify_local.stack import WAREHOUSE_FILE, warehouse_kind

    monkeypatch.delenv("WAREHOUSE", raising=False)
    assert warehouse_kind(tmp_path) == "local"  # nothing recorded: the default
    (tmp_path / WAREHOUSE_FILE).write_text("duckdb\n")
    assert warehouse_kind(tmp_path) == "duckdb"
    warehouse = tmp_path / "warehouse.duckdb"
    assert not audit.has_run(tmp_path, warehouse)
    warehouse.touch()
    assert audit.has_run(tmp_path, warehouse)
    monkeypatch.setenv("WAREHOUSE", "local")  # said explicitly: the shell wins
    assert warehouse_kind(tmp_path) == "local"
