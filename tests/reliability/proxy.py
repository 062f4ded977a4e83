"""A switchable TCP proxy on 127.0.0.1 for taking a service "down" in a test.

``up``: bytes are piped both ways to the target. ``down``: every open connection is
closed and new ones are accepted and closed at once, so clients see resets and
``Connection reset``/``closed`` errors immediately instead of waiting for timeouts.
Threads, not asyncio: the consumer under test runs its own loop and we want none.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Iterator


class TcpProxy:
    """Forwards ``127.0.0.1:port`` to ``target``; ``down()``/``up()`` switch it."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._is_up = threading.Event()
        self._is_up.set()
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self.connections = 0
        self.refused = 0
        self._thread = threading.Thread(target=self._accept_loop, name="proxy", daemon=True)
        self._thread.start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def down(self) -> None:
        """Refuse service: close every live connection, reset every new one."""
        self._is_up.clear()
        with self._lock:
            socks, self._open = list(self._open), set()
        for s in socks:
            _close(s)

    def up(self) -> None:
        self._is_up.set()

    def close(self) -> None:
        self._closed.set()
        self.down()
        _close(self._listener)
        self._thread.join(timeout=5)

    def _accept_loop(self) -> None:
        self._listener.settimeout(0.2)
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if not self._is_up.is_set():
                self.refused += 1
                _reset(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=3)
            except OSError:
                _reset(client)
                continue
            self.connections += 1
            with self._lock:
                self._open.update((client, upstream))
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(src, dst), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            src.settimeout(None)
            while self._is_up.is_set():
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._open.discard(src)
                self._open.discard(dst)
            _close(src)
            _close(dst)


def _reset(s: socket.socket) -> None:
    """Close with RST (linger 0), the way a crashed or firewalled server looks."""
    with contextlib.suppress(OSError):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    _close(s)


def _close(s: socket.socket) -> None:
    with contextlib.suppress(OSError):
        s.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        s.close()


@contextlib.contextmanager
def tcp_proxy(endpoint: str) -> Iterator[TcpProxy]:
    """A proxy in front of ``http://host:port``; closed on exit."""
    host, port = endpoint.removeprefix("http://").rstrip("/").rsplit(":", 1)
    proxy = TcpProxy(host, int(port))
    try:
        yield proxy
    finally:
        proxy.close()
