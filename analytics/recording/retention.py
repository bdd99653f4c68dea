"""Retention of recordings, snapshots and clips: at most ``alerts.retention_days`` (15 days, the legal maximum),
legal holds excepted, and an early purge when the recordings' disk runs low.

:class:`Retention` is run by the run's housekeeping thread (:mod:`analytics.pipeline.alert_side`):

* :meth:`Retention.purge` (e.g. every 10 minutes; material outlives its limit by at most that period) deletes
  every segment whose ``wall_end`` is older than the retention and is not under a requisition's legal hold
  (file and index row), then the alerts unchanged for that long that are not on legal hold, with their snapshot
  and clip (:meth:`AlertStore.purge`), then **orphan files**: segment files (or temporary files of a crash)
  older than the retention that the index does not know (a segment whose indexing failed, a row removed before
  its file), so nothing unheld outlives the limit on disk either.
* :meth:`Retention.check_disk` (e.g. every 30 s, and at once when a segment write fails with ENOSPC): when the
  recordings' disk has less than ``min_free_gb`` free, the oldest unheld segments are deleted until it is back
  above the floor (or none is left), the purge is audited, and a **health alert** is raised in the operators'
  queue: camera ``system``, kind ``storage``, rule ``disk``, severity 1, evidence ``{free_gb, floor_gb,
  purged_segments, purged_total}``, id ``system:storage:<n>``. While that alert is open, later low-disk checks
  update it instead of raising another. Nothing here raises into the run: errors are logged and retried.

Held material is never deleted: index rows go first through :meth:`RecordingIndex.remove_segments` (which
refuses held segments in its own transaction), and a file is deleted only once its row is gone, so a
requisition created while a purge runs keeps its files. A file whose deletion fails stays as an orphan for the
sweep. GB are 10^9 bytes. Time is injected (``clock``), and so is the disk probe (``disk_usage``).
"""

from __future__ import annotations

import calendar
import logging
import os
import re
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from analytics.alerts.config import MAX_RETENTION_DAYS, AlertsConfig
from analytics.alerts.model import Alert
from analytics.alerts.priority import priority
from analytics.recording.index import RecordingIndex, Segment

log = logging.getLogger(__name__)

GB = 1e9
DAY = 86400.0
SYSTEM_CAMERA = "system"
STORAGE_KIND = "storage"
STORAGE_PREFIX = f"{SYSTEM_CAMERA}:{STORAGE_KIND}"
_DATE_FOLDER = re.compile(r"^\d{8}$")
#: Files the sweep may delete: segments (``<camera>_<UTC start>Z[~n].mp4``) and the temporary files of segments
#: being written (``.<segment name>.<random>.tmp``); group 1 is the start (wall time, UTC) in the name.
_SEGMENT_FILE = re.compile(r"^\.?[A-Za-z0-9_.-]+_(\d{8}T\d{6}\.\d{3})Z(?:~\d+)?\.mp4(?:\.[A-Za-z0-9_]+\.tmp)?$")


def _named_start(name: str) -> float | None:
    """The wall time (Unix seconds) a segment file's name gives for its first frame; None if not a segment's."""
    match = _SEGMENT_FILE.match(name)
    if match is None:
        return None
    stamp, millis = match.group(1).split(".")
    return calendar.timegm(time.strptime(stamp, "%Y%m%dT%H%M%S")) + int(millis) / 1000.0


@dataclass(frozen=True, slots=True)
class PurgeReport:
    """What one :meth:`Retention.purge` deleted: segments (file and row), alerts (with their evidence), orphan
    files; ``cutoff`` is the wall time (Unix seconds) before which unheld material goes."""

    cutoff: float
    segments: int
    alerts: int
    orphans: int


@dataclass(frozen=True, slots=True)
class DiskReport:
    """One low-disk check that acted: free space before and after (GB), the floor, segments purged, the health
    alert raised or updated (None if saving it failed)."""

    free_before_gb: float
    free_gb: float
    floor_gb: float
    purged_segments: int
    alert_id: str | None


