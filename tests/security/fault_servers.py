"""Misbehaving endpoints for the fault tests, on 127.0.0.1 only, bounded in count and time."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager


@contextmanager
def silent_server(*, hold: float = 15.0, max_connections: int = 32) -> Iterator[int]:
    """A TCP server on 127.0.0.1 (an ephemeral port, yielded) that accepts connections and never
    answers: a hung broker, cache or mail server. It accepts at most ``max_connections``, closes
    each one ``hold`` seconds after accepting it (so code without a timeout fails a time bound
    instead of hanging the test run), and closes everything on exit."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(max_connections)
    listener.settimeout(0.05)
    stop = threading.Event()
    held: list[tuple[socket.socket, float]] = []

    def serve() -> None:
        accepted = 0
        while not stop.is_set():
            now = time.monotonic()
            for conn, at in [entry for entry in held if now - entry[1] >= hold]:
                conn.close()
                held.remove((conn, at))
            if accepted >= max_connections:
                time.sleep(0.05)
                continue
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            accepted += 1
            held.append((conn, time.monotonic()))

    thread = threading.Thread(target=serve, name="silent-server", daemon=True)
    thread.start()
    with closing(listener):
        try:
            yield listener.getsockname()[1]
        finally:
            stop.set()
            thread.join(5)
            for conn, _ in held:
                conn.close()


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
