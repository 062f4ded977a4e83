"""The Dagster daemon without the UI, against a code server that stays up.

`dagster-daemon run -w workspace.yaml` spawns the code server itself and, every 60 s,
drops it and spawns a fresh one (`RELOAD_WORKSPACE_INTERVAL` in dagster/_daemon). Each new
server loads the definitions again: ~12 s and ~14 CPU-s here, a quarter of a core for
ever, and sensor ticks and run launches wait while it loads. `make dev` (`dagster dev`)
and the compose file (a `code-location` service) both run one long-lived code server the
daemon reaches over gRPC; this does the same for the daemon-only stack of `make demo`,
the bench and the reliability scenarios (docs/decisions/0018).

`python -m spotify_local.daemon` starts `dagster code-server start` on a free local port,
waits until it serves the definitions, writes a workspace pointing at it into
$DAGSTER_HOME, then becomes `dagster-daemon run` (exec): one process group, so stopping
or killing the group stops both, and the code server dies with the daemon.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml  # type: ignore[import-untyped]  # PyYAML comes with Dagster, without stubs

from spotify_dagster.environment import REPO_ROOT
from streaming.services import die_with_parent, free_port

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 300.0  # a cold start on a loaded 2-core machine takes a minute or more


def location() -> tuple[str, str]:
    """(module, location name) of the code location in the repository's workspace.yaml,
    the one `dg dev` and `dagster definitions validate` load: served here unchanged."""
    entry = yaml.safe_load((REPO_ROOT / "workspace.yaml").read_text())["load_from"][0]
    module = entry["python_module"]
    return module["module_name"], module["location_name"]


def code_server(port: int, module: str, name: str) -> list[str]:
    return [
        str(Path(sys.executable).parent / "dagster"),
        "code-server",
        "start",
        "-m",
        module,
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
        "--location-name",
        name,
    ]


def workspace_yaml(port: int, name: str) -> str:
    return (
        "load_from:\n"
        "  - grpc_server:\n"
        "      host: 127.0.0.1\n"
        f"      port: {port}\n"
        f"      location_name: {name}\n"
    )


def wait_until_serving(port: int, server: subprocess.Popen[bytes]) -> None:
    """Until the server answers with the definitions loaded (not merely listening)."""
    from dagster._grpc.client import DagsterGrpcClient

    client = DagsterGrpcClient(port=port, host="127.0.0.1")
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        if server.poll() is not None:
            raise SystemExit(f"the code server exited with code {server.returncode}")
        try:
            client.list_repositories()
            return
        except Exception as e:  # not listening yet, or still loading the code
            if time.monotonic() > deadline:
                msg = f"the code server did not serve in {READY_TIMEOUT_S:.0f} s: {e}"
                raise SystemExit(msg) from e
        time.sleep(0.5)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    home = Path(os.environ["DAGSTER_HOME"])
    port = free_port()
    module, name = location()
    # The server is our child, and the daemon we become keeps it: same process group, and
    # Linux kills it if the daemon dies (so a SIGKILLed daemon leaves no server behind).
    server = subprocess.Popen(
        code_server(port, module, name),
        cwd=REPO_ROOT,
        preexec_fn=die_with_parent if sys.platform == "linux" else None,
    )
    started = time.monotonic()
    wait_until_serving(port, server)
    log.info("code server on 127.0.0.1:%d up in %.1f s", port, time.monotonic() - started)
    workspace = home / "workspace.yaml"
    workspace.write_text(workspace_yaml(port, name))
    daemon = str(Path(sys.executable).parent / "dagster-daemon")
    sys.stdout.flush()
    os.execv(daemon, [daemon, "run", "-w", str(workspace)])  # noqa: S606 (fixed argv, no shell)


if __name__ == "__main__":
    main()
