"""Flow baselines: buckets, aggregation, JSON round trip and errors, learning from Parquet track logs."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from analytics.baseline import Baseline, BucketStats, bucket_label, bucket_of, learn_baseline, learn_from_track_logs
from analytics.geometry import Line, SceneGeometry, Zone
from analytics.replay import load_frames
from analytics.rules.abnormal_flow import AbnormalFlowConfig, AbnormalFlowRule, FlowCounter, WindowCount
from analytics.rules.base import RuleContext
from analytics.rules.line_count import LineCountConfig
from analytics.tracklog import ParquetTrackWriter
from analytics.types import CLASS_IDS, Frame, TrackedFrame, Tracks, TrackState

W, H = 640, 480
IMAGE = np.zeros((H, W, 3), np.uint8)
GEOMETRY = SceneGeometry(
    lines=[Line(id="gate", a=(0.0, 0.5), b=(1.0, 0.5))],
    zones=[Zone(id="road", polygon=((0.0, 0.3), (1.0, 0.3), (1.0, 0.7), (0.0, 0.7)))],
)
LINE_RULE = AbnormalFlowConfig(kind="abnormal_flow", id="flow", line="gate", bucket="none")
ZONE_RULE = AbnormalFlowConfig(kind="abnormal_flow", id="entries", zone="road", bucket="none", window=30, hop=30)
CAMERA = SimpleNamespace(id="cam", scene=GEOMETRY, rules=(
    LineCountConfig(kind="line_count", id="count", line="gate"), LINE_RULE, ZONE_RULE))


def steady_frames(seconds: float, *, every: float = 5.0, t0: float = 0.0):
    """(timestamp, tracks) at 1 fps: a car every ``every`` s driving down across the line at y=240 px."""
    born = np.arange(0.0, seconds, every)
    ids = np.arange(1, len(born) + 1, dtype=np.int64)
    for t in np.arange(0.0, seconds, 1.0):
        age = t - born
        live = (age >= 0) & (age <= 2.0)
        n = int(live.sum())
        y = 150.0 + 90.0 * age[live]
        xyxy = np.stack([np.full(n, 300.0), y - 50, np.full(n, 340.0), y], axis=1)
        yield t0 + float(t), Tracks(ids[live], xyxy, np.full(n, CLASS_IDS["car"]), np.ones(n), np.zeros((n, 2)),
                                    np.zeros(n), np.full(n, TrackState.CONFIRMED))


def write_log(path: Path, seconds: float) -> Path:
    writer = ParquetTrackWriter(path)
    for seq, (t, tracks) in enumerate(steady_frames(seconds)):
        writer.write(TrackedFrame(Frame("cam", seq, t, IMAGE), tracks))
    writer.close()
    return path


def windows_of(config: AbnormalFlowConfig, stream) -> list[WindowCount]:
    counter = FlowCounter(config)
    state, out = counter.initial_state(), []
    for seq, (t, tracks) in enumerate(stream):
        state, window = counter.step(tracks, state, t, context=RuleContext("cam", (W, H), seq, GEOMETRY))
        if window is not None:
            out.append(window)
    return out


def _window(end: float, car: int, bus: int = 0) -> WindowCount:
    return WindowCount(end, 60.0, car + bus, (("car", car), ("bus", bus), ("truck", 0), ("motorcycle", 0)))


def test_bucket_of_and_labels():
    monday_0000_utc = datetime(2024, 1, 1, tzinfo=timezone.utc).timestamp()
    assert bucket_of(monday_0000_utc, "hour_of_week") == 0
    assert bucket_of(monday_0000_utc - 1, "hour_of_week") == 167  # Sunday 23:59:59
    assert bucket_of(monday_0000_utc + 5 * 86400 + 13 * 3600, "hour_of_week", 1.0) == 5 * 24 + 14
    assert bucket_of(monday_0000_utc + 3600 * 30, "hour_of_day") == 6
    assert bucket_label(24 + 8, "hour_of_week") == "Tue 08:00-09:00"
    assert bucket_label(23, "hour_of_day") == "23:00-24:00" and bucket_label(0, "none") == "all times"
    with pytest.raises(ValueError, match="minute"):
        bucket_of(0.0, "minute")


def test_learn_baseline_aggregates_per_bucket_and_pooled():
    config = LINE_RULE.model_copy(update={"bucket": "hour_of_day"})
    windows = [_window(8 * 3600 + 60 * k, 10 + k % 2 * 4) for k in range(4)]  # 10, 14, 10, 14 at 08h
    windows += [_window(9 * 3600 + 60, 3, bus=1)]  # one window at 09h
    baseline = learn_baseline(windows, config=config, camera_id="cam", created_from=["a.parquet"])
    assert sorted(baseline.buckets) == [8, 9]
    eight = baseline.buckets[8]
    assert eight.windows == 4 and eight.mean["total"] == 12.0 and eight.variance["total"] == pytest.approx(16 / 3)
    assert baseline.buckets[9].mean == {"total": 4.0, "car": 3.0, "bus": 1.0, "truck": 0.0, "motorcycle": 0.0}
    assert baseline.buckets[9].variance["total"] == 0.0  # a single window
    assert baseline.pooled.windows == 5 and baseline.pooled.mean["total"] == pytest.approx(52 / 5)
    assert baseline.target == {"line": "gate"} and baseline.created_from == ("a.parquet",)
    assert (baseline.window, baseline.hop, baseline.bucket) == (60.0, 10.0, "hour_of_day")


def test_save_load_round_trip(tmp_path):
    windows = [_window(3600.0 * h + 30, 5 + h) for h in range(30)]
    baseline = learn_baseline(windows, config=LINE_RULE.model_copy(update={"bucket": "hour_of_week"}),
                              camera_id="cam", created_from=["x.tracks.parquet"])
    path = tmp_path / "deep" / "flow.json"
    baseline.save(path)
    loaded = Baseline.load(path)
    assert loaded == baseline
    assert loaded.to_json() == json.loads(path.read_text())
    assert loaded.buckets[72] == BucketStats(1, loaded.buckets[72].mean, {k: 0.0 for k in loaded.buckets[72].mean})


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.update(version=2), "version"),
        (lambda d: d.pop("hop"), "missing.*hop"),
        (lambda d: d.update(bucket="minute"), "bucket"),
        (lambda d: d.update(target={"area": "x"}), "target"),
        (lambda d: d["pooled"]["variance"].update(total=-1.0), "pooled.variance.total"),
        (lambda d: d["buckets"].update({"999": d["pooled"]}), "outside 0-167"),
        (lambda d: d["buckets"].update({"x": d["pooled"]}), "not a bucket number"),
        (lambda d: d["pooled"].pop("mean"), "pooled"),
        (lambda d: d.update(created_from="a.parquet"), "created_from"),
    ],
)
def test_a_malformed_file_names_the_file_and_the_key(tmp_path, edit, message):
    baseline = learn_baseline([_window(10.0, 3)], config=LINE_RULE.model_copy(update={"bucket": "hour_of_week"}),
                              camera_id="cam")
    data = baseline.to_json()
    edit(data)
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=rf"broken.json.*{message}"):
        Baseline.load(path)


def test_a_file_that_is_not_json_names_the_file(tmp_path):
    path = tmp_path / "junk.json"
    path.write_text("[1, 2")
    with pytest.raises(ValueError, match="junk.json is not valid JSON"):
        Baseline.load(path)
    with pytest.raises(FileNotFoundError):
        Baseline.load(tmp_path / "absent.json")


def test_learn_from_track_logs_replays_the_rule_counting(tmp_path):
    log = write_log(tmp_path / "cam.tracks.parquet", 600)
    found = learn_from_track_logs([log], CAMERA)
    assert list(found) == ["flow", "entries"]
    line = found["flow"]
    # windows end at 60, 70, ..., 590 s (the last frame is at 599 s)
    assert line.pooled.windows == 54 and line.pooled.mean["total"] == 12.0 and line.pooled.variance["total"] == 0.0
    assert line.camera_id == "cam" and line.rule_id == "flow" and line.created_from == (str(log),)
    direct = learn_baseline(windows_of(LINE_RULE, steady_frames(600)), config=LINE_RULE, camera_id="cam",
                            created_from=[str(log)])
    assert line == direct  # the learner counts exactly as the rule does
    entries = found["entries"]
    assert entries.target == {"zone": "road"} and entries.pooled.windows == 19
    assert entries.pooled.mean["total"] == 6.0


def test_a_learned_baseline_flags_nothing_on_its_own_log_and_two_logs_pool(tmp_path):
    a = write_log(tmp_path / "a.tracks.parquet", 600)
    b = write_log(tmp_path / "b.tracks.parquet", 300)
    baseline = learn_from_track_logs([a, b], CAMERA, "flow")["flow"]
    assert baseline.pooled.windows == 54 + 24 and baseline.created_from == (str(a), str(b))
    baseline.save(tmp_path / "flow.json")
    rule = AbnormalFlowRule(LINE_RULE.model_copy(update={"baseline": str(tmp_path / "flow.json")}))
    state, events = rule.initial_state(), []
    for f in load_frames(a):
        state, new = rule.step(f.tracks, state, f.timestamp, context=RuleContext("cam", f.frame_size, f.seq, GEOMETRY))
        events.extend(new)
    assert events == []


def test_learn_from_track_logs_errors(tmp_path):
    short = write_log(tmp_path / "short.tracks.parquet", 40)
    with pytest.raises(ValueError, match="no abnormal_flow rule 'nope'.*'flow', 'entries'"):
        learn_from_track_logs([short], CAMERA, "nope")
    with pytest.raises(ValueError, match="'flow'.*no full window of 60 s"):
        learn_from_track_logs([short], CAMERA, "flow")
    bare = SimpleNamespace(id="cam", scene=SceneGeometry(), rules=(LINE_RULE,))
    with pytest.raises(ValueError, match="line 'gate' is not a line"):
        learn_from_track_logs([short], bare)
