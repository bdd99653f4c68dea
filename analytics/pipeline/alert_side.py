"""What a run attaches when its cameras have rules: the alert stage, the evidence recorder, the live frames
and camera health the console shows, and the retention purge.

All of it hangs off the runner's subscriber lists, so the runner itself knows nothing about alerts:

* ``runner.event_subscribers``: :class:`~analytics.pipeline.alerting.AlertStage` (events -> stored alerts);
  each created alert is handed to the evidence recorder;
* ``runner.subscribers``: :class:`~analytics.pipeline.evidence.EvidenceRecorder` (ring buffers, snapshot and
  clip per alert, linked in the store) and :class:`~analytics.pipeline.live.LiveFrameWriter` (the console's
  video wall);
* ``runner.subscribers`` also gets the :class:`~analytics.recording.segments.SegmentRecorder` when
  ``recording.enabled`` (continuous recording, segments indexed in the same store);
* a daemon thread writes the cameras' health for the console every second, checks the recordings' disk floor
  every 30 s and purges segments, alerts and evidence older than ``alerts.retention_days`` every 10 minutes
  (legal holds and requisitions kept; :class:`~analytics.recording.retention.Retention`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from analytics.alerts.store import AlertStore
from analytics.config import RunConfig
from analytics.pipeline.alerting import AlertStage
from analytics.pipeline.evidence import EvidenceRecorder
from analytics.pipeline.live import LiveFrameWriter
from analytics.recording.index import RecordingIndex
from analytics.recording.retention import Retention
from analytics.recording.segments import SegmentRecorder

log = logging.getLogger(__name__)
HEALTH_SECONDS = 1.0
PURGE_SECONDS = 600.0  # material outlives its retention by at most this
DISK_SECONDS = 30.0


def live_dir(cfg: RunConfig, out_dir: Path) -> Path:
    """Where a run writes live frames and camera health (``console.live_dir``, else ``<out>/live``)."""
    return Path(cfg.console.live_dir) if cfg.console.live_dir else out_dir / "live"


def evidence_dir(cfg: RunConfig, out_dir: Path) -> Path:
    """Where a run writes snapshots and clips (``alerts.evidence.dir``, else ``<out>/evidence``)."""
    return Path(cfg.alerts.evidence.dir) if cfg.alerts.evidence.dir else out_dir / "evidence"


def recordings_dir(cfg: RunConfig, out_dir: Path) -> Path:
    """Where a run writes video segments (``recording.dir``, else ``<out>/recordings``)."""
    return Path(cfg.recording.dir) if cfg.recording.dir else out_dir / "recordings"


def signing_key_path(cfg: RunConfig, out_dir: Path) -> Path:
    """The Ed25519 key signing requisition exports (``recording.signing_key``, else
    ``<out>/keys/export_ed25519.pem``)."""
    return Path(cfg.recording.signing_key) if cfg.recording.signing_key else out_dir / "keys" / "export_ed25519.pem"


class AlertSide:
    """Attach alerting to ``runner`` (see the module docstring); :meth:`close` after the run.

    Args:
        runner: the :class:`~analytics.pipeline.runner.Runner` (its subscriber lists and ``snapshot()``).
        cfg: the run config.
        store: the open alert store (not closed here).
        clock: wall clock for alert times, evidence links and the purge.
    """

    def __init__(self, runner: Any, cfg: RunConfig, store: AlertStore, *,
                 clock: Callable[[], float] = time.time) -> None:
        out_dir = Path(runner.out_dir)
        self.store = store
        self._runner = runner
        self._clock = clock
        self.evidence = EvidenceRecorder(cfg.alerts.evidence, evidence_dir(cfg, out_dir), cfg.cameras,
                                         on_saved=self._link)
        self.live = LiveFrameWriter(live_dir(cfg, out_dir), cfg.cameras, fps=cfg.console.live_fps,
                                    max_width=cfg.alerts.evidence.max_width,
                                    jpeg_quality=cfg.alerts.evidence.jpeg_quality)
        self.stage = AlertStage(cfg.alerts, store, cfg.cameras, clock=clock, on_created=self.evidence.on_alert)
        runner.subscribers.extend([self.live.on_frame, self.evidence.on_frame])
        self.index = RecordingIndex(store)
        self.retention = Retention(self.index, self._remove_evidence, retention_days=cfg.alerts.retention_days,
                                   min_free_gb=cfg.recording.min_free_gb,
                                   recordings_dir=recordings_dir(cfg, out_dir), clock=clock,
                                   alerts_config=cfg.alerts)
        self.recorder: SegmentRecorder | None = None
        if cfg.recording.enabled:
            self.recorder = SegmentRecorder(cfg.recording, recordings_dir(cfg, out_dir), cfg.cameras, self.index,
                                            clock=clock, on_disk_full=self.retention.check_disk)
            runner.subscribers.append(self.recorder.on_frame)
        runner.event_subscribers.append(self.stage.process)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._housekeeping, name="alert-housekeeping", daemon=True)
        self._thread.start()

    def _link(self, alert_id: str, kind: str, path: Path) -> None:
        try:
            self.store.add_evidence(alert_id, kind, path, at=self._clock())
        except KeyError:
            log.warning("evidence %s of alert %s written but the alert is gone (purged?)", kind, alert_id)

    def purge(self) -> int:
        """Delete segments, alerts and their evidence past retention (legal holds and requisitions kept);
        returns how many alerts went."""
        return self.retention.purge().alerts

    def _remove_evidence(self, alert: Any) -> None:
        if not self.evidence.remove(alert):
            raise OSError(f"could not remove the evidence of alert {alert.id}")

    def _recording_health(self) -> dict[str, dict[str, int]] | None:
        """Each recorded camera's counters for the console (frames, dropped, segments, failed)."""
        if self.recorder is None:
            return None
        return {cam: {"frames": st.frames, "dropped": st.dropped + st.skipped, "segments": st.segments,
                      "failed": st.failed} for cam, st in self.recorder.stats().items()}

    def _housekeeping(self) -> None:
        next_purge = next_disk = 0.0
        while not self._stop.is_set():
            try:
                self.live.write_health(self._runner.snapshot(), self._recording_health())
                if self.recorder is not None and time.monotonic() >= next_disk:
                    self.retention.check_disk()
                    next_disk = time.monotonic() + DISK_SECONDS
                if time.monotonic() >= next_purge:
                    self.purge()
                    next_purge = time.monotonic() + PURGE_SECONDS
            except Exception:  # noqa: BLE001 - health and purge are retried; they must not stop the run
                log.exception("alert housekeeping failed")
            self._stop.wait(HEALTH_SECONDS)

    def close(self) -> None:
        """Stop housekeeping, finish pending clips and open segments, then write the last health."""
        self._stop.set()
        self._thread.join(timeout=10)
        try:
            self.evidence.close()
        finally:
            if self.recorder is not None:
                self.recorder.close()
        try:
            self.live.write_health(self._runner.snapshot(), self._recording_health())
        except Exception:  # noqa: BLE001 - the last health is informative; closing has done its work
            log.exception("writing the final camera health failed")
