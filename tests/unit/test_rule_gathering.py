"""gathering rule: one event per group of still people that lasts, none for walkers, stable group identity.

Scales are those of a real camera: a 768x576 frame, person boxes ~40x100 px (1.7 m / 100 px = 0.017 m per
pixel without calibration, so 2 m is ~118 px), 7 frames per second.
"""

from __future__ import annotations

import math
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from analytics.geometry import GroundCalibration, SceneGeometry, Zone
from analytics.rules.base import Event, RuleContext
from analytics.rules.gathering import (
    GatheringConfig,
    GatheringRule,
    GatheringState,
    GroupMemory,
    connected_components,
    match_groups,
)
from analytics.types import CLASS_IDS, PERSON, Tracks, TrackState
from support import assert_steps_are_pure

W, H = 768, 576
DT = 1 / 7
MPP = 1.7 / 100  # metres per pixel of the person-height fallback for 100 px boxes
CENTRE = np.array([384.0, 400.0])  # pixels: scene positions in metres are relative to this anchor
GEOMETRY = SceneGeometry()
CONFIG = GatheringConfig(kind="gathering", id="gather")
#: 0.05 m per pixel, the same along both axes: 768 x 576 px -> 38.4 x 28.8 m.
CALIBRATED = SceneGeometry(calibration=GroundCalibration(
    image_points=((0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)),
    ground_points=((0.0, 0.0), (38.4, 0.0), (38.4, 28.8), (0.0, 28.8))))
CAL_MPP = 0.05
EMPTY = Tracks.empty()


def _tracks(ids, xy_m, vel_mps=None, *, state=TrackState.CONFIRMED, scale: float = MPP, box_h=100.0,
            class_id: int = PERSON) -> Tracks:
    """Person tracks at ground positions ``xy_m`` (metres from CENTRE, image axes), velocities in m/s.

    The anchor is CENTRE + xy_m / scale pixels and the velocity ``vel_mps / scale`` px/s, so the fallback
    scale (1.7 m / box height) or a calibration of ``scale`` m/px reads the metres back.
    """
    ids = np.asarray(ids, np.int64)
    n = len(ids)
    anchor = CENTRE + np.asarray(xy_m, np.float64).reshape(n, 2) / scale
    vel = np.zeros((n, 2)) if vel_mps is None else np.asarray(vel_mps, np.float64).reshape(n, 2) / scale
    h = np.broadcast_to(np.asarray(box_h, np.float64), (n,))
    xyxy = np.stack([anchor[:, 0] - 20, anchor[:, 1] - h, anchor[:, 0] + 20, anchor[:, 1]], axis=1)
    states = np.broadcast_to(np.asarray(state, np.int8), (n,))
    return Tracks(ids, xyxy, np.full(n, class_id), np.ones(n), vel, np.full(n, 50), states)


def _ctx(seq: int, geometry: SceneGeometry = GEOMETRY) -> RuleContext:
    return RuleContext(camera_id="cam", frame_size=(W, H), seq=seq, geometry=geometry)


def _run(frames: list[Tracks], config: GatheringConfig = CONFIG, *, t0: float = 0.0,
         geometry: SceneGeometry = GEOMETRY, close: bool = True) -> tuple[GatheringState, list[Event]]:
    """Step the rule over frames at 7 fps from ``t0``; then close() at the last frame time if asked."""
    rule = GatheringRule(config)
    state, events = rule.initial_state(), []
    now = t0
    for seq, tracks in enumerate(frames):
        now = t0 + seq * DT
        state, new = rule.step(tracks, state, now, context=_ctx(seq, geometry))
        events.extend(new)
    if close:
        events.extend(rule.close(state, now, context=_ctx(len(frames), geometry)))
    return state, events


def _frames(seconds: float) -> int:
    return int(round(seconds / DT))


def _still(ids, xy_m, seconds: float, **kwargs) -> list[Tracks]:
    """People standing still at ``xy_m`` for ``seconds``."""
    return [_tracks(ids, xy_m, **kwargs)] * _frames(seconds)


def _moving(ids, xy_m, vel_mps: tuple[float, float], seconds: float, **kwargs) -> list[Tracks]:
    """People walking together at ``vel_mps`` (m/s, image axes) from ``xy_m``, velocity set to match."""
    n, v = len(ids), np.asarray(vel_mps)
    return [_tracks(ids, np.asarray(xy_m) + v * k * DT, np.tile(v, (n, 1)), **kwargs) for k in range(_frames(seconds))]


