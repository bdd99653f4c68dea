"""Retention with an injected clock: nothing unheld outlives the limit (segments, alerts with their evidence,
orphan files), nothing held is ever deleted, more than 15 days is refused; a full disk purges the oldest unheld
segments early and raises one storage health alert, never an exception."""

from __future__ import annotations

import errno
import os
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from analytics.alerts.config import MAX_RETENTION_DAYS, AlertsConfig
from analytics.alerts.model import Alert, Transition
from analytics.alerts.store import AlertStore
from analytics.config import CameraConfig
from analytics.pipeline.evidence import evidence_paths, remove_evidence
from analytics.recording.config import RecordingConfig
from analytics.recording.index import RecordingIndex
from analytics.recording.retention import GB, Retention
from analytics.recording.segments import SegmentRecorder, segment_path
from analytics.types import Frame, TrackedFrame, Tracks
from analytics.video_io import Mp4Writer

DAY = 86400.0
T0 = 1_750_000_000.0
SEG = 600.0  # segment length in these tests, seconds
SIZE = 1000  # bytes of each fake segment file


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Disk:
    """A fake disk: ``capacity`` bytes, used by the files under ``root`` plus ``other`` bytes."""

    def __init__(self, root: Path, capacity: int, other: int = 0) -> None:
        self.root, self.capacity, self.other = root, capacity, other
        self.calls = 0

    def __call__(self, path: Path) -> tuple[int, int, int]:
        self.calls += 1
        used = self.other + sum(p.stat().st_size for p in self.root.rglob("*") if p.is_file())
        return self.capacity, used, self.capacity - used


@pytest.fixture
def store(tmp_path: Path):
    with AlertStore.open(f"sqlite:///{tmp_path / 'a.db'}") as s:
        yield s


def add(index: RecordingIndex, root: Path, camera: str, wall: float, *, length: float = SEG) -> int:
    """A fake finished segment: its file (``SIZE`` bytes) and its index row."""
    path = segment_path(root, camera, wall)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\0" * SIZE)
    os.utime(path, (wall + length, wall + length))
    return index.add_segment(camera, start=wall, end=wall + length, wall_start=wall, wall_end=wall + length,
                             frames=int(length * 5), size=SIZE, path=path, at=wall + length)


def retention(store: AlertStore, root: Path, clock: Clock, *, days: float = 15, floor_gb: float = 0.0,
              disk=None) -> Retention:
    evidence = root.parent / "evidence"
    return Retention(RecordingIndex(store), lambda alert: _remove(evidence, alert), retention_days=days,
                     min_free_gb=floor_gb, recordings_dir=root, clock=clock,
                     disk_usage=disk or (lambda _p: (10**12, 0, 10**12)))


def _remove(evidence: Path, alert: Alert) -> None:
    if not remove_evidence(evidence, alert.id):
        raise OSError(f"cannot remove the evidence of {alert.id}")


def check_invariants(ret: Retention, now: float, held_ids: set[int], all_ids: set[int]) -> None:
    """After a purge at ``now``: no unheld segment ended before the cutoff, every held one is there (row and
    file), every unheld one inside the retention is there; the files on disk are exactly the rows."""
    cutoff = now - ret.retention_days * DAY
    segs = {s.id: s for s in ret.index.segments()}
    assert held_ids <= set(segs), "a held segment was deleted"
    for s in segs.values():
        assert s.held or s.wall_end >= cutoff, f"segment {s.id} outlived the retention"
    files = {os.path.normpath(p) for p in ret.recordings_dir.rglob("*.mp4")}
    assert files == {os.path.normpath(s.path) for s in segs.values()}


# -- the legal maximum -------------------------------------------------------------------------------------------

def test_sixteen_days_are_refused_with_the_limit_named(store: AlertStore, tmp_path: Path) -> None:
    assert MAX_RETENTION_DAYS == 15
    with pytest.raises(ValidationError, match="at most 15"):
        AlertsConfig(retention_days=16)
    assert AlertsConfig(retention_days=15).retention_days == 15
    with pytest.raises(ValueError, match=r"\(0, 15\].*not be kept more than 15 days \(got 16\)"):
        retention(store, tmp_path / "rec", Clock(), days=16)


