"""abnormal_flow rule: window counts over a line or into a zone, surges and drops against a learned baseline."""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import math
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from analytics.baseline import Baseline, BucketStats, bucket_of, learn_baseline
from analytics.geometry import Line, SceneGeometry, Zone
from analytics.rules.abnormal_flow import (
    AbnormalFlowConfig,
    AbnormalFlowRule,
    FlowCounter,
    WindowCount,
    assess,
    log_tail_probabilities,
)
from analytics.rules.base import Event, RuleContext
from analytics.types import CLASS_IDS, Tracks, TrackState

W, H = 640, 480
FPS = 1.0
CAR, BUS, PERSON = CLASS_IDS["car"], CLASS_IDS["bus"], CLASS_IDS["person"]
GEOMETRY = SceneGeometry(
    lines=[Line(id="gate", a=(0.0, 0.5), b=(1.0, 0.5))],  # y = 240 px; moving down crosses positively
    zones=[Zone(id="plaza", polygon=((0.25, 0.25), (0.75, 0.25), (0.75, 0.75), (0.25, 0.75)))],
)


def _config(**kwargs) -> AbnormalFlowConfig:
    data = {"kind": "abnormal_flow", "id": "flow", "line": "gate", "bucket": "none", **kwargs}
    return AbnormalFlowConfig.model_validate(data)


def _ctx(seq: int = 0) -> RuleContext:
    return RuleContext(camera_id="cam", frame_size=(W, H), seq=seq, geometry=GEOMETRY)


def _tracks(rows: list[tuple[int, float, float, int]], *, state: int = TrackState.CONFIRMED) -> Tracks:
    """Tracks from (track_id, anchor x, anchor y, class id), boxes 40x60 px."""
    ids = np.array([r[0] for r in rows], np.int64)
    xy = np.array([[r[1], r[2]] for r in rows], np.float64).reshape(-1, 2)
    xyxy = np.stack([xy[:, 0] - 20, xy[:, 1] - 60, xy[:, 0] + 20, xy[:, 1]], axis=1)
    n = len(ids)
    return Tracks(ids, xyxy, [r[3] for r in rows], np.ones(n), np.zeros((n, 2)), np.zeros(n), np.full(n, state))


def traffic(start: float, end: float, every: float, *, first_id: int = 1, t0: float = 0.0) -> list[tuple[int, float]]:
    """Spawns (track id, time): one vehicle every ``every`` seconds in [start, end)."""
    times = np.arange(start, end, every)
    return [(first_id + i, t0 + float(s)) for i, s in enumerate(times)]


def frames(spawns: list[tuple[int, float]], *, until: float, t0: float = 0.0, cls: int = CAR,
           frm: float = 0.0) -> Iterator[tuple[float, Tracks]]:
    """Frames at ``FPS`` from ``t0 + frm`` to ``t0 + until``: each spawned vehicle drives down from y=180 to
    y=300 px in 2 s, so it crosses the line at y=240 1-2 s after its spawn."""
    ids = np.array([s[0] for s in spawns], np.int64)
    born = np.array([s[1] for s in spawns], np.float64)
    x = 100.0 + 3 * (ids % 100)
    for k in range(int(round(frm * FPS)), int(round(until * FPS))):
        t = t0 + k / FPS
        age = t - born
        live = (age >= 0) & (age <= 2.0)
        n = int(live.sum())
        y = 180.0 + 60.0 * age[live]
        xyxy = np.stack([x[live] - 20, y - 60, x[live] + 20, y], axis=1)
        yield t, Tracks(ids[live], xyxy, np.full(n, cls), np.ones(n), np.zeros((n, 2)), np.zeros(n),
                        np.full(n, TrackState.CONFIRMED))


def run(rule: AbnormalFlowRule, stream, state=None, seq0: int = 0):
    state = rule.initial_state() if state is None else state
    events: list[Event] = []
    for seq, (t, tracks) in enumerate(stream, start=seq0):
        state, new = rule.step(tracks, state, t, context=_ctx(seq))
        events.extend(new)
    return state, events


def windows_of(config: AbnormalFlowConfig, stream) -> list[WindowCount]:
    counter = FlowCounter(config)
    state, out = counter.initial_state(), []
    for seq, (t, tracks) in enumerate(stream):
        state, window = counter.step(tracks, state, t, context=_ctx(seq))
        if window is not None:
            out.append(window)
    return out


