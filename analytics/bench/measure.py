"""Small measuring helpers shared by the benchmark runs: percentiles, process CPU and memory, progress bars.

Standard library and numpy only.
"""

from __future__ import annotations

import resource
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


def latency_summary(seconds: Sequence[float]) -> dict[str, float | int]:
    """``count`` and ``p50_ms``, ``p95_ms``, ``mean_ms``, ``max_ms`` of durations given in seconds
    (milliseconds out; NaN-free: an empty input gives count 0 and no percentiles)."""
    if len(seconds) == 0:
        return {"count": 0}
    ms = np.asarray(seconds, dtype=np.float64) * 1e3
    return {"count": int(ms.size), "p50_ms": round(float(np.percentile(ms, 50)), 3),
            "p95_ms": round(float(np.percentile(ms, 95)), 3), "mean_ms": round(float(ms.mean()), 3),
            "max_ms": round(float(ms.max()), 3)}


@dataclass(frozen=True)
class Usage:
    """Process CPU seconds (user + system, all threads) and wall seconds at one instant."""

    cpu: float
    wall: float

    @staticmethod
    def now() -> Usage:
        r = resource.getrusage(resource.RUSAGE_SELF)
        return Usage(r.ru_utime + r.ru_stime, time.perf_counter())

    def since(self, start: Usage) -> dict[str, float]:
        """CPU use between ``start`` and this instant: ``cpu_seconds`` and ``cpu_percent`` (100 = one core busy)."""
        wall = max(self.wall - start.wall, 1e-9)
        cpu = self.cpu - start.cpu
        return {"cpu_seconds": round(cpu, 3), "cpu_percent": round(100.0 * cpu / wall, 1)}


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, MiB (``ru_maxrss``: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024, 1)


def timed(callback: Callable[..., Any], record: Callable[[float, Any], None]) -> Callable[..., Any]:
    """Wrap ``callback`` so each call's wall duration (seconds) and result go to ``record(seconds, result)``."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        result = callback(*args, **kwargs)
        record(time.perf_counter() - t0, result)
        return result

    wrapper.__wrapped__ = callback  # type: ignore[attr-defined]
    return wrapper


class PollingBar:
    """A tqdm bar fed by polling ``count()`` twice a second in a thread; a context manager.

    Args:
        count: returns the current count (frames analysed, seconds elapsed...).
        total: expected final count, or None.
        desc: the bar's label.
        enabled: False shows nothing; None shows it on a terminal only.
        unit: tqdm unit.
    """

    def __init__(self, count: Callable[[], float], *, total: float | None, desc: str, enabled: bool | None = None,
                 unit: str = "frame", position: int = 0) -> None:
        self._count = count
        self._kwargs = {"total": total, "desc": desc, "disable": None if enabled is None else not enabled,
                        "unit": unit, "position": position, "leave": position == 0, "dynamic_ncols": True,
                        "mininterval": 0.5}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._bar = None

    def __enter__(self) -> PollingBar:
        from tqdm import tqdm

        self._bar = tqdm(**self._kwargs)
        self._thread = threading.Thread(target=self._loop, name="bench-progress", daemon=True)
        self._thread.start()
        return self

    def _update(self) -> None:
        value = self._count()
        self._bar.update(value - self._bar.n)

    def _loop(self) -> None:
        while not self._stop.wait(0.5):
            self._update()

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._update()
        self._bar.close()
