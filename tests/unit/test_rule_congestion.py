"""congestion rule: a lasting queue of slow vehicles in a lane is one event, with hysteresis at both ends.

Scene: a 640x480 frame calibrated as a pure scale, 0.0625 m per pixel on both axes (40 x 30 m), so a
vehicle's ground speed is its image speed times 0.0625. Cars are 60x40 px boxes; the lane zone is the
lower half of the frame. Frames every 0.5 s.
"""

from __future__ import annotations


import numpy as np
import pytest
from pydantic import ValidationError

from analytics.geometry import GroundCalibration, SceneGeometry, Zone
from analytics.rules.base import Event, RuleContext
from analytics.rules.congestion import CongestionConfig, CongestionRule, CongestionState
from analytics.types import CLASS_IDS, Tracks, TrackState
from support import assert_steps_are_pure

W, H = 640, 480
MPP = 0.0625  # metres per pixel of the calibration
DT = 0.5
CAR = CLASS_IDS["car"]
LANE = Zone(id="lane", polygon=((0.0, 0.5), (1.0, 0.5), (1.0, 1.0), (0.0, 1.0)))
CALIBRATION = GroundCalibration(image_points=((0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)),
                                ground_points=((0.0, 0.0), (40.0, 0.0), (40.0, 30.0), (0.0, 30.0)))
GEOMETRY = SceneGeometry(zones=(LANE,), calibration=CALIBRATION)
CONFIG = CongestionConfig(kind="congestion", id="jam", zone="lane")


def _tracks(speeds_mps: list[float], *, first_id: int = 1, y: float = 400.0, state: int = TrackState.CONFIRMED,
            class_id: int = CAR, scale: float = MPP) -> Tracks:
    """Vehicles in a row at anchor height ``y`` px, moving right at the given ground speeds (m/s at ``scale``)."""
    n = len(speeds_mps)
    ids = np.arange(first_id, first_id + n)
    x = 40.0 + 70.0 * np.arange(n)
    xyxy = np.stack([x - 30, np.full(n, y - 40), x + 30, np.full(n, y)], axis=1)
    vel = np.stack([np.asarray(speeds_mps, np.float64) / scale, np.zeros(n)], axis=1)
    return Tracks(ids, xyxy, np.full(n, class_id), np.ones(n), vel, np.full(n, 20), np.full(n, state))


def _ctx(seq: int, geometry: SceneGeometry = GEOMETRY) -> RuleContext:
    return RuleContext(camera_id="cam", frame_size=(W, H), seq=seq, geometry=geometry)


def _run(frames: list[Tracks], *, config: CongestionConfig = CONFIG, geometry: SceneGeometry = GEOMETRY,
         close: bool = True) -> tuple[CongestionState, list[Event]]:
    """Step every frame (at seq * DT seconds), then close the stream."""
    rule = CongestionRule(config)
    state, events = rule.initial_state(), []
    for seq, tracks in enumerate(frames):
        state, new = rule.step(tracks, state, seq * DT, context=_ctx(seq, geometry))
        events.extend(new)
    if close and frames:
        events.extend(rule.close(state, (len(frames) - 1) * DT, context=_ctx(len(frames) - 1, geometry)))
    return state, events


def _frames(seconds: float, speeds: list[float], **kwargs) -> list[Tracks]:
    return [_tracks(speeds, **kwargs)] * round(seconds / DT)


SLOW4 = [0.5, 0.3, 1.0, 0.0]
FAST4 = [8.0, 8.0, 8.0, 8.0]


