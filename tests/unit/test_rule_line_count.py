"""line_count rule: each track counted once per line, with the right direction, despite jitter."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from analytics.geometry import Line, SceneGeometry, position_along, signed_distance
from analytics.rules.base import Event, RuleContext
from analytics.rules.line_count import LineCountConfig, LineCountRule
from analytics.types import CLASS_IDS, PERSON, Tracks, TrackState

W, H = 640, 480
BAND = 10.0
LINE_Y = 240.0  # the line below, in pixels
GEOMETRY = SceneGeometry(lines=[Line(id="gate", a=(0.0, 0.5), b=(1.0, 0.5))])  # positive side: below
CONFIG = LineCountConfig(kind="line_count", id="count", line="gate", hysteresis_px=BAND)


def _tracks(anchors: list[tuple[int, float, float]], *, state: int = TrackState.CONFIRMED) -> Tracks:
    """Tracks whose bottom-centre anchors are (track_id, x, y) in pixels; boxes 40x100, persons."""
    ids = np.array([a[0] for a in anchors], np.int64)
    xy = np.array([[a[1], a[2]] for a in anchors], np.float64).reshape(-1, 2)
    xyxy = np.stack([xy[:, 0] - 20, xy[:, 1] - 100, xy[:, 0] + 20, xy[:, 1]], axis=1)
    n = len(ids)
    return Tracks(ids, xyxy, np.full(n, PERSON), np.ones(n), np.zeros((n, 2)), np.zeros(n), np.full(n, state))


def _run(frames: list[Tracks], rule: LineCountRule | None = None) -> tuple[object, list[Event]]:
    rule = rule or LineCountRule(CONFIG)
    state, events = rule.initial_state(), []
    for seq, tracks in enumerate(frames):
        ctx = RuleContext(camera_id="cam", frame_size=(W, H), seq=seq, geometry=GEOMETRY)
        state, new = rule.step(tracks, state, seq * 0.2, context=ctx)
        events.extend(new)
    return state, events


def _path(direction: int, jitter: list[float], *, cross: bool) -> list[float]:
    """Anchor y: approach from the side opposite ``direction``, jitter around the line, then leave."""
    start = LINE_Y - direction * 60
    end = LINE_Y + direction * 60 if cross else start
    approach = np.linspace(start, LINE_Y, 6).tolist()
    leave = np.linspace(LINE_Y, end, 6).tolist()
    return approach + [LINE_Y + j for j in jitter] + leave


jitters = st.lists(st.floats(-BAND * 0.99, BAND * 0.99, allow_nan=False), min_size=0, max_size=30)


@settings(max_examples=150, deadline=None)
@given(direction=st.sampled_from([1, -1]), jitter=jitters, x=st.floats(10, W - 10))
def test_a_track_crossing_once_with_jitter_is_counted_once(direction, jitter, x):
    frames = [_tracks([(7, x, y)]) for y in _path(direction, jitter, cross=True)]
    state, events = _run(frames)
    assert len(events) == 1
    ev = events[0]
    assert ev.kind == "line_crossing" and ev.line_id == "gate" and ev.member_ids == (7,)
    assert ev.evidence["direction"] == direction and ev.evidence["class"] == "person"
    assert ev.id == "cam:count:0" and ev.status == "closed" and ev.start == ev.end
    assert state.count("person", direction) == 1 and state.count("person", -direction) == 0


@settings(max_examples=150, deadline=None)
@given(direction=st.sampled_from([1, -1]), jitter=jitters)
def test_a_track_that_approaches_and_retreats_is_not_counted(direction, jitter):
    frames = [_tracks([(3, 320.0, y)]) for y in _path(direction, jitter, cross=False)]
    _, events = _run(frames)
    assert events == []


def test_a_track_crossing_back_is_not_counted_again_and_counts_are_per_direction():
    there = [LINE_Y - 50, LINE_Y + 50, LINE_Y - 50, LINE_Y + 50]
    frames = [_tracks([(1, 100.0, y), (2, 500.0, 2 * LINE_Y - y)]) for y in there]
    state, events = _run(frames)
    assert [(e.member_ids, e.evidence["direction"]) for e in events] == [((1,), 1), ((2,), -1)]
    assert [e.id for e in events] == ["cam:count:0", "cam:count:1"]
    assert events[-1].evidence["counts"] == {"person": {"positive": 1, "negative": 1}}


def test_crossing_beside_the_segment_and_lost_tracks_do_not_count():
    short = SceneGeometry(lines=[Line(id="gate", a=(0.0, 0.5), b=(0.5, 0.5))])  # left half only
    rule = LineCountRule(CONFIG)
    state = rule.initial_state()
    for seq, y in enumerate([LINE_Y - 50, LINE_Y + 50]):
        ctx = RuleContext(camera_id="cam", frame_size=(W, H), seq=seq, geometry=short)
        state, events = rule.step(_tracks([(1, 600.0, y)]), state, float(seq), context=ctx)
        assert events == []
    lost = [_tracks([(4, 100.0, LINE_Y - 50)]), _tracks([(4, 100.0, LINE_Y + 50)], state=TrackState.LOST)]
    assert _run(lost)[1] == []


def test_unseen_tracks_are_forgotten_after_forget_after():
    frames = [_tracks([(1, 100.0, LINE_Y - 50)])] + [_tracks([])] * 60
    state, _ = _run(frames)
    assert state.track_id.tolist() == []


@settings(max_examples=50, deadline=None)
@given(ys=st.lists(st.floats(100, 380, allow_nan=False), min_size=1, max_size=20))
def test_step_does_not_mutate_inputs_and_is_deterministic(ys):
    rule = LineCountRule(CONFIG)
    frames = [_tracks([(1, 200.0, y), (2, 300.0, 480 - y)]) for y in ys]
    _, first = _run(frames, rule)
    _, second = _run(frames, rule)
    assert first == second
    state = rule.initial_state()
    for seq, tracks in enumerate(frames):
        ctx = RuleContext(camera_id="cam", frame_size=(W, H), seq=seq, geometry=GEOMETRY)
        before_tracks, before_state = copy.deepcopy(tracks), copy.deepcopy(state)
        new_state, events = rule.step(tracks, state, float(seq), context=ctx)
        again_state, again = rule.step(tracks, state, float(seq), context=ctx)
        for name in ("track_id", "xyxy", "class_id", "state"):
            np.testing.assert_array_equal(getattr(tracks, name), getattr(before_tracks, name))
        for name in ("track_id", "side", "pos", "last_seen", "counted"):
            np.testing.assert_array_equal(getattr(state, name), getattr(before_state, name))
            np.testing.assert_array_equal(getattr(new_state, name), getattr(again_state, name))
        assert (state.counts, state.next_event) == (before_state.counts, before_state.next_event)
        assert events == again
        state = new_state


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"classes": ("dragon",)}, "unknown class"),
        ({"hysteresis_px": -1.0}, "greater than or equal"),
        ({"colour": "red"}, "Extra inputs"),
        ({"kind": "gathering"}, "line_count"),
    ],
)
def test_config_is_strict(kwargs, message):
    data = {"kind": "line_count", "id": "count", "line": "gate", **kwargs}
    with pytest.raises(ValidationError, match=message):
        LineCountConfig.model_validate(data)


def test_unknown_line_names_the_known_ones():
    rule = LineCountRule(CONFIG.model_copy(update={"line": "nope"}))
    ctx = RuleContext(camera_id="cam", frame_size=(W, H), seq=0, geometry=GEOMETRY)
    with pytest.raises(KeyError, match="gate"):
        rule.step(_tracks([(1, 1.0, 1.0)]), rule.initial_state(), 0.0, context=ctx)


def _reference(frames: list[Tracks], times: list[float], config: LineCountConfig) -> tuple[list, list[dict]]:
    """The rule's semantics written plainly: every used row updates its track's memory at every frame.
    Returns the crossings ((frame, track id, direction), ...) and the memory after each frame."""
    line = GEOMETRY.line(config.line)
    wanted = {CLASS_IDS[c] for c in config.classes}
    memory: dict[int, tuple] = {}
    crossings, memories = [], []
    for f, (tracks, now) in enumerate(zip(frames, times, strict=True)):
        dist = signed_distance(tracks.anchor, line, frame_size=(W, H)).tolist()
        anchor = tracks.anchor.tolist()
        new = dict(memory)
        rows = [i for i in range(len(tracks)) if tracks.state[i] != TrackState.LOST and tracks.class_id[i] in wanted]
        for i in sorted(rows, key=lambda r: tracks.track_id[r]):
            tid, d = int(tracks.track_id[i]), dist[i]
            side, px, py, _, counted = memory.get(tid, (0, math.nan, math.nan, -math.inf, False))
            now_side = (1 if d > 0 else -1 if d < 0 else 0) if abs(d) >= config.hysteresis_px else 0
            if not now_side:
                new[tid] = (side, px, py, now, counted)
                continue
            if side and now_side != side and not counted:
                d_prev = float(signed_distance(np.array([[px, py]]), line, frame_size=(W, H))[0])
                q = np.array([px, py]) + d_prev / (d_prev - d) * (np.array(anchor[i]) - [px, py])
                if 0.0 <= float(position_along(q[None], line, frame_size=(W, H))[0]) <= 1.0:
                    crossings.append((f, tid, now_side))
                    counted = True
            new[tid] = (now_side, anchor[i][0], anchor[i][1], now, counted)
        memory = {t: m for t, m in new.items() if now - m[3] <= config.forget_after}
        memories.append(memory)
    return crossings, memories


def _random_frames(seed: int, *, id_offset: int = 0) -> tuple[list[Tracks], list[float]]:
    """Tracks walking up and down across the line with jitter, appearing and leaving, sometimes lost or of
    another class, with gaps in time long enough to forget tracks."""
    rng = np.random.default_rng(seed)
    pool = {}  # track id -> [x, y, vy]
    frames, times, now, next_id = [], [], 0.0, 1
    for _ in range(150):
        now += 0.2 if rng.random() > 0.03 else 2.5
        if rng.random() < 0.3 or not pool:
            pool[next_id] = [rng.uniform(-50, W + 50), rng.uniform(LINE_Y - 80, LINE_Y + 80), rng.choice([-9.0, 9.0])]
            next_id += 1
        for tid in list(pool):
            if rng.random() < 0.04:
                del pool[tid]
        rows = []
        for tid, p in pool.items():
            if rng.random() < 0.1:
                continue  # missing from this frame
            p[1] += p[2] + rng.normal(0, 6)
            if abs(p[1] - LINE_Y) > 90:
                p[2] = -p[2]
            rows.append((tid, p[0], p[1]))
        tracks = _tracks(rows) if rows else _tracks([])
        n = len(tracks)
        state = np.where(rng.random(n) < 0.1, TrackState.LOST, TrackState.CONFIRMED).astype(np.int8)
        cls = np.where(rng.random(n) < 0.1, CLASS_IDS["car"], PERSON).astype(np.int16)
        frames.append(Tracks(tracks.track_id + id_offset, tracks.xyxy, cls, tracks.confidence, tracks.velocity,
                             tracks.age, state))
        times.append(now)
    return frames, times


@pytest.mark.parametrize("seed", range(12))
def test_lazy_memory_matches_a_plain_per_frame_update(seed):
    """The state keeps the last frame's rows aside and applies them only when they change: its memory and
    crossings must be those of updating every track at every frame; also for ids too large for int64 keys."""
    config = CONFIG.model_copy(update={"classes": ("person",), "forget_after": 1.0})
    frames, times = _random_frames(seed)
    crossings, memories = _reference(frames, times, config)
    offset = 1 << 61
    big_frames, _ = _random_frames(seed, id_offset=offset)
    for frame_list, shift in ((frames, 0), (big_frames, offset)):
        rule, state, got = LineCountRule(config), None, []
        state = rule.initial_state()
        for f, (tracks, now) in enumerate(zip(frame_list, times, strict=True)):
            ctx = RuleContext(camera_id="cam", frame_size=(W, H), seq=f, geometry=GEOMETRY)
            state, events = rule.step(tracks, state, now, context=ctx)
            got.extend((f, e.member_ids[0] - shift, e.evidence["direction"]) for e in events)
            assert {t - shift: m for t, m in state.memory.items()} == memories[f]
        assert got == crossings
    assert crossings  # the frames do cross the line
