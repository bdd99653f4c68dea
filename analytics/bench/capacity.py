"""Capacity: how many camera streams at a given analysis rate this machine keeps up with in real time.

A probe runs N cameras as ``analytics run`` does (one shared detector, the runner, and the whole alert side:
alert stage and store, evidence ring buffers and clips, live frames), each camera replaying real footage
paced at media speed (``realtime: true, loop: true``), analysed at ``fps`` frames per second, with the camera
settings and rules of its sequence (sequences taken round-robin). After ``warmup_seconds`` it measures for
``probe_seconds``:

* analysed fps: analysed frames of all cameras per second; the target is ``fps x N``;
* drop ratio: analysis ticks lost because the analysis fell behind (a paced file source skips the frames that
  became stale while its consumer was busy, the file equivalent of a live camera's latest-frame policy),
  over the ticks due; counted exactly from the gaps in the analysed frames' indices;
* event-to-alert latency: for each batch of events that created or updated an alert, from the moment the
  frame the rules fired on was handed over by its source to the moment the alert was saved in the store.

N keeps up when analysed fps >= ``min_fps_ratio`` x target and the drop ratio <= ``max_drop_ratio``. The
search doubles N from 1 until a probe fails (or ``max_streams``), then bisects between the last success and
the first failure. The capacity is the largest N that kept up (0 when even one camera did not).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from analytics.bench.measure import PollingBar, Usage, latency_summary, timed
from analytics.config import CameraConfig, RunConfig
from analytics.types import Frame, SourceStatus

log = logging.getLogger(__name__)


class PacedCapture:
    """Wraps a paced file source: records when each frame is handed over and counts lost analysis ticks.

    ``rate`` is the camera's analysis rate; a frame with index ``seq`` falls on tick
    ``floor(seq * rate / source_fps)``, so a jump of more than one tick between consecutive frames means ticks
    with no analysed frame: frames dropped because the consumer was behind.
    """

    def __init__(self, inner: Any, rate: float, *, keep: int = 256) -> None:
        self._inner = inner
        self.camera_id = inner.camera_id
        self._ratio = rate / float(inner.fps)
        self._keep = keep
        self.frames = 0
        self.missed = 0
        self._last_tick: int | None = None
        self._handed: dict[int, float] = {}
        self._lock = threading.Lock()

    def __iter__(self) -> Iterator[Frame]:
        for frame in self._inner:
            tick = int(frame.seq * self._ratio + 1e-6)
            with self._lock:
                if self._last_tick is not None:
                    self.missed += max(tick - self._last_tick - 1, 0)
                self._last_tick = tick
                self.frames += 1
                self._handed[frame.seq] = time.monotonic()
                if len(self._handed) > self._keep:
                    del self._handed[next(iter(self._handed))]
            yield frame

    def handed_at(self, seq: int) -> float | None:
        """Monotonic time at which frame ``seq`` was handed over, if still remembered."""
        with self._lock:
            return self._handed.get(seq)

    def counters(self) -> tuple[int, int]:
        """(frames handed over, ticks lost) so far."""
        with self._lock:
            return self.frames, self.missed

    def status(self) -> SourceStatus:
        return self._inner.status()

    def close(self) -> None:
        self._inner.close()


def probe_cameras(sequences: list[CameraConfig], n: int, *, fps: float) -> tuple[CameraConfig, ...]:
    """``n`` cameras replaying ``sequences`` round-robin, paced in real time, looping, analysed at ``fps``."""
    cams = []
    for i in range(n):
        base = sequences[i % len(sequences)]
        cams.append(base.model_copy(update={"id": f"{base.id}-{i + 1}", "fps": fps, "realtime": True, "loop": True,
                                            "benchmark": False}))
    return tuple(cams)


class _Probe:
    """One probe's wiring: the runner, the alert side, and the latency and stage records."""

    def __init__(self, cfg: RunConfig, detector: Any, out_dir: Path, rate: float) -> None:
        from analytics.alerts.store import AlertStore
        from analytics.pipeline import Runner
        from analytics.pipeline.alert_side import AlertSide
        from analytics.sources import open_source

        self.captures: dict[str, PacedCapture] = {}

        def open_paced(cam: CameraConfig) -> PacedCapture:
            self.captures[cam.id] = PacedCapture(open_source(cam), rate)
            return self.captures[cam.id]

        self.runner = Runner(cfg, detector, open_source=open_paced, out_dir=out_dir)
        self.current: dict[str, int] = {}
        self.runner.subscribers.append(lambda tracked: self.current.__setitem__(tracked.frame.camera_id,
                                                                                 tracked.frame.seq))
        self.store = AlertStore.open(f"sqlite:///{out_dir / 'alerts.db'}")
        self.side = AlertSide(self.runner, cfg, self.store)
        self.alert_seconds: list[tuple[float, float]] = []  # (when, seconds in the alert stage)
        self.latencies: list[tuple[float, float]] = []  # (when, event-to-alert seconds)
        subs = self.runner.event_subscribers
        subs[subs.index(self.side.stage.process)] = timed(self.side.stage.process, self._record)
        self._pending: list[str] = []

    def _record(self, seconds: float, changes: list) -> None:
        now = time.monotonic()
        self.alert_seconds.append((now, seconds))
        if not changes:
            return
        for camera_id in {c.alert.camera_id for c in changes}:
            cap, seq = self.captures.get(camera_id), self.current.get(camera_id)
            handed = cap.handed_at(seq) if cap is not None and seq is not None else None
            if handed is not None:
                self.latencies.append((now, now - handed))

    def counters(self) -> dict[str, tuple[int, int, int]]:
        """camera id -> (analysed frames, frames handed over, ticks lost)."""
        analysed = {c.camera_id: c.frames for c in self.runner.snapshot()}
        return {cid: (analysed.get(cid, 0), *cap.counters()) for cid, cap in self.captures.items()}

    def close(self) -> None:
        try:
            self.side.close()
        finally:
            self.store.close()