def test_a_queue_opens_after_min_duration_and_closes_after_end_grace():
    frames = _frames(40, SLOW4) + _frames(20, FAST4)
    _, events = _run(frames)
    opened = [e for e in events if e.status == "open"]
    closed = [e for e in events if e.status == "closed"]
    assert len(opened) == 1 and len(closed) == 1 and len({e.id for e in events}) == 1
    assert opened[0].start == 0.0 and opened[0].end == 20.0  # opens once the queue has lasted 20 s
    assert closed[0].end == 39.5  # the last frame with the queue; closed 10 s later
    assert closed[0].kind == "congestion" and closed[0].zone_id == "lane" and closed[0].id == "cam:jam:0"
    assert closed[0].member_ids == (1, 2, 3, 4) and closed[0].classes == ("car",) * 4
    ev = closed[0].evidence
    assert ev["slow_vehicles"] == 4 and ev["vehicles_in_zone"] == 4
    assert ev["mean_speed_mps"] == pytest.approx(0.45, abs=0.01)
    assert ev["speed_source"] == "calibrated" and ev["duration"] == 39.5
    assert (ev["max_speed_mps"], ev["min_vehicles"], ev["min_duration"]) == (2.0, 3, 20.0)
    assert all(type(v) in (int, float, str) for e in events for v in e.evidence.values())  # plain JSON


def test_score_saturates_in_queue_length_and_duration():
    _, events = _run(_frames(25, SLOW4), close=False)
    opened = next(e for e in events if e.status == "open")
    assert opened.score == pytest.approx(0.5 * 4 / 6 + 0.5 * 20 / 60)
    _, long = _run(_frames(70, SLOW4 + SLOW4[:2]), close=True)  # 6 slow vehicles for 70 s
    assert long[-1].score == pytest.approx(1.0)
    assert all(0.0 <= e.score <= 1.0 for e in long)


@pytest.mark.parametrize(
    "frames",
    [
        pytest.param(_frames(60, [0.5, 0.5]), id="two slow vehicles"),
        pytest.param(_frames(60, [3.0, 2.5, 6.0, 9.0]), id="four moving vehicles"),
        pytest.param(_frames(60, SLOW4, y=200.0), id="outside the lane"),
        pytest.param(_frames(60, SLOW4, state=TrackState.TENTATIVE), id="tentative tracks"),
        pytest.param(_frames(60, SLOW4, class_id=CLASS_IDS["person"]), id="people"),
        pytest.param(_frames(19, SLOW4) + _frames(10, FAST4), id="a queue shorter than min_duration"),
    ],
)
def test_no_congestion(frames):
    assert _run(frames)[1] == []


def test_a_fast_vehicle_in_the_queue_counts_in_the_zone_but_not_as_slow():
    _, events = _run(_frames(30, SLOW4 + [9.0]))
    ev = events[-1].evidence
    assert (ev["slow_vehicles"], ev["vehicles_in_zone"]) == (4, 5)
    assert events[-1].member_ids == (1, 2, 3, 4)
    assert ev["mean_speed_mps"] == pytest.approx((1.8 + 9.0) / 5, abs=0.01)
    assert ev["slow_mean_speed_mps"] == pytest.approx(0.45, abs=0.01)


def test_lost_tracks_in_a_queue_still_count():
    _, events = _run(_frames(30, SLOW4, state=TrackState.LOST))
    assert [e.status for e in events][0] == "open"


@pytest.mark.parametrize(("lapse", "opens_at"), [(2.0, 20.0), (4.0, 10.0 + 4.0 + 20.0)])
def test_start_hysteresis_tolerates_a_short_lapse_only(lapse, opens_at):
    """The queue lapses after 10 s: within start_grace (3 s) the count goes on, beyond it restarts."""
    frames = _frames(10, SLOW4) + _frames(lapse, FAST4) + _frames(40, SLOW4)
    _, events = _run(frames, close=False)
    opened = [e for e in events if e.status == "open"]
    assert len(opened) == 1
    assert opened[0].end == opens_at
    assert opened[0].start == (0.0 if lapse < CONFIG.start_grace else 10.0 + lapse)


@pytest.mark.parametrize(("moving", "n_events"), [(5.0, 1), (9.5, 1), (15.0, 2)])
def test_end_hysteresis_a_queue_that_moves_for_a_moment_is_one_congestion(moving, n_events):
    frames = _frames(30, SLOW4) + _frames(moving, FAST4) + _frames(30, SLOW4)
    _, events = _run(frames)
    assert len({e.id for e in events}) == n_events
    assert [e.status for e in events].count("open") == n_events
    assert [e.status for e in events].count("closed") == n_events
    if n_events == 1:
        assert events[-1].start == 0.0 and events[-1].end == (len(frames) - 1) * DT