def learn(config: AbnormalFlowConfig, path: Path) -> AbnormalFlowRule:
    """A rule whose baseline was learned on 10 min of steady traffic (a car every 5 s: 12 per minute)."""
    found = windows_of(config, frames(traffic(0, 600, 5.0), until=600))
    learn_baseline(found, config=config, camera_id="cam").save(path)
    return AbnormalFlowRule(config.model_copy(update={"baseline": str(path)}))


@pytest.fixture(scope="module")
def learned(tmp_path_factory) -> AbnormalFlowRule:
    return learn(_config(), tmp_path_factory.mktemp("baseline") / "flow.baseline.json")


# ------------------------------------------------------------------ counting


def test_windows_start_after_a_full_window_and_come_every_hop():
    config = _config(window=60, hop=10)
    found = windows_of(config, frames(traffic(0, 300, 5.0), until=300))
    assert [w.end for w in found] == [60.0 + 10 * k for k in range(24)]
    assert {w.total for w in found} == {12}
    assert found[0].by_class == (("car", 12), ("bus", 0), ("truck", 0), ("motorcycle", 0))
    assert found[0].by_direction == (("positive", 12), ("negative", 0))
    assert found[0].counts() == {"total": 12, "car": 12, "bus": 0, "truck": 0, "motorcycle": 0}


def test_only_configured_classes_are_counted():
    config = _config(classes=("bus",))
    cars = windows_of(config, frames(traffic(0, 120, 5.0), until=120))
    buses = windows_of(config, frames(traffic(0, 120, 5.0), until=120, cls=BUS))
    assert {w.total for w in cars} == {0} and {w.total for w in buses} == {12}


def test_zone_entries_count_each_entry_once():
    config = _config(line=None, zone="plaza", window=10, hop=10)
    inside, outside = (320.0, 240.0), (50.0, 50.0)
    path = [outside, inside, (330.0, 250.0), inside, outside, inside] + [inside] * 15  # enter, jitter, leave, back
    stream = [(k * 0.5, _tracks([(1, *p, CAR), (2, 330.0, 230.0, PERSON)])) for k, p in enumerate(path)]
    tentative = _tracks([(3, *inside, CAR)], state=TrackState.TENTATIVE)
    stream[2] = (stream[2][0], Tracks(*[np.concatenate([getattr(stream[2][1], f.name), getattr(tentative, f.name)])
                                        for f in dataclasses.fields(Tracks)]))
    found = windows_of(config, stream)
    assert [w.total for w in found] == [2]  # two entries of track 1; the person and the tentative track not counted


def test_a_lost_track_is_not_counted_again_on_return():
    config = _config(line=None, zone="plaza", window=10, hop=10)
    inside = (320.0, 240.0)
    stream = [(0.0, _tracks([])), (0.5, _tracks([(1, *inside, CAR)])),
              (1.0, _tracks([(1, *inside, CAR)], state=TrackState.LOST)), (1.5, _tracks([])),
              (2.0, _tracks([(1, *inside, CAR)]))]
    stream += [(2.5 + k * 0.5, _tracks([])) for k in range(20)]
    assert [w.total for w in windows_of(config, stream)] == [1]


# ------------------------------------------------------------------ scoring


@settings(max_examples=100, deadline=None)
@given(mean=st.floats(1.0, 300.0), dispersion=st.floats(1.0, 3.0), u=st.floats(-1.0, 1.0),
       excess=st.floats(6.0, 12.0))
def test_the_flow_score_of_a_surge_beats_that_of_a_normal_window(mean, dispersion, u, excess):
    variance = mean * dispersion
    sd = math.sqrt(variance)
    normal = max(0, round(mean + u * sd))
    surge = math.ceil(mean + excess * sd + 3)
    kw = {"p_value": 0.001, "min_difference": 3.0}
    normal_score, surge_verdict = assess(normal, mean, variance, **kw).score, assess(surge, mean, variance, **kw)
    assert surge_verdict.direction == "surge" and surge_verdict.flagged
    assert surge_verdict.score > normal_score
    assert not assess(normal, mean, variance, **kw).flagged


