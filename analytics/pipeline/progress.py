"""Live per-camera progress display (rich table on a terminal, a log line every few seconds otherwise)."""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable

from analytics.pipeline.runner import CameraReport
from analytics.types import Health

log = logging.getLogger(__name__)

_STYLE = {Health.ONLINE: "green", Health.DEGRADED: "yellow", Health.OFFLINE: "red", Health.FAILED: "bold red",
          Health.FINISHED: "cyan", Health.STARTING: "dim"}


def render(reports: list[CameraReport]):
    """A rich Table of the camera counters."""
    from rich.table import Table

    table = Table(title="cameras", expand=False)
    for col in ("camera", "health", "frames", "fps", "dropped", "tracks", "reconnects", "error"):
        table.add_column(col, justify="right" if col not in ("camera", "health", "error") else "left")
    for r in reports:
        table.add_row(r.camera_id, f"[{_STYLE.get(r.health, '')}]{r.health.value}", str(r.frames),
                      f"{r.fps:.1f}", str(r.dropped), str(r.tracks), str(r.reconnects), (r.error or "")[:60])
    return table


def summary_line(r: CameraReport) -> str:
    err = f" error={r.error}" if r.error else ""
    return (f"{r.camera_id}: {r.health.value} frames={r.frames} fps={r.fps:.1f} dropped={r.dropped} "
            f"tracks={r.tracks} reconnects={r.reconnects}{err}")


class Progress:
    """Shows ``snapshot()`` twice a second until stopped. Use as a context manager around ``Runner.run``."""

    def __init__(self, snapshot: Callable[[], list[CameraReport]], *, enabled: bool = True,
                 log_every: float = 10.0) -> None:
        self._snapshot = snapshot
        self._enabled = enabled
        self._tty = sys.stderr.isatty()
        self._log_every = log_every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="progress", daemon=True)

    def _loop(self) -> None:
        if self._tty:
            from rich.console import Console
            from rich.live import Live

            with Live(render(self._snapshot()), console=Console(stderr=True), refresh_per_second=2) as live:
                while not self._stop.wait(0.5):
                    live.update(render(self._snapshot()))
                live.update(render(self._snapshot()))
        else:
            while not self._stop.wait(self._log_every):
                for r in self._snapshot():
                    log.info("%s", summary_line(r))

    def __enter__(self) -> Progress:
        if self._enabled:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
