"""occupancy rule: count or density in a zone above a threshold, with hysteresis on the start and the end."""

from __future__ import annotations


import numpy as np
import pytest
from pydantic import ValidationError

from analytics.geometry import GroundCalibration, SceneGeometry, Zone, apply_homography
from analytics.rules.base import Event, RuleContext
from analytics.rules.occupancy import OccupancyConfig, OccupancyRule, zone_area_m2
from analytics.types import CLASS_IDS, PERSON, Tracks, TrackState
from support import assert_steps_are_pure

W, H = 640, 480
DT = 0.5  # seconds between frames (exact in binary)
SQUARE = Zone(id="square", polygon=((0.5, 0.5), (1.0, 0.5), (1.0, 1.0), (0.5, 1.0)))  # x 320-640, y 240-480 px
GEOMETRY = SceneGeometry(zones=(SQUARE,))
#: Affine calibration: the frame is 20 m x 10 m on the ground, so SQUARE is 10 m x 5 m = 50 m².
AFFINE = GroundCalibration(image_points=((0, 0), (1, 0), (1, 1), (0, 1)),
                           ground_points=((0, 0), (20, 0), (20, 10), (0, 10)))
#: Perspective calibration: a trapezoid on screen is a 4 m x 10 m rectangle on the ground (horizon at y ~ 0.37).
TRAPEZOID = ((0.4, 0.5), (0.6, 0.5), (0.9, 0.9), (0.1, 0.9))
PERSPECTIVE = GroundCalibration(image_points=TRAPEZOID, ground_points=((0, 0), (4, 0), (4, 10), (0, 10)))
CONFIG = OccupancyConfig(kind="occupancy", id="crowd", zone="square", max_count=5, min_duration=4.0, grace=1.0,
                         end_grace=2.0, end_ratio=0.8)
CONFIRMED, LOST, TENTATIVE = TrackState.CONFIRMED, TrackState.LOST, TrackState.TENTATIVE


def _people(n: int, *, first: int = 1, inside: bool = True, state: int = CONFIRMED, cls: int = PERSON) -> list[tuple]:
    """n rows (track id, x, y, state, class) with anchors in (or out of) SQUARE."""
    y = 400.0 if inside else 100.0
    return [(tid, 340.0 + 12 * (tid % 24), y, state, cls) for tid in range(first, first + n)]


def _tracks(rows: list[tuple]) -> Tracks:
    if not rows:
        return Tracks.empty()
    tid, x, y, state, cls = (np.array(c) for c in zip(*rows))
    n = len(tid)
    return Tracks(tid, np.stack([x - 15, y - 80, x + 15, y], axis=1), cls, np.full(n, 0.9), np.zeros((n, 2)),
                  np.full(n, 10), state)


def _ctx(seq: int, geometry: SceneGeometry = GEOMETRY) -> RuleContext:
    return RuleContext(camera_id="cam", frame_size=(W, H), seq=seq, geometry=geometry)


def _run(frames: list[list[tuple]], config: OccupancyConfig = CONFIG, *,
         geometry: SceneGeometry = GEOMETRY) -> list[Event]:
    """Step over frames at t = 0, DT...; close at the last frame's time."""
    rule = OccupancyRule(config)
    state, events = rule.initial_state(), []
    for seq, rows in enumerate(frames):
        state, new = rule.step(_tracks(rows), state, seq * DT, context=_ctx(seq, geometry))
        events.extend(new)
    last = len(frames) - 1
    return events + rule.close(state, last * DT, context=_ctx(last, geometry))


def _frames(seconds: float, rows: list[tuple]) -> list[list[tuple]]:
    """``seconds / DT`` frames of the same rows (a run that the next run follows DT later)."""
    return [list(rows) for _ in range(round(seconds / DT))]


def _spans(events: list[Event]) -> list[tuple[str, float, float]]:
    return [(e.status, e.start, e.end) for e in events if e.status != "updated"]


def test_a_crowd_above_max_count_gives_one_event():
    events = _run(_frames(6.5, _people(6)) + _frames(3.0, []))  # 6 people at 0 .. 6 s
    assert _spans(events) == [("open", 0.0, 4.0), ("closed", 0.0, 6.0)]
    assert {e.id for e in events} == {"cam:crowd:0"}
    last = events[-1]
    assert last.kind == "occupancy" and last.zone_id == "square"
    assert last.member_ids == (1, 2, 3, 4, 5, 6) and last.classes == ("person",) * 6
    assert last.evidence == {"count": 6, "peak_count": 6, "measure": "count", "threshold": 5.0, "end_threshold": 4.0,
                             "zone": "square", "duration": 6.0}
    assert last.score == pytest.approx(1 - 0.5 ** (6 / 5))


@pytest.mark.parametrize(("n", "seconds", "n_events"), [(5, 10.0, 0), (6, 4.0, 0), (6, 4.5, 1)])
def test_count_and_min_duration_boundaries(n, seconds, n_events):
    # seconds / DT frames: 4.0 s of frames ends at 3.5 s (too short), 4.5 s ends at 4.0 s (just enough).
    events = _run(_frames(seconds, _people(n)))
    assert len({e.id for e in events}) == n_events