@settings(max_examples=60, deadline=None)
@given(mean=st.floats(0.0, 80.0), dispersion=st.floats(0.5, 4.0), n=st.integers(0, 200))
def test_tails_are_probabilities_that_overlap_at_the_observed_count(mean, dispersion, n):
    upper, lower = (math.exp(x) for x in log_tail_probabilities(n, mean, mean * dispersion))
    assert 0.0 <= upper <= 1.0 and 0.0 <= lower <= 1.0
    assert upper + lower >= 1.0 - 1e-9  # both tails include P(X = n)
    up_next, _ = (math.exp(x) for x in log_tail_probabilities(n + 1, mean, mean * dispersion))
    assert up_next <= upper + 1e-12


def test_tail_probabilities_match_known_values():
    upper, lower = (math.exp(x) for x in log_tail_probabilities(0, 12.0, 12.0))
    assert upper == 1.0 and lower == pytest.approx(math.exp(-12.0), rel=1e-9)
    upper, _ = (math.exp(x) for x in log_tail_probabilities(2, 1.0, 1.0))
    assert upper == pytest.approx(1 - 2 * math.exp(-1.0), rel=1e-9)
    # negative binomial r=2, p=0.5 (mean 2, variance 4): P(X >= 1) = 1 - p**r = 0.75
    upper, _ = (math.exp(x) for x in log_tail_probabilities(1, 2.0, 4.0))
    assert upper == pytest.approx(0.75, rel=1e-9)


def test_a_tiny_difference_is_not_flagged_and_a_drop_is():
    kw = {"p_value": 0.001, "min_difference": 3.0}
    assert not assess(2, 0.0, 0.0, **kw).flagged  # 2 cars instead of none: below min_difference
    drop = assess(0, 12.0, 12.0, **kw)
    assert drop.direction == "drop" and drop.flagged and 0.5 < drop.score <= 1.0
    assert drop.z_score == pytest.approx(-12 / math.sqrt(12))


# ------------------------------------------------------------------ baseline and events


def test_replaying_the_learned_steady_flow_flags_nothing(learned):
    _, events = run(learned, frames(traffic(0, 600, 5.0), until=600))
    assert events == []


def test_a_surge_after_learning_opens_an_event_that_closes_when_the_flow_returns(learned):
    rule = learned
    spawns = traffic(0, 300, 5.0) + traffic(300, 420, 1.25, first_id=1000) + traffic(420, 900, 5.0, first_id=5000)
    state, events = run(rule, frames(spawns, until=900))
    assert [e.status for e in events][0] == "open" and events[-1].status == "closed"
    assert {e.id for e in events} == {"cam:flow:0"} and {e.kind for e in events} == {"abnormal_flow"}
    opened, closed = events[0], events[-1]
    ev = opened.evidence
    assert ev["direction"] == "surge" and ev["baseline"] == "learned bucket" and ev["expected"] == 12.0
    assert ev["observed"] > 12 + 3 and ev["p_value"] < 0.001 and ev["z_score"] > 3
    assert ev["directions"]["positive"] == ev["observed"] and ev["counts"]["car"] == ev["observed"]
    assert json.loads(json.dumps(ev)) == ev  # plain JSON types
    assert opened.line_id == "gate" and 300 < opened.start + 60 <= 330  # first flagged window, early in the surge
    assert 420 < closed.end < 500 and closed.evidence["direction"] == "surge"  # last flagged window: surge still in it
    assert 0.5 <= closed.score <= 1.0
    assert not state.life.episodes


def test_a_drop_is_flagged_below_the_baseline(learned):
    rule = learned
    spawns = traffic(0, 300, 5.0) + traffic(600, 900, 5.0, first_id=1000)  # nothing from 300 s to 600 s
    _, events = run(rule, frames(spawns, until=900))
    drops = [e for e in events if e.evidence["direction"] == "drop"]
    assert drops and {e.id for e in drops} == {"cam:flow:0"} and drops[-1].status == "closed"
    assert drops[0].evidence["observed"] < 12 - 3 and drops[0].evidence["p_value"] < 0.001
    assert not [e for e in events if e.evidence["direction"] == "surge"]


def test_an_interrupted_stream_does_not_look_like_a_drop(learned):
    rule = learned
    before = frames(traffic(0, 300, 5.0), until=300)
    after = frames(traffic(400, 900, 5.0, first_id=1000), until=900, frm=400)  # no frames 300-400 s
    state, events = run(rule, before)
    _, more = run(rule, after, state=state)
    assert events == [] and more == []


