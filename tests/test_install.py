"""What `make install` leaves in the virtual environment."""

from __future__ import annotations

import importlib
import importlib.util
import os
from pathlib import Path

import pytest

# Imported by every dbt build, run worker, code server and daemon.
HEAVY_MODULES = (
    "dagster",
    "dagster._core.instance",
    "dagster_dbt",
    "dbt.cli.main",
    "dbt.adapters.duckdb",
    "dbt.graph.selector",
    "botocore.session",
)


def _bytecode_is_current(source: Path) -> bool:
    """Whether ``source`` has a .pyc Python will use instead of compiling the source: a
    timestamp-validated header whose mtime and size are the source's (PEP 552)."""
    cached = Path(importlib.util.cache_from_source(str(source)))
    if not cached.exists():
        return False
    header = cached.read_bytes()[:16]
    if header[:4] != importlib.util.MAGIC_NUMBER:
        return False
    flags = int.from_bytes(header[4:8], "little")
    if flags & 0b1:
        # Hash-based: checked against the source's hash, or not at all.
        return True
    stat = source.stat()
    return int.from_bytes(header[8:12], "little") == int(stat.st_mtime) & 0xFFFFFFFF and (
        int.from_bytes(header[12:16], "little") == stat.st_size & 0xFFFFFFFF
    )


@pytest.mark.parametrize("name", HEAVY_MODULES)
def test_the_environment_holds_compiled_bytecode(name: str) -> None:
    """`uv sync` writes no .pyc files unless asked (`--compile-bytecode`), and Python does
    not write them where PYTHONDONTWRITEBYTECODE is set (CI, Docker): every process then
    compiled dbt and Dagster from source again, ~2 CPU-s per dbt build (decision 0022)."""
    module = importlib.import_module(name)
    source = Path(module.__file__ or "")
    assert source.suffix == ".py", source
    assert _bytecode_is_current(source), (
        f"{source} has no current .pyc: make install runs `uv sync --compile-bytecode`"
        f" (PYTHONDONTWRITEBYTECODE={os.environ.get('PYTHONDONTWRITEBYTECODE', '')!r})"
    )
