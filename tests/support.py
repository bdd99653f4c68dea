"""Helpers shared by the tests (on pytest's path through ``pythonpath = ["tests"]`` in pyproject.toml)."""

from __future__ import annotations

import copy
import socket
import threading
import time
from collections.abc import Callable, Iterable

import numpy as np

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


TRACK_FIELDS = ("track_id", "xyxy", "class_id", "confidence", "velocity", "age", "state")


def assert_steps_are_pure(rule, frames, times, contexts) -> None:
    """Step a rule over frames: each step leaves its tracks and the previous state unchanged, and stepping
    again from the same state gives the same state and events (rules are pure)."""
    state = rule.initial_state()
    for tracks, now, context in zip(frames, times, contexts, strict=True):
        before_tracks, before_state = copy.deepcopy(tracks), copy.deepcopy(state)
        new_state, events = rule.step(tracks, state, now, context=context)
        again_state, again = rule.step(tracks, state, now, context=context)
        for name in TRACK_FIELDS:
            np.testing.assert_array_equal(getattr(tracks, name), getattr(before_tracks, name))
        assert state == before_state and new_state == again_state and events == again
        state = new_state