def test_a_short_dip_keeps_the_start_and_a_long_dip_restarts_it():
    short = _frames(2.5, _people(6)) + _frames(1.0, _people(5)) + _frames(2.0, _people(6))  # dip 2.5 .. 3.0
    assert _spans(_run(short)) == [("open", 0.0, 4.0), ("closed", 0.0, 5.0)]
    long = _frames(2.5, _people(6)) + _frames(2.0, _people(5)) + _frames(5.0, _people(6))  # dip 2.5 .. 4.0
    assert _spans(_run(long)) == [("open", 4.5, 8.5), ("closed", 4.5, 9.0)]


def test_end_hysteresis_keeps_the_event_open_down_to_end_ratio():
    frames = _frames(5.0, _people(6)) + _frames(10.0, _people(4)) + _frames(5.0, _people(3))
    events = _run(frames)  # 6 people 0 .. 4.5 s, 4 people 5 .. 14.5 s (4 >= 0.8 * 5), then 3
    assert _spans(events) == [("open", 0.0, 4.0), ("closed", 0.0, 14.5)]
    updated = [e for e in events if e.status == "updated"]
    # members churn in a crowd, so records refresh every update_every (5 s) after opening, not on each change
    assert updated[0].end == 9.0 and updated[0].member_ids == (1, 2, 3, 4)
    assert events[-1].evidence["peak_count"] == 6 and events[-1].evidence["count"] == 4
    no_hysteresis = _run(frames, CONFIG.model_copy(update={"end_ratio": 1.0}))  # 4 < 5: ends at once
    assert _spans(no_hysteresis) == [("open", 0.0, 4.0), ("closed", 0.0, 4.5)]


def test_a_closed_event_needs_a_new_min_duration_even_within_grace():
    config = CONFIG.model_copy(update={"grace": 3.0, "end_grace": 1.0})
    frames = _frames(5.0, _people(6)) + _frames(1.0, []) + _frames(3.5, _people(6))  # back at 6 s, 1.5 s later
    assert _spans(_run(frames, config)) == [("open", 0.0, 4.0), ("closed", 0.0, 4.5)]
    frames = _frames(5.0, _people(6)) + _frames(1.0, []) + _frames(4.5, _people(6))
    assert _spans(_run(frames, config)) == [("open", 0.0, 4.0), ("closed", 0.0, 4.5), ("open", 6.0, 10.0),
                                            ("closed", 6.0, 10.0)]


def test_lost_tracks_count_and_tentative_tracks_do_not():
    lost = _people(4) + _people(2, first=5, state=LOST)
    events = _run(_frames(5.0, lost))
    assert _spans(events) == [("open", 0.0, 4.0), ("closed", 0.0, 4.5)]
    assert events[0].member_ids == (1, 2, 3, 4, 5, 6)
    assert _run(_frames(5.0, _people(4) + _people(2, first=5, state=TENTATIVE))) == []


def test_zone_and_class_restriction():
    outside = _people(3) + _people(3, first=4, inside=False) + _people(3, first=7, cls=CLASS_IDS["car"])
    assert _run(_frames(5.0, outside)) == []
    events = _run(_frames(5.0, outside), CONFIG.model_copy(update={"zone": None}))
    assert events[0].member_ids == (1, 2, 3, 4, 5, 6) and events[0].zone_id is None
    assert events[0].evidence["zone"] == "frame"


def test_density_with_an_affine_calibration():
    geometry = SceneGeometry(zones=(SQUARE,), calibration=AFFINE)
    config = CONFIG.model_copy(update={"per_m2": True, "max_density": 0.1})  # 0.1 / m² on 50 m²: more than 5
    config.check_geometry(geometry)
    events = _run(_frames(5.0, _people(6)), config, geometry=geometry)
    assert _spans(events) == [("open", 0.0, 4.0), ("closed", 0.0, 4.5)]
    ev = events[-1].evidence
    assert ev["measure"] == "density" and ev["threshold"] == 0.1 and ev["end_threshold"] == 0.08
    assert ev["zone_area_m2"] == pytest.approx(50.0) and ev["density"] == pytest.approx(0.12)
    assert ev["peak_density"] == pytest.approx(0.12) and ev["count"] == 6
    assert events[-1].score == pytest.approx(1 - 0.5 ** 1.2)
    assert _run(_frames(5.0, _people(4)), config, geometry=geometry) == []  # 0.08 / m²


def test_count_mode_reports_the_density_when_calibrated():
    geometry = SceneGeometry(zones=(SQUARE,), calibration=AFFINE)
    events = _run(_frames(5.0, _people(6)), geometry=geometry)
    assert events[0].evidence["zone_area_m2"] == pytest.approx(50.0)
    assert events[0].evidence["density"] == pytest.approx(0.12) and events[0].evidence["measure"] == "count"


