"""The Dagster UI's port, and proof that the UI answering on it is ours.

Checking that a port is free and binding it later races with every other process on the
machine: the old launcher once advertised a port that another program had taken meanwhile.
Now the URL is advertised only when our own ``dagster dev`` log says it serves on that port
and the port answers Dagster's ``/server_info``; a taken port fails with a clear message.
"""

from __future__ import annotations

import json
import os
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from streaming.services import free_port

DEFAULT_PORT = 3000
# What the webserver's bind failure looks like in the dagster dev log.
_BIND_ERRORS = ("address already in use", "errno 98")


class UiError(RuntimeError):
    """The UI cannot come up (port taken, dagster dev exited)."""


def choose_port() -> int:
    """DAGSTER_PORT if set (the user asked for it), else 3000 if free, else any free port."""
    wanted = os.getenv("DAGSTER_PORT")
    if wanted:
        return int(wanted)
    return DEFAULT_PORT if port_free(DEFAULT_PORT) else free_port()


def port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass
class UiProbe:
    """Watches one ``dagster dev`` start: its log from ``offset`` on, and the port."""

    port: int
    log_path: Path
    offset: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ready(self) -> bool:
        """True once our webserver logged that it serves on the port and the port answers.

        Raises UiError when the log shows the bind failed (someone else has the port).
        """
        text = self._new_log().lower()
        if any(err in text for err in _BIND_ERRORS):
            raise UiError(
                f"port {self.port} is taken by another process; set DAGSTER_PORT to a free "
                f"port (log {self.log_path})"
            )
        serving = f"serving dagster-webserver on {self.url}".lower()
        return serving in text and _is_dagster(self.url)

    def answering(self) -> bool:
        """True if a Dagster webserver answers on the port right now."""
        return _is_dagster(self.url)

    def _new_log(self) -> str:
        try:
            with self.log_path.open("rb") as f:
                f.seek(self.offset)
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""


def log_size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def _is_dagster(url: str) -> bool:
    """Dagster's webserver answers ``/server_info`` with its version as JSON."""
    try:
        with urllib.request.urlopen(url + "/server_info", timeout=2.0) as resp:  # noqa: S310
            info = json.loads(resp.read())
    except (OSError, ValueError):
        return False
    return isinstance(info, dict) and "dagster_webserver_version" in info