# -- retention purge ---------------------------------------------------------------------------------------------

def test_purge_deletes_unheld_material_past_retention_and_keeps_held(store: AlertStore, tmp_path: Path) -> None:
    root, clock = tmp_path / "rec", Clock()
    ret = retention(store, root, clock)
    ids = {(cam, k): add(ret.index, root, cam, T0 + k * SEG) for cam in ("a", "b") for k in range(48)}  # 8 h
    req = ret.index.create_requisition("PV-1", authority="PN", officer="Lt X", reason="theft", cameras=["a"],
                                       start=T0 + 3 * SEG + 1, end=T0 + 5 * SEG - 1, user="sup", at=T0)
    held = {ids[("a", 3)], ids[("a", 4)]}
    assert {s.id for s in ret.index.requisition_segments(req.id)} == held
    all_ids = set(ids.values())
    for step in (0.0, 14 * DAY, 15 * DAY, 15 * DAY + 2 * SEG + 1, 15 * DAY + 4 * SEG, 16 * DAY, 30 * DAY):
        clock.now = T0 + step
        ret.purge()
        check_invariants(ret, clock.now, held, all_ids)
    assert {s.id for s in ret.index.segments()} == held  # 30 days on: only the held segments remain
    reasons = [e.details["reason"] for e in store.audit_entries(action="recordings.purge")]
    assert reasons and set(reasons) == {"retention"}


def test_segments_of_a_released_requisition_fall_back_under_retention(store: AlertStore, tmp_path: Path) -> None:
    root, clock = tmp_path / "rec", Clock()
    ret = retention(store, root, clock)
    ids = [add(ret.index, root, "a", T0 + k * SEG) for k in range(4)]
    ret.index.create_requisition("PV-5", authority="PN", officer="X", reason="y", cameras=["a"], start=T0,
                                 end=T0 + 2 * SEG, user="sup", at=T0)
    clock.now = T0 + 20 * DAY
    assert ret.purge().segments == 2
    assert {s.id for s in ret.index.segments()} == set(ids[:2])
    ret.index.release("PV-5", user="sup", at=clock.now)
    report = ret.purge()
    assert report.segments == 2 and ret.index.segments() == [] and not list(root.rglob("*.mp4"))
    assert not any(root.glob("*/*"))  # empty date folders go too


def test_purge_removes_old_alerts_with_their_evidence_unless_on_legal_hold(store: AlertStore,
                                                                            tmp_path: Path) -> None:
    root, clock = tmp_path / "rec", Clock()
    ret = retention(store, root, clock, days=2)
    for n, hold in ((1, False), (2, True)):
        alert = Alert(id=f"cam:intrusion:{n}", camera_id="cam", kind="intrusion", rule_id="r", start=0.0, end=1.0,
                      created_at=T0, updated_at=T0)
        store.save_alert(alert)
        clip = evidence_paths(tmp_path / "evidence", alert.id)["clip"]
        clip.parent.mkdir(parents=True)
        clip.write_bytes(b"mp4")
        if hold:
            store.set_legal_hold(alert.id, hold=True, user="sup", at=T0)
    clock.now = T0 + 2 * DAY - 1
    assert ret.purge().alerts == 0
    clock.now = T0 + 2 * DAY + 1
    assert ret.purge().alerts == 1
    assert [a.id for a in store.list_alerts()] == ["cam:intrusion:2"]
    assert not evidence_paths(tmp_path / "evidence", "cam:intrusion:1")["clip"].parent.exists()
    assert evidence_paths(tmp_path / "evidence", "cam:intrusion:2")["clip"].is_file()