def test_close_at_end_of_stream_closes_an_open_surge(learned):
    rule = learned
    spawns = traffic(0, 200, 5.0) + traffic(200, 400, 1.0, first_id=1000)
    state, events = run(rule, frames(spawns, until=400))
    assert events and events[0].status == "open" and events[-1].status != "closed"
    closed = rule.close(state, 399.5, context=_ctx(799))
    assert [(e.id, e.status) for e in closed] == [("cam:flow:0", "closed")]
    assert closed[0].end == 390.0  # the last evaluated (flagged) window


def test_fixed_thresholds_apply_without_a_baseline():
    rule = AbnormalFlowRule(_config(max_count=20, min_count=5))
    spawns = traffic(0, 200, 5.0) + traffic(200, 300, 1.0, first_id=1000)
    _, events = run(rule, frames(spawns, until=300))
    assert events and events[0].evidence["baseline"] == "fixed threshold"
    assert events[0].evidence["direction"] == "surge" and events[0].evidence["observed"] > 20
    assert events[0].evidence["p_value"] is None and events[0].evidence["expected"] is None
    assert events[0].score == pytest.approx(min(1.0, 0.5 + 0.5 * (events[0].evidence["observed"] - 20) / 20))
    quiet = AbnormalFlowRule(_config(min_count=20))
    _, drops = run(quiet, frames(traffic(0, 200, 5.0), until=200))
    assert drops and drops[0].evidence["direction"] == "drop" and drops[0].start == pytest.approx(0.0)
    assert run(AbnormalFlowRule(_config()), frames(spawns, until=300))[1] == []  # no baseline, no thresholds


def test_a_missing_baseline_warns_and_falls_back(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        rule = AbnormalFlowRule(_config(baseline=str(tmp_path / "nope.json"), max_count=20))
    assert "nope.json" in caplog.text and rule.baseline is None
    _, events = run(rule, frames(traffic(0, 100, 1.0), until=100))
    assert events and events[0].evidence["baseline"] == "fixed threshold"


def test_a_malformed_or_mismatched_baseline_is_an_error_naming_the_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="bad.json"):
        AbnormalFlowRule(_config(baseline=str(bad)))
    rule = learn(_config(window=30.0), tmp_path / "flow.baseline.json")
    with pytest.raises(ValueError, match=r"flow.baseline.json.*window 30.0.*60.0"):
        AbnormalFlowRule(rule.config.model_copy(update={"window": 60.0}))


def _bucketed_rule(tmp_path: Path, **kwargs) -> AbnormalFlowRule:
    config = _config(bucket="hour_of_week", utc_offset_hours=2.0, **kwargs)
    names = ("total", *config.classes)

    def stats(n: int, mean: float) -> BucketStats:
        return BucketStats(n, {k: mean if k in ("total", "car") else 0.0 for k in names}, dict.fromkeys(names, mean))

    baseline = Baseline(camera_id="cam", rule_id="flow", target={"line": "gate"}, classes=config.classes,
                        window=60.0, hop=10.0, bucket="hour_of_week", utc_offset_hours=2.0,
                        buckets={34: stats(10, 50.0), 35: stats(3, 80.0)}, pooled=stats(200, 12.0))
    baseline.save(tmp_path / "b.json")
    return AbnormalFlowRule(config.model_copy(update={"baseline": str(tmp_path / "b.json")}))


def test_bucket_selection_uses_the_local_hour_of_week_and_pools_sparse_buckets(tmp_path):
    tuesday_0830_utc = datetime(2024, 1, 2, 8, 30, tzinfo=timezone.utc).timestamp()
    assert bucket_of(tuesday_0830_utc, "hour_of_week") == 24 + 8
    assert bucket_of(tuesday_0830_utc, "hour_of_week", 2.0) == 24 + 10
    assert bucket_of(tuesday_0830_utc, "hour_of_week", -9.0) == 23  # Monday 23:30 local
    assert bucket_of(tuesday_0830_utc, "hour_of_day", 5.5) == 14
    assert bucket_of(0.0, "hour_of_week") == 3 * 24 and bucket_of(tuesday_0830_utc, "none") == 0
    rule = _bucketed_rule(tmp_path)
    stats, source, bucket = rule.reference(tuesday_0830_utc)  # local 10:30: bucket 34, 10 windows
    assert (source, bucket, stats.mean["total"]) == ("learned bucket", 34, 50.0)
    stats, source, bucket = rule.reference(tuesday_0830_utc + 3600)  # bucket 35 has 3 windows < 6
    assert (source, bucket, stats.mean["total"]) == ("pooled", 35, 12.0)
    stats, source, _ = rule.reference(tuesday_0830_utc + 86400)  # Wednesday: no bucket
    assert source == "pooled"