def run_probe(base: RunConfig, cameras: tuple[CameraConfig, ...], detector: Any, *, out_dir: Path, rate: float,
              warmup: float, seconds: float, progress: bool | None = None) -> dict[str, Any]:
    """Run one probe (module docstring) and return its measurements."""
    cfg = base.model_copy(update={"cameras": cameras,
                                  "output": base.output.model_copy(update={"dir": str(out_dir), "mot": False})})
    out_dir.mkdir(parents=True, exist_ok=True)
    probe = _Probe(cfg, detector, out_dir, rate)
    result: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: result.setdefault("report", probe.runner.run()), name="probe-runner",
                              daemon=True)
    started = time.monotonic()
    try:
        thread.start()
        with PollingBar(lambda: min(time.monotonic() - started, warmup + seconds), total=warmup + seconds,
                        desc=f"capacity probe: {len(cameras)} camera(s)", enabled=progress, unit="s", position=1):
            time.sleep(warmup)
            c0, u0, t0 = probe.counters(), Usage.now(), time.monotonic()
            time.sleep(seconds)
            c1, u1, t1 = probe.counters(), Usage.now(), time.monotonic()
    finally:
        probe.runner.stop()
        thread.join(timeout=60)
        probe.close()
    report = result.get("report")
    return _probe_result(len(cameras), rate, c0, c1, t1 - t0, u1.since(u0), probe, t0, t1, report)


def _probe_result(n: int, rate: float, c0: dict, c1: dict, window: float, usage: dict, probe: _Probe, t0: float,
                  t1: float, report: Any) -> dict[str, Any]:
    analysed = sum(c1.get(k, (0, 0, 0))[0] - v[0] for k, v in c0.items())
    missed = sum(c1.get(k, (0, 0, 0))[2] - v[2] for k, v in c0.items())
    failed = [c.camera_id for c in (report.cameras if report else []) if c.error]
    fps = analysed / window if window > 0 else 0.0
    stages: dict[str, list[float]] = {}
    for cam in report.cameras if report else []:
        for name, values in cam.timings.as_dict().items():
            stages.setdefault(name, []).extend(values)
    return {
        "streams": n, "target_fps": rate * n, "analysed_fps": round(fps, 3),
        "fps_ratio": round(fps / (rate * n), 4), "ticks_lost": missed,
        "drop_ratio": round(missed / (analysed + missed), 4) if analysed + missed else 0.0,
        "window_seconds": round(window, 2), **usage, "failed_cameras": failed,
        "event_to_alert": latency_summary([s for w, s in probe.latencies if t0 <= w <= t1]),
        "alert_stage": latency_summary([s for w, s in probe.alert_seconds if t0 <= w <= t1]),
        "stages": {name: latency_summary(v) for name, v in stages.items() if name != "decode"},
    }


def keeps_up(probe: dict[str, Any], *, min_fps_ratio: float, max_drop_ratio: float) -> bool:
    """The probe's cameras were all analysed in real time (module docstring)."""
    return (not probe["failed_cameras"] and probe["fps_ratio"] >= min_fps_ratio
            and probe["drop_ratio"] <= max_drop_ratio)


def search(run: Any, *, max_streams: int, passes: Any) -> tuple[int, list[dict[str, Any]]]:
    """Largest N in [1, max_streams] with ``passes(run(N))``: doubling, then bisection.

    Args:
        run: N -> probe result.
        max_streams: the largest N tried.
        passes: probe result -> bool.

    Returns:
        (capacity, the probes in the order they ran); capacity 0 when N = 1 fails.
    """
    probes: list[dict[str, Any]] = []

    def ok(n: int) -> bool:
        probes.append(run(n))
        probes[-1]["keeps_up"] = bool(passes(probes[-1]))
        return probes[-1]["keeps_up"]

    good, bad, n = 0, None, 1
    while n <= max_streams:
        if not ok(n):
            bad = n
            break
        good = n
        if n == max_streams:
            break
        n = min(2 * n, max_streams)
    while bad is not None and bad - good > 1:
        mid = (good + bad) // 2
        if ok(mid):
            good = mid
        else:
            bad = mid
    return good, probes