def _by_status(events: list[Event], status: str) -> list[Event]:
    return [e for e in events if e.status == status]


TRIANGLE = [(0.0, 0.0), (1.0, 0.0), (0.5, 0.8)]  # metres: three people ~1 m apart


def _assert_one_event(events: list[Event]) -> tuple[Event, Event]:
    """Exactly one gathering: first record open, last closed, every record with the same id."""
    assert len(_by_status(events, "open")) == 1 and len(_by_status(events, "closed")) == 1, events
    assert events[0].status == "open" and events[-1].status == "closed"
    assert len({e.id for e in events}) == 1
    assert all(e.kind == "gathering" and e.rule_id == "gather" and e.camera_id == "cam" for e in events)
    return events[0], events[-1]


# ------------------------------------------------------------------------------------------------------
# properties required by the issue
# ------------------------------------------------------------------------------------------------------


def _disc(rng: np.random.Generator, n: int, radius: float) -> np.ndarray:
    r = radius * np.sqrt(rng.uniform(0, 1, n))
    a = rng.uniform(0, 2 * np.pi, n)
    return np.stack([r * np.cos(a), r * np.sin(a)], axis=1)


def _jittered(rng: np.random.Generator, ids, home: np.ndarray) -> Tracks:
    """A standing crowd: +-5 cm anchor jitter, +-2 px box height, a small velocity noise (~5 cm/s)."""
    n = len(ids)
    return _tracks(ids, home + rng.uniform(-0.05, 0.05, (n, 2)), rng.normal(0, 0.05, (n, 2)),
                   box_h=100 + rng.uniform(-2, 2, n))


