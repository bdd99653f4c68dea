"""speeding rule: a calibrated speed above the limit for min_duration is one event per track; no calibration, no rule.

Scene: a 640x480 frame calibrated as a pure scale, 0.0625 m per pixel on both axes (40 x 30 m), so a
track's ground speed is its image speed times 0.0625. Frames every 0.1 s; limit 13.9 m/s (50 km/h).
"""

from __future__ import annotations


import numpy as np
import pytest
from pydantic import ValidationError

from analytics.geometry import GroundCalibration, SceneGeometry, Zone
from analytics.rules.base import Event, RuleContext
from analytics.rules.speeding import SpeedingConfig, SpeedingRule, SpeedingState
from analytics.types import CLASS_IDS, Tracks, TrackState
from support import assert_steps_are_pure

W, H = 640, 480
MPP = 0.0625
DT = 0.1
CAR = CLASS_IDS["car"]
LEFT = Zone(id="left", polygon=((0.0, 0.0), (0.5, 0.0), (0.5, 1.0), (0.0, 1.0)))
CALIBRATION = GroundCalibration(image_points=((0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)),
                                ground_points=((0.0, 0.0), (40.0, 0.0), (40.0, 30.0), (0.0, 30.0)))
GEOMETRY = SceneGeometry(zones=(LEFT,), calibration=CALIBRATION)
CONFIG = SpeedingConfig(kind="speeding", id="speed", max_speed_mps=13.9)


def _tracks(speeds_mps: list[float], *, first_id: int = 1, x: float = 200.0, state: int = TrackState.CONFIRMED,
            class_id: int = CAR) -> Tracks:
    """Vehicles at anchor x ``x`` px, one above the other, moving down the image at the given ground speeds."""
    n = len(speeds_mps)
    ids = np.arange(first_id, first_id + n)
    y = 100.0 + 100.0 * np.arange(n)
    xyxy = np.stack([np.full(n, x - 30), y - 40, np.full(n, x + 30), y], axis=1)
    vel = np.stack([np.zeros(n), np.asarray(speeds_mps, np.float64) / MPP], axis=1)
    return Tracks(ids, xyxy, np.full(n, class_id), np.ones(n), vel, np.full(n, 20), np.full(n, state))


def _ctx(seq: int, geometry: SceneGeometry = GEOMETRY) -> RuleContext:
    return RuleContext(camera_id="cam", frame_size=(W, H), seq=seq, geometry=geometry)


def _run(frames: list[Tracks], *, config: SpeedingConfig = CONFIG,
         close: bool = True) -> tuple[SpeedingState, list[Event]]:
    """Step every frame (at seq * DT seconds), then close the stream."""
    rule = SpeedingRule(config)
    state, events = rule.initial_state(), []
    for seq, tracks in enumerate(frames):
        state, new = rule.step(tracks, state, round(seq * DT, 6), context=_ctx(seq))
        events.extend(new)
    if close and frames:
        events.extend(rule.close(state, round((len(frames) - 1) * DT, 6), context=_ctx(len(frames) - 1)))
    return state, events


def _frames(seconds: float, speeds: list[float], **kwargs) -> list[Tracks]:
    return [_tracks(speeds, **kwargs)] * round(seconds / DT)


def test_a_speeder_is_one_event_with_its_speeds():
    frames = _frames(1, [10.0]) + _frames(1, [18.0]) + _frames(1, [22.0]) + _frames(3, [10.0])
    _, events = _run(frames)
    assert [e.status for e in events] == ["open", "closed"]
    opened, closed = events[0], events[-1]
    assert opened.start == pytest.approx(1.0) and opened.end == pytest.approx(2.0)  # over the limit for 1 s
    assert closed.end == pytest.approx(2.9) and len({e.id for e in events}) == 1
    assert closed.kind == "speeding" and closed.member_ids == (1,) and closed.classes == ("car",)
    ev = closed.evidence
    assert ev["max_speed_mps"] == pytest.approx(22.0) and ev["max_speed_kmh"] == pytest.approx(79.2)
    assert ev["mean_speed_mps"] == pytest.approx(20.0) and ev["samples"] == 20
    assert ev["mean_speed_kmh"] == pytest.approx(72.0)
    assert (ev["limit_mps"], ev["limit_kmh"], ev["tolerance_mps"]) == (13.9, 50.0, 1.0)
    assert ev["duration"] == pytest.approx(1.9)
    assert all(type(v) in (int, float, str) for e in events for v in e.evidence.values())  # plain JSON
    assert closed.score == pytest.approx(min(1.0, 2 * (22.0 - 13.9) / 13.9))
    assert closed.best_frame_seq == 20  # the first frame at 22 m/s


