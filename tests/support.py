"""Helpers shared by the tests (on pytest's path through ``pythonpath = ["tests"]`` in pyproject.toml)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterable

from analytics.types import Frame


def free_port() -> int:
    """A loopback TCP port that nothing listens on (just released by the OS)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "the condition") -> None:
    """Poll ``predicate`` until it is true; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


class Consumer:
    """Iterates a source in a daemon thread, keeping the frames and any exception it raised."""

    def __init__(self, source: Iterable[Frame]) -> None:
        self.source = source
        self.frames: list[Frame] = []
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            for frame in self.source:
                self.frames.append(frame)
        except BaseException as err:  # noqa: BLE001 - the tests assert that nothing was raised
            self.error = err

    def stop(self) -> None:
        """Close the source and wait for the thread to end."""
        self.source.close()  # type: ignore[attr-defined]
        self.thread.join(timeout=10)