@settings(max_examples=40, deadline=None)
@given(min_people=st.integers(3, 5), extra=st.integers(0, 4), hold=st.floats(1.0, 15.0), lead=st.integers(0, 20),
       t0=st.floats(0.0, 1e5), leave=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_a_stationary_group_fires_exactly_one_event(min_people, extra, hold, lead, t0, leave, seed):
    rng = np.random.default_rng(seed)
    cfg = CONFIG.model_copy(update={"min_people": min_people})
    n = min_people + extra
    ids = np.arange(n) + 10
    home = _disc(rng, n, 0.4 * cfg.radius_m)  # all pairs within 0.8 * radius
    group = [_jittered(rng, ids, home) for _ in range(_frames(cfg.min_duration + hold))]
    tail = [EMPTY] * _frames(cfg.end_grace + 1) if leave else []
    _, events = _run([EMPTY] * lead + group + tail, cfg, t0=t0)
    opened, closed = _assert_one_event(events)
    first, last = t0 + lead * DT, t0 + (lead + len(group) - 1) * DT
    assert opened.start == pytest.approx(first) and closed.start == pytest.approx(first)
    # opens on the first frame with min_duration held (one frame later when frame times round down)
    assert cfg.min_duration - 1e-6 <= opened.end - opened.start <= cfg.min_duration + DT + 1e-6
    assert closed.end == pytest.approx(last)
    assert all(e.member_ids == tuple(ids) for e in events) and opened.classes == ("person",) * n
    assert opened.evidence["size"] == n and opened.evidence["unit"] == "person-height fallback"
    assert 0.0 <= opened.score <= 1.0


@settings(max_examples=40, deadline=None)
@given(n=st.integers(3, 10), seed=st.integers(0, 2**32 - 1), t0=st.floats(0.0, 1e5))
def test_walkers_crossing_each_other_fire_nothing(n, seed, t0):
    """Walkers at >= 1 m/s through a common point; min_duration 1 s, so only the speed test stops them."""
    rng = np.random.default_rng(seed)
    cfg = CONFIG.model_copy(update={"min_duration": 1.0})
    angle = rng.uniform(0, 2 * np.pi, n)
    vel = rng.uniform(1.0, 2.0, n)[:, None] * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    meet = rng.uniform(-0.3, 0.3, n)  # seconds: when each walker passes the common point
    times = np.arange(-4.0, 4.0, DT)
    frames = [_tracks(np.arange(1, n + 1), vel * (t - meet)[:, None], vel) for t in times]
    rule = GatheringRule(cfg)
    state = rule.initial_state()
    for seq, tracks in enumerate(frames):
        state, events = rule.step(tracks, state, t0 + seq * DT, context=_ctx(seq))
        assert events == [] and state.groups == () and not state.timers
    assert rule.close(state, t0 + len(frames) * DT, context=_ctx(len(frames))) == []


@settings(max_examples=30, deadline=None)
@given(min_people=st.integers(3, 5), swaps=st.lists(st.tuples(st.floats(0.5, 4.0), st.integers(0, 7)),
                                                    min_size=1, max_size=8),
       seed=st.integers(0, 2**32 - 1))
def test_a_group_whose_members_change_stays_one_event(min_people, swaps, seed):
    """Every swap: a newcomer joins, then the oldest member leaves (after 0-7 frames): never below N."""
    rng = np.random.default_rng(seed)
    cfg = CONFIG.model_copy(update={"min_people": min_people})
    home = {i: p for i, p in enumerate(_disc(rng, min_people, 0.4 * cfg.radius_m))}
    next_id = min_people
    frames = [_jittered(rng, sorted(home), np.array([home[i] for i in sorted(home)]))
              for _ in range(_frames(cfg.min_duration + 1))]
    for wait, overlap in swaps:
        home[next_id] = _disc(rng, 1, 0.4 * cfg.radius_m)[0]
        next_id += 1
        for k in range(_frames(wait) + overlap):
            if k == overlap:
                del home[min(home)]
            ids = sorted(home)
            frames.append(_jittered(rng, ids, np.array([home[i] for i in ids])))
    _, events = _run(frames + [EMPTY] * _frames(cfg.end_grace + 1), cfg)
    opened, closed = _assert_one_event(events)
    assert all(len(e.member_ids) >= min_people for e in events)
    assert len({e.member_ids for e in events}) >= 2
    assert closed.member_ids == tuple(sorted(home)) != opened.member_ids
    changed = [e for prev, e in zip(events, events[1:]) if e.status == "updated" and e.member_ids != prev.member_ids]
    assert changed, "member changes must be reported as 'updated' records"


# ------------------------------------------------------------------------------------------------------
# thresholds
# ------------------------------------------------------------------------------------------------------


def test_fewer_than_min_people_fire_nothing():
    state, events = _run(_still([1, 2], TRIANGLE[:2], 30.0))
    assert events == []
    assert not state.timers and not state.lifecycle.episodes


def test_a_group_shorter_than_min_duration_fires_nothing():
    frames = _still([1, 2, 3], TRIANGLE, CONFIG.min_duration - 0.5) + [EMPTY] * _frames(10)
    assert _run(frames)[1] == []


def test_it_opens_after_min_duration_with_start_at_the_group_start():
    _, events = _run([EMPTY] * 7 + _still([1, 2, 3], TRIANGLE, 17.0), close=False)
    assert [e.status for e in events] == ["open", "updated"]  # evidence refreshed after update_every
    opened = events[0]
    assert opened.start == pytest.approx(1.0) and opened.end == pytest.approx(11.0)
    assert opened.id == "cam:gather:0" and opened.evidence["duration"] == pytest.approx(10.0)


def test_two_groups_far_apart_make_two_events():
    left = [(x - 4.0, y) for x, y in TRIANGLE]
    right = [(x + 4.0, y) for x, y in TRIANGLE]  # 7 m from the left group
    frames = _still([1, 2, 3, 7, 8, 9], left + right, 15.0)
    _, events = _run(frames)
    opened = _by_status(events, "open")
    assert [e.member_ids for e in opened] == [(1, 2, 3), (7, 8, 9)]
    assert len({e.id for e in opened}) == 2 and len(_by_status(events, "closed")) == 2
    assert opened[0].evidence["centroid_px"][0] < W / 2 < opened[1].evidence["centroid_px"][0]


def test_single_linkage_chains_people_beyond_the_radius():
    line = [(0.0, 0.0), (1.5, 0.0), (3.0, 0.0), (4.5, 0.0)]  # neighbours 1.5 m apart, ends 4.5 m
    _, events = _run(_still([1, 2, 3, 4], line, 12.0))
    opened, _ = _assert_one_event(events)
    assert opened.member_ids == (1, 2, 3, 4) and opened.evidence["diameter_m"] == pytest.approx(4.5, rel=1e-3)


def test_a_walker_passing_a_group_is_not_a_member():
    ids = [1, 2, 3, 4]
    frames = []
    for k in range(_frames(15.0)):
        walker = (-8.0 + 1.2 * k * DT, 0.3)
        frames.append(_tracks(ids, [*TRIANGLE, walker], [(0, 0)] * 3 + [(1.2, 0.0)]))
    _, events = _run(frames)
    _assert_one_event(events)
    assert all(e.member_ids == (1, 2, 3) for e in events)


@pytest.mark.parametrize(("speed", "fires"), [(0.3, True), (1.2, False)])
def test_a_group_moving_together_fires_only_when_slow(speed, fires):
    _, events = _run(_moving([1, 2, 3], [(x - 3.0, y) for x, y in TRIANGLE], (speed, 0.0), 15.0))
    assert (len(_by_status(events, "open")) == 1) is fires


def test_tentative_tracks_and_other_classes_do_not_count():
    frames = _still([1, 2, 3], TRIANGLE, 15.0, state=TrackState.TENTATIVE)
    frames += _still([1, 2, 3], TRIANGLE, 15.0, class_id=CLASS_IDS["car"])
    assert _run(frames)[1] == []
    cars = CONFIG.model_copy(update={"classes": ("car",)})
    _, events = _run(_still([1, 2, 3], TRIANGLE, 15.0, class_id=CLASS_IDS["car"]), cars)
    assert _assert_one_event(events)[0].classes == ("car",) * 3


# ------------------------------------------------------------------------------------------------------
# hysteresis
# ------------------------------------------------------------------------------------------------------


def test_a_lost_member_does_not_split_or_change_the_event():
    lost = _tracks([1, 2, 3], TRIANGLE, state=[TrackState.CONFIRMED, TrackState.LOST, TrackState.CONFIRMED])
    frames = _still([1, 2, 3], TRIANGLE, 12.0) + [lost] * _frames(3.0) + _still([1, 2, 3], TRIANGLE, 5.0)
    _, events = _run(frames)
    _assert_one_event(events)
    assert all(e.member_ids == (1, 2, 3) for e in events)


def test_a_member_missing_briefly_before_opening_keeps_the_start():
    frames = _still([1, 2, 3], TRIANGLE, 5.0) + _still([1, 2], TRIANGLE[:2], 1.0) + _still([1, 2, 3], TRIANGLE, 8.0)
    _, events = _run(frames)
    opened, _ = _assert_one_event(events)
    assert opened.start == 0.0 and opened.end == pytest.approx(10.0)


def test_a_member_missing_longer_than_grace_restarts_the_timer():
    frames = _still([1, 2, 3], TRIANGLE, 5.0) + _still([1, 2], TRIANGLE[:2], 3.0) + _still([1, 2, 3], TRIANGLE, 12.0)
    _, events = _run(frames)
    opened, _ = _assert_one_event(events)
    assert opened.start == pytest.approx(8.0) and opened.end == pytest.approx(18.0)


@pytest.mark.parametrize(("gap", "n_events"), [(3.0, 1), (6.0, 2)])
def test_the_group_hidden_after_opening_splits_only_after_end_grace(gap, n_events):
    one = _tracks([1], TRIANGLE[:1])
    frames = _still([1, 2, 3], TRIANGLE, 12.0) + [one] * _frames(gap) + _still([1, 2, 3], TRIANGLE, 12.0)
    _, events = _run(frames)
    assert len(_by_status(events, "open")) == n_events == len({e.id for e in events})
    assert len(_by_status(events, "closed")) == n_events
    if n_events == 2:
        assert _by_status(events, "closed")[0].end == pytest.approx(_frames(12.0) * DT - DT)


def test_the_end_threshold_keeps_a_shrinking_group_open():
    frames = (_still([1, 2, 3], TRIANGLE, 12.0) + _still([1, 2], TRIANGLE[:2], 20.0)
              + _still([1], TRIANGLE[:1], 10.0))
    _, events = _run(frames, close=False)
    opened, closed = _assert_one_event(events)
    assert opened.member_ids == (1, 2, 3) and closed.member_ids == (1, 2)
    assert closed.end == pytest.approx(_frames(32.0) * DT - DT)  # the last frame with two members
    assert closed.evidence["max_size"] == 3 and closed.evidence["size"] == 2
    strict = CONFIG.model_copy(update={"end_min_people": 3})
    _, events = _run(frames, strict, close=False)
    _, closed = _assert_one_event(events)
    assert closed.end == pytest.approx(_frames(12.0) * DT - DT) and closed.member_ids == (1, 2, 3)


def test_close_ends_an_open_gathering_at_the_last_time_it_held():
    rule = GatheringRule(CONFIG)
    assert rule.close(rule.initial_state(), 0.0, context=_ctx(0)) == []
    state, events = _run(_still([1, 2, 3], TRIANGLE, 12.0) + [EMPTY] * 7, close=False)
    assert _by_status(events, "closed") == []
    closed = rule.close(state, 100.0, context=_ctx(99))
    assert [e.status for e in closed] == ["closed"] and closed[0].id == events[0].id
    assert closed[0].end == pytest.approx(_frames(12.0) * DT - DT)


# ------------------------------------------------------------------------------------------------------
# distances, zone, evidence
# ------------------------------------------------------------------------------------------------------


def test_calibrated_distances_replace_the_person_height_fallback():
    row = [(0.0, 0.0), (60 * MPP, 0.0), (120 * MPP, 0.0)]  # 60 px apart: 1.02 m by the fallback
    _, events = _run(_still([1, 2, 3], row, 12.0))
    opened, _ = _assert_one_event(events)
    assert opened.evidence["unit"] == "person-height fallback"
    assert opened.evidence["diameter_m"] == pytest.approx(120 * MPP, rel=1e-3)
    # the same 60 px are 3 m on a ground calibrated at 5 cm per pixel: no group
    assert _run(_still([1, 2, 3], row, 12.0), geometry=CALIBRATED)[1] == []
    near = [(0.0, 0.0), (1.5, 0.0), (3.0, 0.0)]  # 30 px apart at 5 cm/px
    _, events = _run(_still([1, 2, 3], near, 12.0, scale=CAL_MPP), geometry=CALIBRATED)
    opened, _ = _assert_one_event(events)
    assert opened.evidence["unit"] == "m" and opened.evidence["diameter_m"] == pytest.approx(3.0, rel=1e-6)


@pytest.mark.parametrize(("speed", "fires"), [(0.3, True), (0.8, False)])
def test_calibrated_speeds_gate_eligibility(speed, fires):
    frames = _moving([1, 2, 3], TRIANGLE, (speed, 0.0), 12.0, scale=CAL_MPP)
    assert (len(_by_status(_run(frames, geometry=CALIBRATED)[1], "open")) == 1) is fires


ZONED = SceneGeometry(zones=[Zone(id="square", polygon=((0.0, 0.0), (0.5, 0.0), (0.5, 1.0), (0.0, 1.0)))])


def test_only_people_inside_the_zone_count():
    cfg = CONFIG.model_copy(update={"zone": "square"})
    left = [(x - 3.0, y) for x, y in TRIANGLE]  # anchors at x ~ 208-267 px, inside the left half
    right = [(x + 2.0, y) for x, y in TRIANGLE]
    _, events = _run(_still([1, 2, 3, 4, 5, 6], left + right, 12.0), cfg, geometry=ZONED)
    opened, _ = _assert_one_event(events)
    assert opened.member_ids == (1, 2, 3) and opened.zone_id == "square"
    straddling = [(-1.0, 0.0), (-0.5, 0.0), (0.3, 0.0)]  # anchors at 325, 355 and 402 px: the last outside
    assert len(_by_status(_run(_still([1, 2, 3], straddling, 12.0), geometry=ZONED)[1], "open")) == 1
    assert _run(_still([1, 2, 3], straddling, 12.0), cfg, geometry=ZONED)[1] == []


def test_a_missing_zone_fails_the_geometry_check():
    cfg = CONFIG.model_copy(update={"zone": "nowhere"})
    with pytest.raises(ValueError, match="nowhere"):
        cfg.check_geometry(ZONED)
    cfg.model_copy(update={"zone": "square"}).check_geometry(ZONED)
    CONFIG.check_geometry(GEOMETRY)


def test_evidence_is_plain_json_with_the_thresholds():
    _, events = _run(_still([1, 2, 3, 4], [*TRIANGLE, (0.5, -0.5)], 12.0))
    ev = events[0].evidence
    assert json.loads(json.dumps(ev)) == ev
    assert {type(v) for v in ev.values()} <= {int, float, str, list, dict}
    assert ev["size"] == ev["max_size"] == 4 and ev["mean_speed_mps"] == 0.0
    cx = np.mean([CENTRE[0] + x / MPP for x, _ in [*TRIANGLE, (0.5, -0.5)]])
    assert ev["centroid_px"][0] == pytest.approx(cx, abs=0.1)
    assert ev["centroid_norm"][0] == pytest.approx(cx / W, abs=1e-3)
    assert ev["thresholds"] == {"min_people": 3, "end_min_people": 2, "radius_m": 2.0, "max_speed_mps": 0.5,
                                "min_duration": 10.0}


def test_score_saturates_with_size_and_duration():
    _, small = _run(_still([1, 2, 3], TRIANGLE, 12.0), close=False)
    six = [*TRIANGLE, (0.0, 0.8), (1.0, 0.8), (0.5, -0.5)]
    _, big = _run(_still([1, 2, 3, 4, 5, 6], six, 12.0), close=False)
    assert small[0].score == pytest.approx(1 - np.exp(-1), abs=0.02)
    assert small[0].score < big[0].score < 1.0
    _, longer = _run(_still([1, 2, 3], TRIANGLE, 40.0), close=False)
    assert small[0].score < longer[-1].score < 1.0


# ------------------------------------------------------------------------------------------------------
# group identity
# ------------------------------------------------------------------------------------------------------


def test_match_groups_by_shared_members():
    groups = (GroupMemory(0, (1, 2, 3), 0.0, 3), GroupMemory(4, (5, 6, 7), 0.0, 3))
    # a split: the part sharing most keeps the key, the other part gets a new one
    assert match_groups([(1, 2), (3, 9)], groups[:1], 10) == ([0, 10], 11)
    # a merge: the cluster takes the group sharing most; the other group is left unmatched
    assert match_groups([(1, 2, 3, 5, 6, 7, 8)], groups, 10) == ([0], 10)
    assert match_groups([(1, 5, 6)], groups, 10) == ([4], 10)
    # a tie between two groups: the oldest (lowest key)
    assert match_groups([(1, 2, 5, 6)], groups, 10) == ([0], 10)
    # no shared members: new keys in cluster order
    assert match_groups([(8, 9), (11, 12)], groups, 10) == ([10, 11], 12)
    assert match_groups([], groups, 10) == ([], 10)


def test_connected_components_follow_chains():
    adj = np.zeros((6, 6), bool)
    for i, j in [(0, 3), (3, 5), (1, 4)]:
        adj[i, j] = adj[j, i] = True
    assert connected_components(adj).tolist() == [0, 1, 2, 0, 1, 0]
    chain = np.eye(8, k=1, dtype=bool)
    assert connected_components(chain | chain.T).tolist() == [0] * 8
    assert connected_components(np.zeros((0, 0), bool)).tolist() == []


def test_a_group_split_keeps_its_event_with_the_larger_part():
    six = [(0.0, 0.0), (0.5, 0.5), (1.0, 0.0), (1.5, 0.5), (2.0, 0.0), (2.5, 0.5)]
    apart = six[:4] + [(9.0, 0.0), (9.5, 0.5)]
    _, events = _run(_still(range(1, 7), six, 12.0) + _still(range(1, 7), apart, 12.0), close=False)
    assert [e.status for e in events][:2] == ["open", "updated"]
    assert len({e.id for e in events}) == 1 and events[-1].member_ids == (1, 2, 3, 4)


# ------------------------------------------------------------------------------------------------------
# purity, config
# ------------------------------------------------------------------------------------------------------


def test_step_does_not_mutate_inputs_and_is_deterministic():
    rng = np.random.default_rng(3)
    home = _disc(rng, 5, 0.8)
    frames = [_jittered(rng, [1, 2, 3, 4, 5], home) for _ in range(_frames(16.0))] + [EMPTY] * _frames(6.0)
    assert _run(frames) == _run(frames)
    rule = GatheringRule(CONFIG)
    assert_steps_are_pure(rule, frames, [seq * DT for seq in range(len(frames))],
                          [_ctx(seq) for seq in range(len(frames))])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_people": 1}, "greater than or equal"),
        ({"radius_m": 0.0}, "greater than"),
        ({"min_duration": -1.0}, "greater than or equal"),
        ({"max_speed_mps": 0.0}, "greater than"),
        ({"grace": -0.5}, "greater than or equal"),
        ({"end_grace": 0.0}, "greater than"),
        ({"end_min_people": 1}, "greater than or equal"),
        ({"end_min_people": 4}, "must not exceed min_people"),
        ({"classes": ("dragon",)}, "unknown class"),
        ({"classes": ()}, "at least one class"),
        ({"colour": "red"}, "Extra inputs"),
        ({"kind": "line_count"}, "gathering"),
    ],
)
def test_config_is_strict(kwargs, message):
    with pytest.raises(ValidationError, match=message):
        GatheringConfig.model_validate({"kind": "gathering", "id": "gather", **kwargs})