@pytest.mark.parametrize(
    "frames",
    [
        pytest.param(_frames(5, [14.5]), id="within the tolerance"),
        pytest.param(_frames(0.8, [25.0]) + _frames(2, [8.0]), id="shorter than min_duration"),
        pytest.param(_frames(5, [25.0], x=500.0), id="outside the zone"),
        pytest.param(_frames(5, [25.0], state=TrackState.LOST), id="lost tracks (predicted speeds)"),
        pytest.param(_frames(5, [25.0], state=TrackState.TENTATIVE), id="tentative tracks"),
        pytest.param(_frames(5, [25.0], class_id=CLASS_IDS["person"]), id="not a watched class"),
    ],
)
def test_no_speeding(frames):
    zoned = CONFIG.model_copy(update={"zone": "left"})
    assert _run(frames, config=zoned)[1] == []


def test_tolerance_zero_reports_just_above_the_limit():
    _, events = _run(_frames(2, [14.5]), config=CONFIG.model_copy(update={"tolerance_mps": 0.0}))
    assert events[0].status == "open" and events[0].evidence["tolerance_mps"] == 0.0


def test_a_short_dip_within_grace_does_not_restart_the_count_but_a_long_one_does():
    dip = _frames(0.6, [20.0]) + _frames(0.3, [12.0]) + _frames(0.6, [20.0])
    _, events = _run(dip)
    assert events and events[0].start == 0.0 and events[0].end == pytest.approx(1.0)
    long_dip = _frames(0.6, [20.0]) + _frames(0.8, [12.0]) + _frames(0.6, [20.0])
    assert _run(long_dip)[1] == []


def test_speeders_are_events_per_track_in_track_order():
    frames = _frames(2, [20.0, 8.0, 30.0])
    _, events = _run(frames)
    assert [(e.status, e.member_ids, e.id) for e in events] == [
        ("open", (1,), "cam:speed:0"), ("open", (3,), "cam:speed:1"),
        ("closed", (1,), "cam:speed:0"), ("closed", (3,), "cam:speed:1"),
    ]
    assert events[1].score == 1.0


def test_an_event_survives_end_grace_and_closes_after_it():
    frames = _frames(2, [20.0]) + _frames(1.5, [10.0]) + _frames(1, [20.0]) + _frames(3, [10.0])
    _, events = _run(frames)
    assert [e.status for e in events] == ["open", "closed"]
    assert events[-1].start == 0.0 and events[-1].end == pytest.approx(4.4)


def test_close_at_end_of_stream_and_idle_rule():
    rule = SpeedingRule(CONFIG)
    assert rule.close(rule.initial_state(), 3.0, context=_ctx(0)) == []
    state, events = _run(_frames(3, [20.0]), close=False)
    assert [e.status for e in events] == ["open"]
    closed = rule.close(state, 2.9, context=_ctx(29))
    assert [(e.status, e.start, e.end) for e in closed] == [("closed", 0.0, pytest.approx(2.9))]
    empty, none = rule.step(Tracks.empty(), rule.initial_state(), 0.0, context=_ctx(0))
    assert none == [] and empty == rule.initial_state()


def test_state_forgets_tracks_that_slowed_down():
    state, _ = _run(_frames(2, [20.0]) + _frames(3, [10.0]))
    assert state == SpeedingState(timers={}, stats={}, episodes={}, next_event=state.next_event)


def test_speeding_refuses_an_uncalibrated_scene():
    uncalibrated = SceneGeometry(zones=(LEFT,))
    with pytest.raises(ValueError, match=r"speeding needs a ground calibration \(scene.calibration\)"):
        CONFIG.check_geometry(uncalibrated)
    CONFIG.check_geometry(GEOMETRY)
    rule = SpeedingRule(CONFIG)
    with pytest.raises(ValueError, match="ground calibration"):
        rule.step(_tracks([20.0]), rule.initial_state(), 0.0, context=_ctx(0, uncalibrated))


def test_geometry_check_names_a_missing_zone():
    with pytest.raises(ValueError, match="'right' is not a zone.*left"):
        CONFIG.model_copy(update={"zone": "right"}).check_geometry(GEOMETRY)


def test_step_is_pure_and_deterministic():
    rule = SpeedingRule(CONFIG)
    frames = _frames(1.5, [20.0, 5.0]) + _frames(0.5, [9.0, 25.0]) + _frames(3, [5.0, 5.0])
    assert _run(frames) == _run(frames)
    assert_steps_are_pure(rule, frames, [seq * DT for seq in range(len(frames))],
                          [_ctx(seq) for seq in range(len(frames))])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_speed_mps": None}, "number"),
        ({"max_speed_mps": 0.0}, "greater than 0"),
        ({"tolerance_mps": -0.5}, "greater than or equal to 0"),
        ({"min_duration": -1.0}, "greater than or equal to 0"),
        ({"classes": ("rocket",)}, "unknown class"),
        ({"limit": 3}, "Extra inputs"),
    ],
)
def test_config_is_strict(kwargs, message):
    with pytest.raises(ValidationError, match=message):
        SpeedingConfig.model_validate({"kind": "speeding", "id": "speed", "max_speed_mps": 13.9, **kwargs})


def test_config_needs_a_limit():
    with pytest.raises(ValidationError, match="max_speed_mps"):
        SpeedingConfig.model_validate({"kind": "speeding", "id": "speed"})