def test_zone_area_follows_the_perspective():
    assert zone_area_m2(Zone(id="quad", polygon=TRAPEZOID), PERSPECTIVE) == pytest.approx(40.0)
    back = np.linalg.inv(PERSPECTIVE.homography)  # ground -> image: the far half of the rectangle, 4 m x 5 m
    far = apply_homography(np.array([[0, 0], [4, 0], [4, 5], [0, 5]], float), back)
    far_zone = Zone(id="far", polygon=tuple(map(tuple, far.tolist())))
    assert zone_area_m2(far_zone, PERSPECTIVE) == pytest.approx(20.0, rel=1e-6)
    assert zone_area_m2(SQUARE, AFFINE) == pytest.approx(50.0)


def test_config_and_geometry_validation():
    per_m2 = CONFIG.model_copy(update={"per_m2": True})
    with pytest.raises(ValueError, match="calibration"):
        per_m2.check_geometry(GEOMETRY)
    with pytest.raises(ValueError, match="needs a zone"):
        per_m2.model_copy(update={"zone": None}).check_geometry(SceneGeometry(calibration=AFFINE))
    with pytest.raises(ValueError, match=r"'nope' is not a zone.*square"):
        CONFIG.model_copy(update={"zone": "nope"}).check_geometry(GEOMETRY)
    sky = Zone(id="square", polygon=((0.0, 0.1), (1.0, 0.1), (1.0, 1.0), (0.0, 1.0)))  # above the horizon
    with pytest.raises(ValueError, match="horizon"):
        per_m2.check_geometry(SceneGeometry(zones=(sky,), calibration=PERSPECTIVE))
    CONFIG.check_geometry(SceneGeometry(zones=(sky,), calibration=PERSPECTIVE))  # count mode: fine
    per_m2.check_geometry(SceneGeometry(zones=(SQUARE,), calibration=AFFINE))
    CONFIG.model_copy(update={"zone": None}).check_geometry(SceneGeometry())


def test_a_zone_beyond_the_horizon_counts_without_area_in_count_mode():
    geometry = SceneGeometry(zones=(Zone(id="square", polygon=((0.0, 0.1), (1.0, 0.1), (1.0, 1.0), (0.0, 1.0))),),
                             calibration=PERSPECTIVE)
    events = _run(_frames(5.0, _people(6)), geometry=geometry)
    assert len({e.id for e in events}) == 1 and "zone_area_m2" not in events[0].evidence


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"zone": ...}, "zone"),
        ({"max_count": 0}, "greater than or equal"),
        ({"max_density": 0.0}, "greater than 0"),
        ({"min_duration": 0.0}, "greater than 0"),
        ({"grace": -1.0}, "greater than or equal"),
        ({"end_grace": -1.0}, "greater than or equal"),
        ({"end_ratio": 0.0}, "greater than 0"),
        ({"end_ratio": 1.5}, "less than or equal"),
        ({"classes": ("dragon",)}, "unknown class"),
        ({"colour": "red"}, "Extra inputs"),
    ],
)
def test_config_is_strict(kwargs, message):
    data = {"kind": "occupancy", "id": "crowd", "zone": "square", **kwargs}
    data = {k: v for k, v in data.items() if v is not ...}  # ...: leave the field out
    with pytest.raises(ValidationError, match=message):
        OccupancyConfig.model_validate(data)


def test_defaults():
    cfg = OccupancyConfig.model_validate({"kind": "occupancy", "id": "c", "zone": None})
    assert (cfg.classes, cfg.max_count, cfg.per_m2, cfg.max_density, cfg.min_duration, cfg.grace, cfg.end_grace,
            cfg.end_ratio) == (("person",), 10, False, 1.0, 10.0, 2.0, 5.0, 0.8)


def test_close_at_end_of_stream_uses_the_last_time_the_condition_held():
    rule = OccupancyRule(CONFIG)
    state = rule.initial_state()
    assert rule.close(state, 0.0, context=_ctx(0)) == []
    frames = _frames(6.5, _people(6)) + _frames(1.0, _people(3))  # holds until 6.0 s; the stream ends at 7.0 s
    for seq, rows in enumerate(frames):
        state, _ = rule.step(_tracks(rows), state, seq * DT, context=_ctx(seq))
    closed = rule.close(state, 7.0, context=_ctx(14))
    assert [(e.status, e.start, e.end, e.id) for e in closed] == [("closed", 0.0, 6.0, "cam:crowd:0")]


def test_step_is_pure_and_deterministic():
    geometry = SceneGeometry(zones=(SQUARE,), calibration=AFFINE)
    rule = OccupancyRule(CONFIG)
    frames = _frames(5.0, _people(6)) + _frames(1.0, _people(4, first=3)) + _frames(3.0, _people(2))
    assert_steps_are_pure(rule, [_tracks(rows) for rows in frames], [seq * DT for seq in range(len(frames))],
                          [_ctx(seq, geometry) for seq in range(len(frames))])
    assert _run(frames, geometry=geometry) == _run(frames, geometry=geometry)