def test_config_defaults_and_end_threshold():
    assert (CONFIG.min_people, CONFIG.radius_m, CONFIG.min_duration, CONFIG.max_speed_mps) == (3, 2.0, 10.0, 0.5)
    assert (CONFIG.grace, CONFIG.end_grace, CONFIG.zone, CONFIG.classes) == (2.0, 5.0, None, ("person",))
    assert CONFIG.end_threshold == 2
    assert CONFIG.model_copy(update={"min_people": 8}).end_threshold == 7
    assert GatheringConfig(kind="gathering", id="g", min_people=2).end_threshold == 2
    assert GatheringConfig(kind="gathering", id="g", min_people=5, end_min_people=5).end_threshold == 5


@pytest.mark.parametrize("geometry", [GEOMETRY, CALIBRATED], ids=["fallback", "calibrated"])
def test_large_crowds_take_the_numpy_path_with_the_same_results(monkeypatch, geometry):
    """Distances of many people are computed with numpy, of few in plain Python: the events are identical."""
    import analytics.rules.gathering as gathering

    rng = np.random.default_rng(7)
    ids = np.arange(24) + 1
    home = np.concatenate([_disc(rng, 12, 1.5), _disc(rng, 12, 1.5) + [8.0, 0.0]])  # two crowds of 12
    scale = CAL_MPP if geometry is CALIBRATED else MPP
    frames = [_tracks(ids, home + rng.uniform(-0.05, 0.05, home.shape), rng.normal(0, 0.05, home.shape),
                      scale=scale, box_h=100 + rng.uniform(-2, 2, len(ids)))
              for _ in range(_frames(CONFIG.min_duration + 3))] + [EMPTY] * _frames(CONFIG.end_grace + 1)
    assert gathering._NUMPY_PAIRS_FROM <= len(ids)
    _, with_numpy = _run(frames, geometry=geometry)
    monkeypatch.setattr(gathering, "_NUMPY_PAIRS_FROM", 10**6)
    _, in_python = _run(frames, geometry=geometry)
    assert with_numpy == in_python
    assert sorted({e.evidence["size"] for e in with_numpy}) == [12]
    assert len({e.id for e in with_numpy}) == 2