def test_members_changing_update_the_event():
    frames = _frames(25, SLOW4) + _frames(2, SLOW4 + [0.1])
    _, events = _run(frames, close=False)
    updated = [e for e in events if e.status == "updated"]
    assert updated and updated[0].member_ids == (1, 2, 3, 4, 5) and updated[0].end == 25.0


def test_without_calibration_speeds_use_the_class_height_fallback():
    uncalibrated = SceneGeometry(zones=(LANE,))
    fallback = 1.5 / 40  # a car is assumed 1.5 m tall; boxes are 40 px high
    slow = _frames(30, SLOW4, scale=fallback)
    _, events = _run(slow, geometry=uncalibrated)
    assert events and events[-1].evidence["speed_source"] == "fallback"
    assert events[-1].evidence["mean_speed_mps"] == pytest.approx(0.45, abs=0.01)
    assert _run(_frames(30, FAST4, scale=fallback), geometry=uncalibrated)[1] == []


def test_close_at_end_of_stream_and_idle_rule():
    rule = CongestionRule(CONFIG)
    assert rule.close(rule.initial_state(), 5.0, context=_ctx(0)) == []
    state, events = _run(_frames(30, SLOW4), close=False)
    assert [(e.status, e.end) for e in events] == [("open", 20.0), ("updated", 25.0)]  # updates every 5 s
    closed = rule.close(state, 29.5, context=_ctx(59))
    assert [(e.status, e.start, e.end, e.id) for e in closed] == [("closed", 0.0, 29.5, "cam:jam:0")]
    empty, none = rule.step(Tracks.empty(), rule.initial_state(), 0.0, context=_ctx(0))
    assert none == [] and empty == rule.initial_state()


def test_step_is_pure_and_deterministic():
    rule = CongestionRule(CONFIG)
    frames = _frames(22, SLOW4) + _frames(12, FAST4)
    _, first = _run(frames)
    _, second = _run(frames)
    assert first == second
    assert_steps_are_pure(rule, frames, [seq * DT for seq in range(len(frames))],
                          [_ctx(seq) for seq in range(len(frames))])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"classes": ("tank",)}, "unknown class"),
        ({"classes": ()}, "at least one class"),
        ({"max_speed_mps": 0.0}, "greater than 0"),
        ({"min_vehicles": 0}, "greater than or equal to 1"),
        ({"min_duration": -1.0}, "greater than or equal to 0"),
        ({"end_grace": -1.0}, "greater than or equal to 0"),
        ({"zone": None}, "string"),
        ({"speed": 3}, "Extra inputs"),
    ],
)
def test_config_is_strict(kwargs, message):
    with pytest.raises(ValidationError, match=message):
        CongestionConfig.model_validate({"kind": "congestion", "id": "jam", "zone": "lane", **kwargs})


def test_config_needs_a_zone_and_geometry_check_names_known_zones():
    with pytest.raises(ValidationError, match="zone"):
        CongestionConfig.model_validate({"kind": "congestion", "id": "jam"})
    CONFIG.check_geometry(GEOMETRY)
    with pytest.raises(ValueError, match="'road' is not a zone.*lane"):
        CONFIG.model_copy(update={"zone": "road"}).check_geometry(GEOMETRY)


def test_mean_is_numpys_mean_exactly():
    """The evidence means are taken in plain Python for a few values: the very float np.mean gives."""
    from analytics.rules.congestion import _mean

    rng = np.random.default_rng(5)
    for n in range(1, 20):
        for _ in range(200):
            values = (rng.normal(0, 1, n) * 10.0 ** rng.integers(-3, 3, n)).tolist()
            assert _mean(values) == float(np.mean(np.asarray(values)))