def test_the_sweep_deletes_orphan_files_past_retention_only(store: AlertStore, tmp_path: Path) -> None:
    root, clock = tmp_path / "rec", Clock(T0 + 20 * DAY)
    ret = retention(store, root, clock)
    held = add(ret.index, root, "a", T0)
    ret.index.create_requisition("PV-2", authority="PN", officer="X", reason="y", cameras=["a"], start=T0,
                                 end=T0 + 1, user="sup", at=T0)
    orphan = segment_path(root, "a", T0 + SEG)  # written, never indexed (the store was down)
    crashed = orphan.with_name(f".{orphan.name}.k3x_9q.tmp")  # a crash while writing
    recent = segment_path(root, "a", T0 + 10 * DAY)  # an orphan still inside the retention
    foreign = orphan.with_name("notes.txt")  # not ours: never touched
    for path, wall in ((orphan, T0 + SEG), (crashed, T0 + SEG), (recent, T0 + 10 * DAY), (foreign, T0)):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
        os.utime(path, (wall + SEG, wall + SEG))
    assert ret.purge().orphans == 2
    assert not orphan.exists() and not crashed.exists()
    assert recent.exists() and foreign.exists() and Path(ret.index.segment(held).path).exists()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(starts=st.lists(st.tuples(st.sampled_from("ab"), st.integers(0, 40 * 24)), min_size=1, max_size=25,
                       unique=True),
       holds=st.lists(st.tuples(st.sampled_from("ab"), st.integers(0, 40 * 24), st.integers(1, 48),
                                st.integers(0, 60 * 24)), max_size=3),
       steps=st.lists(st.integers(0, 24 * 6), min_size=1, max_size=8),
       days=st.sampled_from([1, 7, 15]))
def test_property_nothing_unheld_outlives_the_limit_nothing_held_is_deleted(starts, holds, steps, days) -> None:
    """Segments (hourly slots over 40 days), requisitions created at random hours (some after the segments were
    recorded, some before later segments), purges at random clock steps (10-minute units, some a whole
    retention): after every purge the invariants hold. (Releasing holds: see the test above.)"""
    with tempfile.TemporaryDirectory() as tmp, AlertStore.open(f"sqlite:///{tmp}/a.db") as store:
        root, clock = Path(tmp) / "rec", Clock()
        ret = retention(store, root, clock, days=days)
        pending = sorted(holds, key=lambda h: h[3])
        ids = set()
        for cam, hour in sorted(starts, key=lambda s: s[1]):
            for n, (h_cam, h_hour, hours, created) in enumerate(pending):
                if created <= hour:  # requisitions created before this segment was recorded
                    ret.index.create_requisition(f"R{n}-{created}", authority="PN", officer="X", reason="y",
                                                 cameras=[h_cam], start=T0 + h_hour * 3600.0,
                                                 end=T0 + (h_hour + hours) * 3600.0, user="s", at=T0)
            pending = [h for h in pending if h[3] > hour]
            ids.add(add(ret.index, root, cam, T0 + hour * 3600.0, length=3600.0))
        for n, (h_cam, h_hour, hours, created) in enumerate(pending):
            ret.index.create_requisition(f"late{n}", authority="PN", officer="X", reason="y", cameras=[h_cam],
                                         start=T0 + h_hour * 3600.0, end=T0 + (h_hour + hours) * 3600.0,
                                         user="s", at=T0)
        clock.now = T0 + 40 * 24 * 3600.0
        for step in steps:
            held = {s.id for s in ret.index.segments() if s.held}
            ret.purge()
            check_invariants(ret, clock.now, held, ids)
            clock.now += step * 600.0 + days * DAY * (step % 3 == 0)


# -- disk floor --------------------------------------------------------------------------------------------------