def test_small_groups_average_in_python_as_numpy_does(monkeypatch):
    """Centroid and mean speed of a small group are summed in plain Python in numpy's order: same floats."""
    import analytics.rules.gathering as gathering

    rng = np.random.default_rng(11)
    frames = []
    for n in range(3, 9):
        home = _disc(rng, n, 0.8)
        frames += [_jittered(rng, np.arange(n) + 10 * n, home) for _ in range(_frames(CONFIG.min_duration + 2))]
    _, in_python = _run(frames)
    monkeypatch.setattr(gathering, "_NUMPY_MEAN_FROM", 0)
    _, with_numpy = _run(frames)
    assert in_python == with_numpy and len(in_python) > 6


def _reference_clusters(xs, ys, scale, radius: float, need: int) -> list[list[int]]:
    """Connected components of "distance <= radius" over every pair, the distance written out pair by pair."""
    n = len(xs)
    adj = np.zeros((n, n), bool)
    for i in range(n):
        for j in range(i + 1, n):
            dx, dy = xs[i] - xs[j], ys[i] - ys[j]
            d = math.sqrt(dx * dx + dy * dy)
            if scale is not None:
                d = d * (scale[i] + scale[j]) / 2
            adj[i, j] = adj[j, i] = d <= radius
    labels = connected_components(adj).tolist()
    out = [[i for i in range(n) if labels[i] == lab] for lab in sorted(set(labels))]
    return [c for c in out if len(c) >= need]


