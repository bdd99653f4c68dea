"""intrusion rule: one event per track of a forbidden class in the zone, after a minimum presence."""

from __future__ import annotations


import numpy as np
import pytest
from pydantic import ValidationError

from analytics.geometry import SceneGeometry, Zone
from analytics.rules.base import Event, RuleContext
from analytics.rules.intrusion import IntrusionConfig, IntrusionRule
from analytics.types import CLASS_IDS, PERSON, Tracks, TrackState
from support import assert_steps_are_pure

W, H = 640, 480
DT = 0.25  # seconds between frames (exact in binary)
GEOMETRY = SceneGeometry(zones=(Zone(id="road", polygon=((0.0, 0.5), (1.0, 0.5), (1.0, 1.0), (0.0, 1.0))),))
INSIDE, OUTSIDE = (320.0, 400.0), (320.0, 100.0)  # anchors (pixels) in and out of the zone
CONFIG = IntrusionConfig(kind="intrusion", id="walkers", zone="road", classes=("person", "bicycle"))
CONFIRMED, LOST, TENTATIVE = TrackState.CONFIRMED, TrackState.LOST, TrackState.TENTATIVE
CAR, BICYCLE = CLASS_IDS["car"], CLASS_IDS["bicycle"]


def _row(tid: int, where: tuple[float, float] = INSIDE, *, state: int = CONFIRMED, cls: int = PERSON,
         conf: float = 0.8) -> tuple:
    return tid, where[0] + 5 * tid, where[1], state, cls, conf


def _tracks(rows: list[tuple]) -> Tracks:
    """Boxes 40x100 px whose bottom-centre anchor is (x, y)."""
    if not rows:
        return Tracks.empty()
    tid, x, y, state, cls, conf = (np.array(c) for c in zip(*rows))
    n = len(tid)
    return Tracks(tid, np.stack([x - 20, y - 100, x + 20, y], axis=1), cls, conf, np.zeros((n, 2)),
                  np.full(n, 10), state)


def _ctx(seq: int) -> RuleContext:
    return RuleContext(camera_id="cam", frame_size=(W, H), seq=seq, geometry=GEOMETRY)


def _run(frames: list[list[tuple]], config: IntrusionConfig = CONFIG) -> list[Event]:
    """Step over frames at t = 0, DT, 2 DT...; close at the last frame's time."""
    rule = IntrusionRule(config)
    state, events = rule.initial_state(), []
    for seq, rows in enumerate(frames):
        state, new = rule.step(_tracks(rows), state, seq * DT, context=_ctx(seq))
        events.extend(new)
    return events + rule.close(state, (len(frames) - 1) * DT, context=_ctx(len(frames) - 1))


def _frames(seconds: float, rows: list[tuple]) -> list[list[tuple]]:
    """The same rows from t to t + seconds inclusive."""
    return [list(rows) for _ in range(round(seconds / DT) + 1)]


def _absent(seconds: float) -> list[list[tuple]]:
    """Empty frames making a gap of ``seconds`` between the surrounding present frames."""
    return [[] for _ in range(round(seconds / DT) - 1)]


def _spans(events: list[Event]) -> list[tuple[str, float, float, tuple[int, ...]]]:
    return [(e.status, e.start, e.end, e.member_ids) for e in events if e.status != "updated"]


def test_a_person_on_the_carriageway_gives_one_event():
    events = _run(_frames(3.0, [_row(4)]) + _absent(3.0))
    assert _spans(events) == [("open", 0.0, 1.0, (4,)), ("closed", 0.0, 3.0, (4,))]
    last = events[-1]
    assert last.kind == "intrusion" and last.zone_id == "road" and last.classes == ("person",)
    assert last.evidence == {"zone": "road", "class": "person", "mean_confidence": 0.8, "min_duration": 1.0,
                             "duration": 3.0}
    assert last.score == pytest.approx(0.8 * (1 - 0.5 ** 3.0), abs=1e-6)  # mean confidence x saturating
    assert events[0].score == pytest.approx(0.8 * 0.5, abs=1e-6)


@pytest.mark.parametrize(("stay", "n_events"), [(0.75, 0), (1.0, 1)])
def test_min_duration_boundary(stay, n_events):
    events = _run(_frames(stay, [_row(1)]))
    assert len({e.id for e in events}) == n_events


def test_allowed_classes_outside_the_zone_and_tentative_tracks_do_not_count():
    frames = _frames(5.0, [_row(1, cls=CAR), _row(2, OUTSIDE), _row(3, state=TENTATIVE)])
    assert _run(frames) == []


