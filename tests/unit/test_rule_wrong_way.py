"""wrong_way rule: sustained motion against a lane's direction is one event per track; jitter never fires.

Scene: a 640x480 frame calibrated as a pure scale, 0.0625 m per pixel on both axes (40 x 30 m); the lane
zone covers the frame and its allowed direction is down the image (0, 1). Positions are given in ground
metres, so a track's pixels are metres / 0.0625. Cars are 60x40 px boxes.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from analytics.geometry import GroundCalibration, SceneGeometry, Zone
from analytics.rules.base import Event, RuleContext
from analytics.rules.wrong_way import WrongWayConfig, WrongWayRule, WrongWayState
from analytics.types import CLASS_IDS, Tracks, TrackState

W, H = 640, 480
MPP = 0.0625
CAR = CLASS_IDS["car"]
FRAME = ((0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0))
CALIBRATION = GroundCalibration(image_points=FRAME,
                                ground_points=((0.0, 0.0), (40.0, 0.0), (40.0, 30.0), (0.0, 30.0)))
LANE = Zone(id="lane", polygon=FRAME, allowed_direction=(0.0, 1.0))
PLAZA = Zone(id="plaza", polygon=((0.0, 0.0), (0.5, 0.0), (0.5, 0.5)))
GEOMETRY = SceneGeometry(zones=(LANE, PLAZA), calibration=CALIBRATION)
CONFIG = WrongWayConfig(kind="wrong_way", id="ww", zone="lane")
CENTRE = np.array([20.0, 15.0])  # metres, the middle of the frame


def _tracks(ids, xy_m, vel_mps=None, *, state=TrackState.CONFIRMED, class_id: int = CAR,
            scale: float = MPP) -> Tracks:
    """Vehicles whose anchors are at ground positions ``xy_m`` (metres, (N, 2)), velocities in m/s."""
    ids = np.asarray(ids, np.int64).reshape(-1)
    n = len(ids)
    anchor = np.asarray(xy_m, np.float64).reshape(n, 2) / scale
    vel = np.zeros((n, 2)) if vel_mps is None else np.asarray(vel_mps, np.float64).reshape(n, 2) / scale
    xyxy = np.stack([anchor[:, 0] - 30, anchor[:, 1] - 40, anchor[:, 0] + 30, anchor[:, 1]], axis=1)
    return Tracks(ids, xyxy, np.full(n, class_id), np.ones(n), vel, np.full(n, 20),
                  np.broadcast_to(np.asarray(state, np.int8), (n,)))


def _ctx(seq: int, geometry: SceneGeometry = GEOMETRY) -> RuleContext:
    return RuleContext(camera_id="cam", frame_size=(W, H), seq=seq, geometry=geometry)


def _run(frames: list[tuple[float, Tracks]], *, config: WrongWayConfig = CONFIG, geometry: SceneGeometry = GEOMETRY,
         close: bool = True) -> tuple[WrongWayState, list[Event]]:
    """Step every (time, tracks) frame, then close the stream at the last time."""
    rule = WrongWayRule(config)
    state, events = rule.initial_state(), []
    for seq, (now, tracks) in enumerate(frames):
        state, new = rule.step(tracks, state, now, context=_ctx(seq, geometry))
        events.extend(new)
    if close and frames:
        events.extend(rule.close(state, frames[-1][0], context=_ctx(len(frames) - 1, geometry)))
    return state, events


def _path(points_m: np.ndarray, dt: float, *, track_id: int = 1, t0: float = 0.0,
          **kwargs) -> list[tuple[float, Tracks]]:
    """One track along ``points_m`` ((T, 2) metres), a frame every ``dt`` s; velocity by finite differences."""
    pts = np.asarray(points_m, np.float64)
    vel = np.gradient(pts, dt, axis=0) if len(pts) > 1 else np.zeros_like(pts)
    return [(round(t0 + i * dt, 9), _tracks([track_id], p, v, **kwargs)) for i, (p, v) in enumerate(zip(pts, vel))]


def _line(start_m, velocity_mps, seconds: float, dt: float) -> np.ndarray:
    """Positions of steady motion from ``start_m`` at ``velocity_mps`` for ``seconds`` (inclusive ends)."""
    t = np.arange(round(seconds / dt) + 1)[:, None] * dt
    return np.asarray(start_m, np.float64) + t * np.asarray(velocity_mps, np.float64)


def _opened(events: list[Event]) -> list[Event]:
    return [e for e in events if e.status == "open"]


UP = (0.0, -5.0)  # 5 m/s against the lane's direction


def test_a_car_driving_against_the_lane_is_one_event_with_evidence():
    frames = _path(_line((20.0, 25.0), UP, 4.0, 0.1), 0.1)
    _, events = _run(frames)
    assert [e.status for e in events] == ["open", "closed"]
    opened, closed = events
    assert opened.start == 0.0 and opened.end == pytest.approx(2.0)  # 10 m in 2 s: the duration is the limit
    assert closed.end == pytest.approx(4.0) and closed.id == opened.id == "cam:ww:0"
    assert closed.kind == "wrong_way" and closed.zone_id == "lane" and closed.member_ids == (1,)
    ev = closed.evidence
    assert ev["displacement_m"] == pytest.approx(20.0, abs=0.01)
    assert ev["moving_against_s"] == pytest.approx(4.0) and ev["angle_deg"] == pytest.approx(180.0)
    assert ev["speed_mps"] == pytest.approx(5.0, abs=0.01) and ev["mean_speed_mps"] == pytest.approx(5.0, abs=0.01)
    assert ev["speed_source"] == "calibrated" and ev["class"] == "car"
    assert (ev["min_displacement_m"], ev["min_duration"], ev["min_angle_deg"]) == (5.0, 2.0, 120.0)
    assert all(type(v) in (int, float, str) for e in events for v in e.evidence.values())  # plain JSON
    assert opened.score == pytest.approx(0.5 + 0.5 * (10.0 - 5.0) / 5.0) and closed.score == 1.0


@pytest.mark.parametrize(
    ("points", "dt"),
    [
        pytest.param(_line((20.0, 25.0), (0.0, 6.0), 3.0, 0.1), 0.1, id="with the lane"),
        pytest.param(_line((20.0, 15.0), (0.0, -0.5), 4.0, 0.2), 0.2, id="reversing 2 m"),
        pytest.param(np.concatenate([_line((20.0, 25.0), (0.0, -8.0), 1.0, 0.1),  # 8 m back in 1 s...
                                     _line((20.0, 17.0), (0.0, 8.0), 2.0, 0.1)[1:]]), 0.1,  # ...then on
                     id="brief fast against-motion"),
        pytest.param(_line((5.0, 15.0), (6.0, 0.0), 4.0, 0.1), 0.1, id="across the lane"),
        pytest.param(_line((5.0, 25.0), (6.0, -4.0), 4.0, 0.1), 0.1, id="angle 124 deg under 130 deg"),
    ],
)
def test_no_wrong_way(points, dt):
    config = CONFIG.model_copy(update={"min_angle_deg": 130.0})
    assert _run(_path(points, dt), config=config)[1] == []


def test_a_track_reappearing_upstream_after_a_gap_or_an_identity_switch_is_not_wrong_way():
    down = _path(_line((20.0, 5.0), (0.0, 5.0), 2.0, 0.1), 0.1)  # with the lane, 10 m
    hidden = [(round(2.1 + i * 0.1, 9), Tracks.empty()) for i in range(29)]
    again = _path(_line((20.0, 3.0), (0.0, 5.0), 2.0, 0.1), 0.1, t0=5.0)  # back 12 m upstream after 3 s
    assert _run(down + hidden + again)[1] == []
    creeping = _line((20.0, 28.0), (0.0, -1.2), 3.0, 0.1)  # 3.6 m against...
    switched = _line(creeping[-1] + (0.0, -10.0), (0.0, -1.2), 1.0, 0.1)[1:]  # ...the id jumps 10 m, +1.2 m
    assert _run(_path(np.concatenate([creeping, switched]), 0.1))[1] == []
    assert len(_opened(_run(_path(_line((20.0, 28.0), (0.0, -1.5), 4.0, 0.1), 0.1))[1])) == 1  # 6 m: fires


def test_the_angle_threshold_admits_diagonal_against_motion():
    frames = _path(_line((5.0, 25.0), (6.0, -4.0), 4.0, 0.1), 0.1)  # 123.7 deg from the lane direction
    _, events = _run(frames)
    assert len(_opened(events)) == 1
    assert events[-1].evidence["angle_deg"] == pytest.approx(123.7, abs=0.1)


def test_a_car_that_turns_round_closes_and_is_reported_once():
    against = _line((20.0, 28.0), UP, 3.0, 0.1)
    back = _line(against[-1], (0.0, 5.0), 2.0, 0.1)[1:]
    again = _line(back[-1], UP, 3.0, 0.1)[1:]
    frames = _path(np.concatenate([against, back, again]), 0.1)
    _, events = _run(frames)
    assert [e.status for e in events] == ["open", "closed"]
    # still wrong way while it has moved with the lane for at most reset_grace (1 s) after turning at 3 s
    assert events[-1].end == pytest.approx(3.0 + CONFIG.reset_grace)


def test_the_event_closes_end_grace_after_the_track_ends_and_survives_a_short_loss():
    frames = _path(_line((20.0, 28.0), UP, 3.0, 0.1), 0.1)
    lost = [(round(3.1 + i * 0.1, 9), _tracks([1], (20.0, 13.0 - 0.5 * i), [UP], state=TrackState.LOST))
            for i in range(10)]
    empty = [(round(4.1 + i * 0.1, 9), Tracks.empty()) for i in range(40)]
    _, events = _run(frames + lost + empty, close=False)
    assert [e.status for e in events] == ["open", "closed"]
    assert events[-1].end == pytest.approx(4.0)  # lost tracks in the zone still hold it; unseen ones do not
    assert _run(frames + empty, close=False)[1][-1].end == pytest.approx(3.0)


def test_leaving_the_zone_closes_the_event():
    top = Zone(id="lane", polygon=((0.0, 0.0), (1.0, 0.0), (1.0, 0.6), (0.0, 0.6)), allowed_direction=(0.0, -1.0))
    geometry = SceneGeometry(zones=(top,), calibration=CALIBRATION)
    frames = _path(_line((20.0, 2.0), (0.0, 5.0), 5.0, 0.1), 0.1)  # down, against "up"; leaves at y = 18 m
    _, events = _run(frames, geometry=geometry)
    assert [e.status for e in events] == ["open", "closed"]
    assert 3.1 - 1e-9 <= events[-1].end <= 3.2 + 1e-9  # the zone edge is at y = 18 m, reached at 3.2 s


def test_two_wrong_way_tracks_are_two_events_in_track_order():
    a = _path(_line((10.0, 28.0), UP, 3.0, 0.1), 0.1, track_id=4)
    b = _path(_line((30.0, 28.0), UP, 3.0, 0.1), 0.1, track_id=2)
    frames = [(t, Tracks(*(np.concatenate([getattr(x, f), getattr(y, f)]) for f in
                           ("track_id", "xyxy", "class_id", "confidence", "velocity", "age", "state"))))
              for (t, x), (_, y) in zip(a, b)]
    _, events = _run(frames)
    assert [(e.status, e.member_ids) for e in events] == [("open", (2,)), ("open", (4,)),
                                                          ("closed", (2,)), ("closed", (4,))]


def test_without_calibration_displacement_uses_the_class_height_fallback():
    scale = 1.5 / 40  # a car is assumed 1.5 m tall; boxes are 40 px high
    frames = _path(_line((10.0, 17.0), UP, 3.0, 0.1), 0.1, scale=scale)  # 15 m up: 400 px
    _, events = _run(frames, geometry=SceneGeometry(zones=(LANE,)))
    assert len(_opened(events)) == 1
    ev = events[-1].evidence
    assert ev["speed_source"] == "fallback" and ev["displacement_m"] == pytest.approx(15.0, abs=0.01)


def test_tentative_tracks_and_other_classes_are_ignored():
    points = _line((20.0, 28.0), UP, 4.0, 0.1)
    assert _run(_path(points, 0.1, state=TrackState.TENTATIVE))[1] == []
    assert _run(_path(points, 0.1, class_id=CLASS_IDS["person"]))[1] == []


def test_close_at_end_of_stream_and_idle_rule():
    rule = WrongWayRule(CONFIG)
    assert rule.close(rule.initial_state(), 1.0, context=_ctx(0)) == []
    state, events = _run(_path(_line((20.0, 28.0), UP, 3.0, 0.1), 0.1), close=False)
    assert [e.status for e in events] == ["open"]
    closed = rule.close(state, 3.0, context=_ctx(30))
    assert [(e.status, e.start, e.end, e.id) for e in closed] == [("closed", 0.0, pytest.approx(3.0), "cam:ww:0")]
    empty, none = rule.step(Tracks.empty(), rule.initial_state(), 0.0, context=_ctx(0))
    assert none == [] and empty is not None and len(empty.runs.track_id) == 0


def test_forgotten_tracks_leave_the_state():
    frames = _path(_line((20.0, 15.0), (0.0, 1.0), 1.0, 0.1), 0.1)
    frames += [(round(1.1 + i, 9), Tracks.empty()) for i in range(12)]
    state, _ = _run(frames)
    assert state.runs.track_id.tolist() == []


def _snapshot(state: WrongWayState) -> tuple:
    runs = state.runs
    return tuple(np.array(getattr(runs, name), copy=True) for name in runs.COLUMNS), state.life


def test_step_is_pure_and_deterministic():
    rule = WrongWayRule(CONFIG)
    frames = _path(np.concatenate([_line((20.0, 28.0), UP, 3.0, 0.1), _line((20.0, 13.0), (0.0, 4.0), 2.0, 0.1)]), 0.1)
    assert _run(frames)[1] == _run(frames)[1]
    state = rule.initial_state()
    for seq, (now, tracks) in enumerate(frames):
        before_tracks, before_state = copy.deepcopy(tracks), _snapshot(state)
        new_state, events = rule.step(tracks, state, now, context=_ctx(seq))
        again_state, again = rule.step(tracks, state, now, context=_ctx(seq))
        for name in ("track_id", "xyxy", "class_id", "velocity", "state"):
            np.testing.assert_array_equal(getattr(tracks, name), getattr(before_tracks, name))
        after = _snapshot(state)
        for old, cur in zip(before_state[0], after[0]):
            np.testing.assert_array_equal(old, cur)
        assert after[1] == before_state[1]
        for a, b in zip(_snapshot(new_state)[0], _snapshot(again_state)[0]):
            np.testing.assert_array_equal(a, b)
        assert events == again
        state = new_state


def test_wrong_way_refuses_a_zone_without_direction():
    plaza = CONFIG.model_copy(update={"zone": "plaza"})
    with pytest.raises(ValueError, match="wrong_way needs zone 'plaza' to have an allowed_direction"):
        plaza.check_geometry(GEOMETRY)
    CONFIG.check_geometry(GEOMETRY)
    with pytest.raises(ValueError, match="'road' is not a zone"):
        CONFIG.model_copy(update={"zone": "road"}).check_geometry(GEOMETRY)
    rule = WrongWayRule(plaza)
    with pytest.raises(ValueError, match="no allowed_direction"):
        rule.step(_tracks([1], CENTRE), rule.initial_state(), 0.0, context=_ctx(0))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_displacement_m": 0.0}, "greater than 0"),
        ({"min_duration": 0.0}, "greater than 0"),
        ({"min_angle_deg": 80.0}, "greater than or equal to 90"),
        ({"min_angle_deg": 180.0}, "less than 180"),
        ({"forget_after": 1.0}, "forget_after"),
        ({"max_gap": 0.0}, "greater than 0"),
        ({"classes": ("boat",)}, "unknown class"),
        ({"direction": [0, 1]}, "Extra inputs"),
    ],
)
def test_config_is_strict(kwargs, message):
    with pytest.raises(ValidationError, match=message):
        WrongWayConfig.model_validate({"kind": "wrong_way", "id": "ww", "zone": "lane", **kwargs})


# --------------------------------------------------------------------------------------------------
# Property: wrong way needs sustained motion
# --------------------------------------------------------------------------------------------------


def _geometry(theta: float) -> SceneGeometry:
    lane = Zone(id="lane", polygon=FRAME, allowed_direction=(math.cos(theta), math.sin(theta)))
    return SceneGeometry(zones=(lane,), calibration=CALIBRATION)


def _frame(along: np.ndarray, across: np.ndarray, theta: float, start: np.ndarray) -> np.ndarray:
    """(T, 2) ground positions at ``along`` / ``across`` metres from ``start`` in the lane's frame."""
    u = np.array([math.cos(theta), math.sin(theta)])
    n = np.array([-u[1], u[0]])
    return start + along[:, None] * u + across[:, None] * n