@pytest.mark.parametrize("calibrated", [False, True], ids=["fallback", "calibrated"])
def test_python_and_numpy_pair_paths_find_the_same_clusters(monkeypatch, calibrated):
    """The pair loop in Python (sweep along x, pairs beyond the radius along x skipped) and the numpy distance
    matrix give the same clusters as every pair written out, on random frames: many sizes, people exactly on
    the radius, ties along x, NaN and infinite positions."""
    import analytics.rules.gathering as gathering

    rng = np.random.default_rng(2024)
    rule = GatheringRule(CONFIG)
    radius = CONFIG.radius_m
    for _ in range(400):
        n = int(rng.integers(2, 40))
        spread = 8.0 * rng.uniform(0.2, 2.0)
        xs = rng.uniform(0, spread, n)
        ys = rng.uniform(0, spread, n)
        if rng.uniform() < 0.3:  # ties along x, and pairs exactly at the radius
            xs[: n // 2] = np.round(xs[: n // 2])
            ys[1::3] = ys[0] + radius
            xs[1::3] = xs[0]
        if rng.uniform() < 0.2:
            xs[rng.integers(0, n)] = np.nan
            ys[rng.integers(0, n)] = rng.choice([np.nan, np.inf])
            xs[rng.integers(0, n)] = -np.inf
        if calibrated:
            scale = None
            columns = [xs.tolist(), ys.tolist()]
        else:  # pixels, with the person-height scale of ~100 px boxes
            scale = (MPP * rng.uniform(0.9, 1.1, n)).tolist()
            xs, ys = xs / MPP, ys / MPP
            columns = [xs.tolist(), ys.tolist(), scale]
        expected = _reference_clusters(xs.tolist(), ys.tolist(), scale, radius, rule._end_threshold)
        monkeypatch.setattr(gathering, "_NUMPY_PAIRS_FROM", 10**6)
        in_python = rule._clusters(columns, calibrated)
        monkeypatch.setattr(gathering, "_NUMPY_PAIRS_FROM", 0)
        with_numpy = rule._clusters(columns, calibrated)
        assert in_python == with_numpy == expected


def _wandering(rng: np.random.Generator, n_people: int, n_frames: int, scale: float) -> list[Tracks]:
    """People drifting about a small square, now and then walking off or hidden: groups form, merge, split."""
    xy = rng.uniform(-3, 3, (n_people, 2))
    frames = []
    for _ in range(n_frames):
        step = rng.normal(0, 0.08, (n_people, 2))
        walkers = rng.uniform(size=n_people) < 0.1
        step[walkers] *= 8
        xy = np.clip(xy + step, -4, 4)
        seen = rng.uniform(size=n_people) < 0.9
        ids = np.flatnonzero(seen) + 1
        vel = step[seen] / DT
        states = np.where(rng.uniform(size=len(ids)) < 0.1, TrackState.LOST, TrackState.CONFIRMED)
        frames.append(_tracks(ids, xy[seen], vel, state=states, scale=scale, box_h=100 + rng.uniform(-3, 3, len(ids))))
    return frames


@pytest.mark.parametrize("geometry", [GEOMETRY, CALIBRATED], ids=["fallback", "calibrated"])
@pytest.mark.parametrize("seed", range(4))
def test_the_shortcuts_change_nothing(monkeypatch, geometry, seed):
    """Keys reused for the same clusters and episode updates deferred on quiet frames: with and without them,
    frame by frame, the same events and the same groups, timers and open events."""
    import analytics.rules.gathering as gathering

    rng = np.random.default_rng(seed)
    scale = CAL_MPP if geometry is CALIBRATED else MPP
    frames = _wandering(rng, 14, 500, scale) + [EMPTY] * 20
    cfg = CONFIG.model_copy(update={"min_people": 2 + seed % 2, "radius_m": 1.2, "min_duration": 1.0,
                                    "grace": 0.5, "end_grace": 1.0, "update_every": 2.0, "max_speed_mps": 1.0})
    rule = GatheringRule(cfg)
    runs = []
    for shortcuts in (True, False):
        monkeypatch.setattr(gathering, "_SHORTCUTS", shortcuts)
        state, trace = rule.initial_state(), []
        for seq, tracks in enumerate(frames):
            state, events = rule.step(tracks, state, seq * DT, context=_ctx(seq, geometry))
            trace.append((events, state.groups, dict(state.timers), rule._episodes(state), state.next_group))
        trace.append(rule.close(state, len(frames) * DT, context=_ctx(len(frames), geometry)))
        runs.append(trace)
    assert runs[0] == runs[1]
    events = [e for step in runs[0][:-1] for e in step[0]] + runs[0][-1]
    assert len({e.id for e in events}) >= 3 and any(e.status == "updated" for e in events)