class Retention:
    """Purges past retention and on a full disk (see the module docstring).

    Args:
        index: the recordings' index (its ``store`` holds the alerts and the audit log).
        evidence_remover: ``remover(alert)`` deletes an alert's snapshot and clip, raising if it cannot (the
            alert is then kept for the next purge; see :meth:`AlertStore.purge`); e.g.
            ``AlertSide._remove_evidence``. None: alerts are purged without touching files.
        retention_days: days material is kept, in ``(0, 15]``.
        min_free_gb: the disk floor, GB; 0 disables the early purge.
        recordings_dir: root folder of the segments (its disk is the one watched).
        clock: wall clock, Unix seconds.
        disk_usage: ``disk_usage(path) -> (total, used, free)`` bytes, like :func:`shutil.disk_usage`.
        alerts_config: for the health alert's priority (zone weights, recency); defaults if None.
        batch: segments per index transaction.

    Raises:
        ValueError: ``retention_days`` outside ``(0, 15]`` (the message names the legal maximum), a negative
            floor or batch below 1.
    """

    def __init__(self, index: RecordingIndex, evidence_remover: Callable[[Alert], Any] | None, *,
                 retention_days: float, min_free_gb: float, recordings_dir: Path,
                 clock: Callable[[], float] = time.time, disk_usage: Callable[[Path], Any] = shutil.disk_usage,
                 alerts_config: AlertsConfig | None = None, batch: int = 500) -> None:
        if not 0 < retention_days <= MAX_RETENTION_DAYS:
            raise ValueError(f"retention_days must be within (0, {MAX_RETENTION_DAYS}]: recordings and alerts may "
                             f"not be kept more than {MAX_RETENTION_DAYS} days (got {retention_days!r})")
        if min_free_gb < 0 or batch < 1:
            raise ValueError(f"min_free_gb must be >= 0 and batch >= 1, got {min_free_gb} and {batch}")
        self.index = index
        self.store = index.store
        self.evidence_remover = evidence_remover
        self.retention_days = retention_days
        self.min_free_gb = float(min_free_gb)
        self.recordings_dir = Path(recordings_dir).resolve()
        self.batch = batch
        self._clock = clock
        self._disk_usage = disk_usage
        self._alerts_config = alerts_config or AlertsConfig()
        self._disk_lock = threading.Lock()
        self._purge_lock = threading.Lock()

    # -- retention -----------------------------------------------------------------------------------------------

    def purge(self) -> PurgeReport:
        """Delete the unheld segments, alerts (with evidence) and orphan files past retention.

        Each part runs even if another fails (logged). Returns what went.
        """
        with self._purge_lock:
            now = self._clock()
            cutoff = now - self.retention_days * DAY
            segments = alerts = orphans = 0
            try:
                segments = self._purge_segments(cutoff, now)
            except Exception:  # noqa: BLE001 - retried at the next purge; the other parts still run
                log.exception("retention: purging segments failed")
            try:
                alerts = self.store.purge(now, self.retention_days, evidence_cb=self.evidence_remover)
            except Exception:  # noqa: BLE001 - retried at the next purge
                log.exception("retention: purging alerts failed")
            try:
                orphans = self._sweep(cutoff)
            except Exception:  # noqa: BLE001 - retried at the next purge
                log.exception("retention: sweeping orphan files failed")
        if segments or alerts or orphans:
            log.info("retention: purged %d segment(s), %d alert(s), %d orphan file(s) older than %g days",
                     segments, alerts, orphans, self.retention_days)
        return PurgeReport(cutoff, segments, alerts, orphans)

    def _purge_segments(self, cutoff: float, now: float) -> int:
        gone = 0
        while due := self.index.purgeable(before=cutoff, limit=self.batch):
            removed = self._remove(due, reason="retention", now=now)
            gone += removed
            if removed == 0 or len(due) < self.batch:
                break
        return gone

    def _remove(self, segments: Sequence[Segment], *, reason: str, now: float) -> int:
        """Remove the rows (held ones are refused by the index), then the files of the rows that went."""
        ids = [s.id for s in segments]
        try:
            self.index.remove_segments(ids, user="system", reason=reason, at=now)
        except Exception:  # noqa: BLE001 - one bad row must not block the others: retry them one by one
            if len(ids) == 1:
                raise
            log.exception("retention: removing %d segments failed; trying them one by one", len(ids))
            for segment_id in ids:
                try:
                    self.index.remove_segments([segment_id], user="system", reason=reason, at=now)
                except Exception:  # noqa: BLE001 - kept (row and file) for the next purge
                    log.exception("retention: cannot remove segment %d from the index; kept", segment_id)
        kept = {s.id for s in self.index.segments(ids=ids)}  # held (or failed) meanwhile: their files stay
        for seg in segments:
            if seg.id not in kept:
                try:
                    Path(seg.path).unlink(missing_ok=True)
                except OSError as err:
                    log.error("retention: cannot delete %s (%s); the sweep retries once it is past retention",
                              seg.path, err)
        return len(ids) - len(kept)

    def _sweep(self, cutoff: float) -> int:
        """Delete segment files that the index does not know, started (by their name) and last modified before
        ``cutoff``.

        Only the date folders up to the cutoff's date (UTC) are read: a later folder holds segments started
        after the cutoff. The name's start time comes from the recorder's clock, like the index's wall times,
        so a file whose start is before the cutoff is either in ``known`` or an orphan.
        """
        root = self.recordings_dir
        if not root.is_dir():
            return 0
        last_day = time.strftime("%Y%m%d", time.gmtime(cutoff))
        folders = [day for camera in root.iterdir() if camera.is_dir() for day in camera.iterdir()
                   if day.is_dir() and _DATE_FOLDER.match(day.name) and day.name <= last_day]
        if not folders:
            return 0
        known = {os.path.normpath(s.path) for s in self.index.segments(until=cutoff)}
        removed = 0
        for folder in folders:
            for path in folder.iterdir():
                start = _named_start(path.name)
                if start is None or start >= cutoff or os.path.normpath(path) in known:
                    continue
                try:
                    if path.is_file() and path.stat().st_mtime < cutoff:
                        path.unlink()
                        removed += 1
                        log.warning("retention: deleted %s: past retention and not in the index", path)
                except OSError as err:
                    log.error("retention: cannot delete the orphan %s: %s", path, err)
            try:
                folder.rmdir()  # only when empty
            except OSError:
                pass
        return removed

    # -- disk floor ----------------------------------------------------------------------------------------------

    def check_disk(self) -> DiskReport | None:
        """If the recordings' disk is below the floor: purge the oldest unheld segments until it is above (or
        none is left), audit it and raise or update the health alert. Returns None when the disk is fine (or a
        check is already running on another thread, or the disk cannot be read: logged). Never raises."""
        if self.min_free_gb <= 0 or not self._disk_lock.acquire(blocking=False):
            return None
        try:
            return self._check_disk()
        except Exception:  # noqa: BLE001 - retried at the next check
            log.exception("retention: the low-disk check failed")
            return None
        finally:
            self._disk_lock.release()

    def _check_disk(self) -> DiskReport | None:
        floor = round(self.min_free_gb * GB)  # bytes
        free = before = self._free_bytes()
        if free >= floor:
            return None
        now = self._clock()
        purged = 0
        while free < floor:
            need = floor - free
            batch: list[Segment] = []
            for seg in self.index.purgeable(limit=self.batch):  # oldest first
                batch.append(seg)
                need -= seg.bytes
                if need <= 0:
                    break
            if not batch:
                break
            removed = self._remove(batch, reason="disk_full", now=now)
            purged += removed
            free = self._free_bytes()
            if removed == 0:
                break
        log.error("retention: the recordings' disk had %.2f GB free, below the %.2f GB floor; purged %d "
                  "segment(s) early, %.2f GB free now", before / GB, self.min_free_gb, purged, free / GB)
        details = {"free_gb_before": before / GB, "free_gb": free / GB, "floor_gb": self.min_free_gb,
                   "purged_segments": purged}
        self.store.audit("system", "recordings.disk_low", str(self.recordings_dir), details, at=now)
        alert_id = self._raise_alert(now, free / GB, purged)
        return DiskReport(before / GB, free / GB, self.min_free_gb, purged, alert_id)

    def _free_bytes(self) -> int:
        path = self.recordings_dir
        while not path.exists() and path.parent != path:  # not created yet: its disk is its parent's
            path = path.parent
        return int(self._disk_usage(path)[2])

    def _raise_alert(self, now: float, free: float, purged: int) -> str | None:
        """Save a new storage health alert, or update the open one; returns its id (None: saving failed)."""
        try:
            current = next((a for a in self.store.list_alerts(camera_id=SYSTEM_CAMERA, open_only=True)
                            if a.kind == STORAGE_KIND), None)
            evidence = {"free_gb": free, "floor_gb": self.min_free_gb, "purged_segments": purged,
                        "purged_total": purged + int((current.evidence if current else {}).get("purged_total", 0))}
            if current is None:
                n = self.store.max_counter(STORAGE_PREFIX) + 1
                alert = Alert(id=f"{STORAGE_PREFIX}:{n}", camera_id=SYSTEM_CAMERA, kind=STORAGE_KIND, rule_id="disk",
                              start=now, end=now, created_at=now, updated_at=now, severity=1.0, score=1.0,
                              evidence=evidence)
            else:
                alert = replace(current, end=now, updated_at=now, evidence=evidence)
            value, breakdown = priority(alert, now, self._alerts_config)
            alert = replace(alert, priority=value, breakdown=breakdown)
            self.store.save_alert(alert)
        except Exception:  # noqa: BLE001 - the purge happened; the alert is retried at the next check
            log.exception("retention: cannot save the storage health alert")
            return None
        return alert.id