def test_a_full_disk_purges_the_oldest_unheld_early_and_raises_one_health_alert(store: AlertStore,
                                                                                tmp_path: Path) -> None:
    root, clock = tmp_path / "rec", Clock(T0 + DAY)
    floor = 10 * SIZE / GB  # 10 segments' worth of free space
    disk = Disk(root, capacity=26 * SIZE)  # 20 segments: 6 free, 4 to purge
    ret = retention(store, root, clock, floor_gb=floor, disk=disk)
    ids = [add(ret.index, root, "a", T0 + k * SEG) for k in range(20)]
    ret.index.create_requisition("PV-3", authority="PN", officer="X", reason="y", cameras=["a"], start=T0,
                                 end=T0 + SEG - 1, user="sup", at=T0)  # holds the oldest one
    report = ret.check_disk()
    assert report is not None and report.purged_segments == 4
    assert report.free_gb >= floor > report.free_before_gb
    remaining = {s.id for s in ret.index.segments()}
    assert remaining == {ids[0], *ids[5:]}  # the four oldest unheld went; the held one and the newest stayed
    alert = store.get_alert("system:storage:1")
    assert alert is not None and report.alert_id == alert.id
    assert (alert.camera_id, alert.kind, alert.rule_id, alert.severity, alert.status) == (
        "system", "storage", "disk", 1.0, "new")
    assert alert.evidence["purged_segments"] == 4 and alert.evidence["floor_gb"] == floor
    assert alert.evidence["free_gb"] == pytest.approx(10 * SIZE / GB)
    assert alert.priority > 0.5
    assert store.audit_entries(action="recordings.disk_low")[0].details["purged_segments"] == 4
    assert {e.details["reason"] for e in store.audit_entries(action="recordings.purge")} == {"disk_full"}

    assert ret.check_disk() is None  # above the floor now: nothing to do
    disk.other = 3 * SIZE  # more data elsewhere on the disk: low again while the alert is open
    clock.now += 60
    again = ret.check_disk()
    assert again is not None and again.alert_id == "system:storage:1" and again.purged_segments == 3
    updated = store.get_alert("system:storage:1")
    assert updated.evidence["purged_total"] == 7 and updated.updated_at == clock.now
    assert [a.id for a in store.list_alerts(camera_id="system")] == ["system:storage:1"]

    closed = replace(updated, status="closed", verdict="true_alert")
    store.record_transition(closed, Transition(updated.id, "closed", "op", clock.now, verdict="true_alert"))
    disk.other = 6 * SIZE
    assert ret.check_disk().alert_id == "system:storage:2"  # a new incident after the first was closed


def test_a_full_disk_with_nothing_purgeable_still_alerts_and_never_raises(store: AlertStore,
                                                                          tmp_path: Path) -> None:
    root, clock = tmp_path / "rec", Clock()
    disk = Disk(root, capacity=5 * SIZE)
    ret = retention(store, root, clock, floor_gb=10 * SIZE / GB, disk=disk)
    held = add(ret.index, root, "a", T0)
    ret.index.create_requisition("PV-4", authority="PN", officer="X", reason="y", cameras=["a"], start=T0,
                                 end=T0 + 1, user="sup", at=T0)
    report = ret.check_disk()
    assert report is not None and report.purged_segments == 0
    assert ret.index.segment(held) is not None
    assert store.get_alert("system:storage:1").evidence["purged_segments"] == 0

    def broken(_path: Path):
        raise OSError(errno.EIO, "I/O error")

    ret._disk_usage = broken
    assert ret.check_disk() is None  # logged, not raised


def test_enospc_while_writing_a_segment_triggers_the_early_purge(store: AlertStore, tmp_path: Path,
                                                                 monkeypatch) -> None:
    root, clock = tmp_path / "rec", Clock(T0 + DAY)
    disk = Disk(root, capacity=12 * SIZE)
    ret = retention(store, root, clock, floor_gb=4 * SIZE / GB, disk=disk)
    for k in range(10):  # yesterday's segments: 2 free, the floor is 4
        add(ret.index, root, "a", T0 + k * SEG)

    def full(self, image, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Mp4Writer, "write", full)
    camera = CameraConfig(id="a", source="x.mp4", fps=5.0)
    rec = SegmentRecorder(RecordingConfig(enabled=True, segment_seconds=60), root, [camera], ret.index,
                          clock=clock, on_disk_full=ret.check_disk)
    rec.on_frame(TrackedFrame(Frame("a", 0, clock.now, np.zeros((64, 64, 3), np.uint8)), Tracks.empty()))
    assert rec.close(30)
    assert rec.stats()["a"].failed == 1
    assert len(ret.index.segments()) == 8  # the two oldest went
    assert store.get_alert("system:storage:1").evidence["purged_segments"] == 2