thetas = st.floats(0.0, 2 * math.pi)
dts = st.sampled_from([0.1, 0.2, 0.25])


@settings(max_examples=60, deadline=None)
@given(theta=thetas, dt=dts, data=st.data())
def test_jitter_below_the_displacement_threshold_never_fires(theta, dt, data):
    """Back-and-forth motion within a band narrower than min_displacement_m, for any time, never fires."""
    n = data.draw(st.integers(2, 80), label="frames")
    along = np.array(data.draw(st.lists(st.floats(0.0, 0.95 * CONFIG.min_displacement_m), min_size=n, max_size=n),
                               label="along"))
    across = np.array(data.draw(st.lists(st.floats(-1.0, 1.0), min_size=n, max_size=n), label="across"))
    points = _frame(along - 2.5, across, theta, CENTRE)
    assert _run(_path(points, dt), geometry=_geometry(theta))[1] == []


@settings(max_examples=60, deadline=None)
@given(theta=thetas, dt=dts, speed=st.floats(2.0, 12.0), before=st.integers(0, 10), after=st.integers(0, 20),
       against_s=st.floats(0.0, 1.8), skew=st.floats(-0.6, 0.6))
def test_brief_against_motion_shorter_than_min_duration_never_fires(theta, dt, speed, before, after, against_s, skew):
    """Any displacement against the lane in less than min_duration, with the lane before and after, never fires."""
    k = int(against_s / dt + 1e-9)  # frames moving against: k * dt <= 1.8 s < min_duration
    steps = np.concatenate([np.full(before, 1.0), np.full(k, -1.0), np.full(after, 1.0)])
    along = np.concatenate([[0.0], np.cumsum(steps * speed * dt)])
    across = np.concatenate([[0.0], np.cumsum(np.abs(steps) * skew * speed * dt)])
    start = CENTRE - _frame(np.array([along.mean()]), np.array([across.mean()]), theta, np.zeros(2))[0]
    points = _frame(along, across, theta, start)
    assert _run(_path(points, dt), geometry=_geometry(theta))[1] == []