def test_the_learned_bucket_sets_the_expected_count(tmp_path):
    rule = _bucketed_rule(tmp_path)
    t0 = datetime(2024, 1, 2, 8, 30, tzinfo=timezone.utc).timestamp()  # bucket 34 expects 50 per window
    _, events = run(rule, frames(traffic(0, 200, 5.0, t0=t0), until=200, t0=t0))
    assert events and events[0].evidence["direction"] == "drop"
    assert events[0].evidence["bucket"] == 34 and events[0].evidence["bucket_label"] == "Tue 10:00-11:00"
    assert events[0].evidence["expected_counts"]["car"] == 50.0


# ------------------------------------------------------------------ purity and config


def _freeze(x):
    """A comparable snapshot of nested dataclasses, arrays, mappings and tuples."""
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return (type(x).__name__, tuple(_freeze(getattr(x, f.name)) for f in dataclasses.fields(x)))
    if isinstance(x, np.ndarray):
        return ("array", x.dtype.str, x.shape, x.tobytes())
    if isinstance(x, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in x.items()))
    if isinstance(x, (tuple, list)):
        return tuple(_freeze(v) for v in x)
    return x


@pytest.mark.parametrize("target", [{"line": "gate"}, {"line": None, "zone": "plaza"}])
def test_step_is_pure_and_deterministic(tmp_path, target):
    rule = AbnormalFlowRule(_config(max_count=15, window=10, hop=2, **target))
    spawns = traffic(0, 30, 2.0) + traffic(30, 60, 0.5, first_id=1000)
    stream = list(frames(spawns, until=60))
    first, second = run(rule, stream)[1], run(rule, stream)[1]
    assert first and first == second
    state = rule.initial_state()
    for seq, (t, tracks) in enumerate(stream):
        before_tracks, before_state = _freeze(copy.deepcopy(tracks)), _freeze(copy.deepcopy(state))
        new_state, events = rule.step(tracks, state, t, context=_ctx(seq))
        again_state, again = rule.step(tracks, state, t, context=_ctx(seq))
        assert _freeze(tracks) == before_tracks and _freeze(state) == before_state
        assert _freeze(new_state) == _freeze(again_state) and events == again
        state = new_state


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"zone": "plaza"}, "exactly one of line or zone"),
        ({"line": None}, "exactly one of line or zone"),
        ({"hop": 61.0}, "must not exceed window"),
        ({"window": 5.0}, "greater than or equal to 10"),
        ({"p_value": 0.1}, "less than or equal to 0.05"),
        ({"classes": ("dragon",)}, "unknown class"),
        ({"classes": ("car", "car")}, "distinct"),
        ({"min_count": 10, "max_count": 5}, "exceeds max_count"),
        ({"bucket": "minute"}, "hour_of_week"),
        ({"colour": "red"}, "Extra inputs"),
    ],
)
def test_config_is_strict(kwargs, message):
    with pytest.raises(ValidationError, match=message):
        _config(**kwargs)


def test_config_defaults():
    config = _config()
    assert config.classes == ("car", "bus", "truck", "motorcycle") and (config.window, config.hop) == (60.0, 10.0)
    assert (config.p_value, config.min_difference, config.min_windows) == (0.001, 3.0, 6)
    assert config.max_count is None and config.min_count is None and config.baseline is None


def test_geometry_check_names_the_missing_line_or_zone():
    with pytest.raises(ValueError, match="line 'nope' is not a line.*gate"):
        _config(line="nope").check_geometry(GEOMETRY)
    with pytest.raises(ValueError, match="zone 'nope' is not a zone.*plaza"):
        _config(line=None, zone="nope").check_geometry(GEOMETRY)
    _config().check_geometry(GEOMETRY)
