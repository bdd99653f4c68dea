"""Pieces of the measured runs that need no footage: the runner's per-stage timings (fake source and detector),
the frame limit, lost analysis ticks of a paced source, the capacity criteria and search."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from analytics.bench.capacity import PacedCapture, keeps_up, probe_cameras, search
from analytics.bench.measure import latency_summary
from analytics.bench.pipeline import LimitedSource
from analytics.config import CameraConfig, parse_config
from analytics.pipeline import Runner
from analytics.pipeline.timing import STAGES, StageTimes
from analytics.types import Detections, Frame, Health, SourceStatus


class FakeSource:
    """Frames with the given indices (``seqs``), one person box moving right."""

    def __init__(self, camera_id: str, seqs: list[int], *, fps: float = 10.0) -> None:
        self.camera_id, self.seqs, self.fps = camera_id, seqs, fps
        self.closed = False
        self.iterated = 0

    def __iter__(self):
        for seq in self.seqs:
            if self.closed:
                return
            self.iterated += 1
            image = np.zeros((120, 160, 3), np.uint8)
            image[0, 0, 0] = seq % 256
            yield Frame(self.camera_id, seq, seq / self.fps, image)

    def status(self) -> SourceStatus:
        return SourceStatus(self.camera_id, Health.ONLINE)

    def close(self) -> None:
        self.closed = True


class FakeDetector:
    name = "fake"

    def detect(self, frames):
        return [Detections([[10.0 + 5 * int(im[0, 0, 0]), 20, 30.0 + 5 * int(im[0, 0, 0]), 80]], [0.9], [0])
                for im in frames]

    def close(self) -> None:
        pass


def test_the_runner_records_every_stage_of_every_frame(tmp_path: Path) -> None:
    data = {"cameras": [{"id": "a", "source": "a.mp4", "tracker": {"min_hits": 1},
                         "scene": {"lines": [{"id": "l", "a": [0.5, 0.0], "b": [0.5, 1.0]}]},
                         "rules": [{"kind": "line_count", "id": "count", "line": "l", "classes": ["person"]}]},
                        {"id": "b", "source": "b.mp4"}],
            "detector": {"batch": 4}, "output": {"dir": str(tmp_path / "out")}}
    cfg = parse_config(data, path=tmp_path / "c.yaml", base=tmp_path)
    runner = Runner(cfg, FakeDetector(), open_source=lambda cam: FakeSource(cam.id, list(range(20))))
    report = runner.run()
    a, b = report.cameras
    for cam in (a, b):
        for stage in ("decode", "detect", "track", "sinks"):
            values = cam.timings.values(stage)
            assert len(values) == 20 and all(v >= 0 for v in values), (cam.camera_id, stage)
    assert len(a.timings.values("rules")) == 20 and b.timings.values("rules") == []  # b has no rules
    assert a.events >= 1 and len(a.timings.values("events")) == a.events  # one crossing -> one frame with events
    assert sum(n for n, _ in report.detect_batches) == 40


def test_stage_times_are_bounded_and_named() -> None:
    t = StageTimes(maxlen=3)
    for v in range(5):
        t.add("detect", float(v))
    assert t.values("detect") == [2.0, 3.0, 4.0] and set(t.as_dict()) == set(STAGES)
    with pytest.raises(ValueError, match="unknown stage 'infer'"):
        t.add("infer", 1.0)


def test_latency_summary_in_milliseconds() -> None:
    s = latency_summary([0.01] * 19 + [0.1])
    assert s["count"] == 20 and s["p50_ms"] == 10.0 and s["max_ms"] == 100.0 and 10.0 < s["p95_ms"] <= 100.0
    assert latency_summary([]) == {"count": 0}


def test_limited_source_stops_after_max_frames_without_reading_more() -> None:
    inner = FakeSource("a", list(range(100)))
    frames = list(LimitedSource(inner, 7))
    assert [f.seq for f in frames] == list(range(7)) and inner.iterated == 7
    with pytest.raises(ValueError, match="max_frames must be >= 1"):
        LimitedSource(inner, 0)


def test_paced_capture_counts_lost_analysis_ticks() -> None:
    # 10 fps source analysed at 5 fps: every 2nd frame is due; 4 -> 10 skips ticks 3 and 4, 12 -> 17 skips 7.
    inner = FakeSource("a", [0, 2, 4, 10, 12, 17, 18])
    cap = PacedCapture(inner, 5.0)
    assert [f.seq for f in cap] == [0, 2, 4, 10, 12, 17, 18]
    assert cap.counters() == (7, 3)
    assert cap.handed_at(10) is not None and cap.handed_at(11) is None


def test_probe_cameras_replay_sequences_round_robin_in_real_time() -> None:
    seqs = [CameraConfig(id="p", source="/p", fps=None, benchmark=True), CameraConfig(id="q", source="/q.mp4")]
    cams = probe_cameras(seqs, 3, fps=5.0)
    assert [c.id for c in cams] == ["p-1", "q-2", "p-3"]
    assert all(c.realtime and c.loop and not c.benchmark and c.fps == 5.0 for c in cams)


def _probe(n: int, fps: float, drop: float = 0.0, failed: tuple = ()) -> dict:
    return {"streams": n, "fps_ratio": fps, "drop_ratio": drop, "failed_cameras": list(failed)}


@pytest.mark.parametrize("probe, ok", [
    (_probe(2, 0.96), True), (_probe(2, 0.94), False), (_probe(2, 1.0, drop=0.02), False),
    (_probe(2, 1.0, failed=("x",)), False)])
def test_keeps_up_needs_the_rate_and_next_to_no_drops(probe: dict, ok: bool) -> None:
    assert keeps_up(probe, min_fps_ratio=0.95, max_drop_ratio=0.01) is ok


@pytest.mark.parametrize("true_capacity, max_streams, tried", [
    (5, 16, [1, 2, 4, 8, 6, 5]),
    (0, 16, [1]),
    (16, 16, [1, 2, 4, 8, 16]),
    (12, 12, [1, 2, 4, 8, 12]),
    (9, 12, [1, 2, 4, 8, 12, 10, 9]),
])
def test_capacity_search_doubles_then_bisects(true_capacity: int, max_streams: int, tried: list[int]) -> None:
    capacity, probes = search(lambda n: {"streams": n}, max_streams=max_streams,
                              passes=lambda p: p["streams"] <= true_capacity)
    assert capacity == true_capacity
    assert [p["streams"] for p in probes] == tried
    assert all(p["keeps_up"] == (p["streams"] <= true_capacity) for p in probes)


def test_a_failing_worker_reports_its_error_to_the_suite(tmp_path: Path) -> None:
    from analytics.bench.suite import run_worker

    result = run_worker({"kind": "rehearsal"}, tmp_path, "broken")
    assert result["error"] == ("ValueError: unknown benchmark job kind 'rehearsal'; expected pipeline, baseline or "
                               "capacity")
    assert set(result["load_average"]) == {"before", "after"}