@settings(max_examples=60, deadline=None)
@given(theta=thetas, dt=dts, speed=st.floats(2.6, 6.0), deviation=st.floats(-40.0, 40.0),
       noise=st.lists(st.floats(-0.05, 0.05), min_size=62, max_size=62))
def test_steady_motion_against_the_lane_fires_exactly_one_event(theta, dt, speed, deviation, noise):
    """3 s against the lane (>= 6 m along it, >= 2 s, at >= 140 deg): one event, opened once, closed once."""
    n = round(3.0 / dt) + 1
    angle = math.pi + math.radians(deviation)
    t = np.arange(n) * dt
    along = 9.0 + speed * math.cos(angle) * t + np.array(noise[:n])
    across = speed * math.sin(angle) * t + np.array(noise[::-1][:n])
    points = _frame(along, across, theta, CENTRE)
    _, events = _run(_path(points, dt), geometry=_geometry(theta))
    assert len({e.id for e in events}) == 1
    assert [e.status for e in events if e.status != "updated"] == ["open", "closed"]
    assert events[0].start == 0.0 and events[-1].evidence["angle_deg"] > CONFIG.min_angle_deg


@settings(max_examples=60, deadline=None)
@given(theta=thetas, dt=dts, speed=st.floats(0.5, 8.0), deviation=st.floats(-60.0, 60.0),
       stop_at=st.integers(0, 40), noise=st.lists(st.floats(-0.3, 0.3), min_size=41, max_size=41))
def test_motion_with_the_lane_never_fires(theta, dt, speed, deviation, stop_at, noise):
    """Forward motion (within 60 deg of the lane), then standing still, with jitter: never wrong way."""
    n = 41
    angle = math.radians(deviation)
    t = np.minimum(np.arange(n), stop_at) * dt
    along = -4.0 + speed * math.cos(angle) * t + np.array(noise)
    across = speed * math.sin(angle) * t + np.array(noise[::-1])
    points = _frame(along, across, theta, CENTRE)
    assert _run(_path(points, dt), geometry=_geometry(theta))[1] == []