def test_vehicles_in_a_pedestrian_zone():
    config = CONFIG.model_copy(update={"classes": ("car", "truck", "bus", "motorcycle")})
    events = _run(_frames(2.0, [_row(1), _row(2, cls=CAR), _row(3, cls=BICYCLE)]), config)
    assert _spans(events) == [("open", 0.0, 1.0, (2,)), ("closed", 0.0, 2.0, (2,))]
    assert events[-1].evidence["class"] == "car"


def test_flicker_before_opening_within_grace_keeps_the_presence_and_beyond_grace_restarts_it():
    short = _frames(0.5, [_row(1)]) + _absent(1.0) + _frames(0.5, [_row(1)])  # 0 .. 0.5, 1.5 .. 2.0
    assert _spans(_run(short)) == [("open", 0.0, 1.5, (1,)), ("closed", 0.0, 2.0, (1,))]
    long = _frames(0.5, [_row(1)]) + _absent(1.5) + _frames(0.5, [_row(1)])  # 0 .. 0.5, 2.0 .. 2.5
    assert _run(long) == []


def test_absence_after_opening_splits_only_beyond_end_grace():
    within = _frames(2.0, [_row(1)]) + _absent(1.75) + _frames(2.0, [_row(1)])
    assert _spans(_run(within)) == [("open", 0.0, 1.0, (1,)), ("closed", 0.0, 5.75, (1,))]
    beyond = _frames(2.0, [_row(1)]) + _absent(2.5) + _frames(2.0, [_row(1)])
    assert _spans(_run(beyond)) == [("open", 0.0, 1.0, (1,)), ("closed", 0.0, 2.0, (1,)),
                                    ("open", 4.5, 5.5, (1,)), ("closed", 4.5, 6.5, (1,))]


def test_lost_tracks_count_as_present():
    frames = _frames(0.5, [_row(1)]) + _frames(2.0, [_row(1, state=LOST)]) + _frames(0.5, [_row(1)])
    assert _spans(_run(frames)) == [("open", 0.0, 1.0, (1,)), ("closed", 0.0, 3.5, (1,))]


def test_each_intruder_gets_its_own_event_and_score_follows_confidence():
    events = _run(_frames(2.0, [_row(7, conf=0.5), _row(3, conf=1.0)]))
    closed = [e for e in events if e.status == "closed"]
    assert [e.member_ids for e in closed] == [(3,), (7,)] and len({e.id for e in events}) == 2
    assert closed[0].score == pytest.approx(2 * closed[1].score, abs=1e-6)
    assert [e.evidence["mean_confidence"] for e in closed] == [1.0, 0.5]


def test_close_at_end_of_stream_uses_the_last_time_present():
    rule = IntrusionRule(CONFIG)
    state = rule.initial_state()
    assert rule.close(state, 0.0, context=_ctx(0)) == []
    for seq, rows in enumerate(_frames(2.0, [_row(1)]) + [[]]):
        state, _ = rule.step(_tracks(rows), state, seq * DT, context=_ctx(seq))
    closed = rule.close(state, 2.25, context=_ctx(9))
    assert [(e.status, e.start, e.end) for e in closed] == [("closed", 0.0, 2.0)]


def test_step_is_pure_and_deterministic():
    rule = IntrusionRule(CONFIG)
    frames = _frames(1.5, [_row(1), _row(2, state=LOST)]) + _absent(0.5) + _frames(1.0, [_row(1, OUTSIDE)])
    assert_steps_are_pure(rule, [_tracks(rows) for rows in frames], [seq * DT for seq in range(len(frames))],
                          [_ctx(seq) for seq in range(len(frames))])
    assert _run(frames) == _run(frames)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"zone": None}, "zone"),
        ({"classes": None}, "classes"),
        ({"classes": ("dragon",)}, "unknown class"),
        ({"min_duration": 0.0}, "greater than 0"),
        ({"grace": -0.5}, "greater than or equal"),
        ({"end_grace": -0.5}, "greater than or equal"),
        ({"colour": "red"}, "Extra inputs"),
    ],
)
def test_config_is_strict(kwargs, message):
    data = {"kind": "intrusion", "id": "i", "zone": "road", "classes": ["person"], **kwargs}
    data = {k: v for k, v in data.items() if v is not None}  # None: leave the field out
    with pytest.raises(ValidationError, match=message):
        IntrusionConfig.model_validate(data)


def test_defaults_and_geometry_check():
    cfg = IntrusionConfig.model_validate({"kind": "intrusion", "id": "i", "zone": "road", "classes": ["person"]})
    assert (cfg.min_duration, cfg.grace, cfg.end_grace) == (1.0, 1.0, 2.0)
    cfg.check_geometry(GEOMETRY)
    with pytest.raises(ValueError, match=r"'lawn' is not a zone.*road"):
        cfg.model_copy(update={"zone": "lawn"}).check_geometry(GEOMETRY)
