"""loitering rule: one event per track per stay in the zone, despite flicker, occlusion and LOST frames."""

from __future__ import annotations


import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from analytics.geometry import SceneGeometry, Zone
from analytics.rules.base import Event, RuleContext
from analytics.rules.loitering import LoiteringConfig, LoiteringRule, StayState
from analytics.types import CLASS_IDS, PERSON, Tracks, TrackState
from support import assert_steps_are_pure

W, H = 640, 480
DT = 0.5  # seconds between frames (exact in binary, so boundaries are exact)
GEOMETRY = SceneGeometry(zones=(Zone(id="table", polygon=((0.5, 0.5), (1.0, 0.5), (1.0, 1.0), (0.5, 1.0))),))
INSIDE, OUTSIDE = (480.0, 400.0), (100.0, 100.0)  # anchors (pixels) in and out of the zone
CONFIG = LoiteringConfig(kind="loitering", id="loiter", zone="table", min_duration=10.0, grace=3.0, end_grace=3.0)
CONFIRMED, LOST, TENTATIVE = TrackState.CONFIRMED, TrackState.LOST, TrackState.TENTATIVE


def _row(tid: int, where: tuple[float, float] = INSIDE, *, state: int = CONFIRMED, cls: int = PERSON,
         vx: float = 0.0, conf: float = 0.9) -> tuple:
    return tid, where[0] + 3 * tid, where[1], state, cls, vx, conf


def _tracks(rows: list[tuple]) -> Tracks:
    """Persons (by default) with boxes 40x100 px whose bottom-centre anchor is (x, y)."""
    if not rows:
        return Tracks.empty()
    tid, x, y, state, cls, vx, conf = (np.array(c) for c in zip(*rows))
    xyxy = np.stack([x - 20, y - 100, x + 20, y], axis=1)
    vel = np.stack([vx, np.zeros(len(vx))], axis=1)
    return Tracks(tid, xyxy, cls, conf, vel, np.full(len(tid), 10), state)


def _ctx(seq: int, geometry: SceneGeometry = GEOMETRY) -> RuleContext:
    return RuleContext(camera_id="cam", frame_size=(W, H), seq=seq, geometry=geometry)


def _run(frames: list[list[tuple]], config: LoiteringConfig = CONFIG, *, close: bool = True,
         geometry: SceneGeometry = GEOMETRY) -> list[Event]:
    """Step the rule over frames at DT spacing (t = 0, DT, ...); with ``close``, close at the last frame."""
    rule = LoiteringRule(config)
    state, events = rule.initial_state(), []
    for seq, rows in enumerate(frames):
        state, new = rule.step(_tracks(rows), state, seq * DT, context=_ctx(seq, geometry))
        events.extend(new)
    if close:
        events.extend(rule.close(state, (len(frames) - 1) * DT, context=_ctx(len(frames) - 1, geometry)))
    return events


def _frames(seconds: float, rows: list[tuple]) -> list[list[tuple]]:
    """The same rows for ``seconds`` (inclusive of both ends: seconds / DT + 1 frames)."""
    return [list(rows) for _ in range(round(seconds / DT) + 1)]


def _absent(seconds: float) -> list[list[tuple]]:
    """Frames for a gap of ``seconds`` between two present frames (gap + DT between their times)."""
    return [[] for _ in range(round(seconds / DT) - 1)]


def _by_id(events: list[Event]) -> dict[str, list[Event]]:
    out: dict[str, list[Event]] = {}
    for e in events:
        out.setdefault(e.id, []).append(e)
    return out


def test_a_person_staying_gives_one_event_opening_at_min_duration():
    frames = _frames(20.0, [_row(1)]) + [[]] * 20
    events = _run(frames)
    assert [(e.status, e.start, e.end) for e in events] == [
        ("open", 0.0, 10.0), ("updated", 0.0, 15.0), ("updated", 0.0, 20.0), ("closed", 0.0, 20.0)]
    assert {e.id for e in events} == {"cam:loiter:0"}
    last = events[-1]
    assert last.kind == "loitering" and last.zone_id == "table" and last.member_ids == (1,)
    assert last.classes == ("person",) and last.evidence["class"] == "person"
    assert last.evidence["duration"] == 20.0 and last.evidence["zone"] == "table"
    assert last.evidence["mean_speed_mps"] == 0.0 and last.evidence["speed_calibrated"] is False
    assert last.evidence["min_duration"] == 10.0 and "max_speed_mps" not in last.evidence
    assert last.score == pytest.approx(0.75)  # 1 - 0.5 ** (20 / 10)
    assert events[0].score == pytest.approx(0.5)


@pytest.mark.parametrize(("stay", "n_events"), [(9.5, 0), (10.0, 1)])
def test_min_duration_boundary(stay, n_events):
    events = _run(_frames(stay, [_row(1)]), close=True)
    assert len(_by_id(events)) == n_events


def test_outside_the_zone_other_classes_and_tentative_tracks_do_not_count():
    car = CLASS_IDS["car"]
    frames = _frames(30.0, [_row(1, OUTSIDE), _row(2, cls=car), _row(3, state=TENTATIVE)])
    assert _run(frames) == []


def test_whole_frame_when_zone_is_null():
    events = _run(_frames(12.0, [_row(1, OUTSIDE)]), CONFIG.model_copy(update={"zone": None}))
    assert len(_by_id(events)) == 1
    assert events[0].zone_id is None and events[0].evidence["zone"] == "frame"


@pytest.mark.parametrize("gap_rows", [[], [_row(1, OUTSIDE)], [_row(1, state=TENTATIVE)]])
def test_a_short_absence_before_opening_keeps_the_stay(gap_rows):
    gap = [list(gap_rows) for _ in _absent(3.0)]  # 3 s between present frames: within grace
    events = _run(_frames(4.0, [_row(1)]) + gap + _frames(4.0, [_row(1)]))
    assert [(e.status, e.start) for e in events] == [("open", 0.0), ("closed", 0.0)]
    assert events[-1].end == 11.0


def test_a_long_absence_before_opening_restarts_the_stay():
    # Absent at 8.5 .. 11.5: the frame at 11.5 is 3.5 s > grace after the last present one, which ends the stay.
    frames = _frames(8.0, [_row(1)]) + _absent(4.0) + _frames(8.0, [_row(1)])
    assert _run(frames) == []
    frames = _frames(8.0, [_row(1)]) + _absent(4.0) + _frames(10.0, [_row(1)])
    events = _run(frames)
    assert [(e.status, e.start) for e in events] == [("open", 12.0), ("closed", 12.0)]


def test_a_short_absence_after_opening_does_not_split_and_a_long_one_does():
    short = _frames(12.0, [_row(1)]) + _absent(2.5) + _frames(12.0, [_row(1)])
    events = _run(short)
    assert len(_by_id(events)) == 1 and events[-1].end == 26.5 and events[-1].start == 0.0
    long = _frames(12.0, [_row(1)]) + _absent(4.0) + _frames(12.0, [_row(1)])
    events = _run(long)
    assert [(e.status, e.start, e.end) for e in events if e.status != "updated"] == [
        ("open", 0.0, 10.0), ("closed", 0.0, 12.0), ("open", 16.0, 26.0), ("closed", 16.0, 28.0)]
    assert len(_by_id(events)) == 2


def test_lost_tracks_count_as_present():
    frames = _frames(4.0, [_row(1)]) + _frames(6.0, [_row(1, state=LOST)]) + _frames(4.0, [_row(1)])
    events = _run(frames)
    assert [(e.status, e.start) for e in events if e.status != "updated"] == [("open", 0.0), ("closed", 0.0)]
    assert events[-1].end == 15.0


def test_a_return_after_the_event_closed_is_a_new_stay_even_within_grace():
    config = CONFIG.model_copy(update={"grace": 5.0, "end_grace": 1.0})
    frames = _frames(12.0, [_row(1)]) + _absent(2.0) + _frames(5.0, [_row(1)])
    events = _run(frames, config)
    assert [e.status for e in events if e.status != "updated"] == ["open", "closed"]  # the return is too short


def test_max_speed_only_counts_slow_frames():
    # Fallback scale: a 100 px tall person is 1.7 m, so 100 px/s is 1.7 m/s and 20 px/s is 0.34 m/s.
    config = CONFIG.model_copy(update={"max_speed_mps": 1.0})
    assert _run(_frames(20.0, [_row(1, vx=100.0)]), config) == []
    events = _run(_frames(20.0, [_row(1, vx=20.0)]), config)
    assert len(_by_id(events)) == 1
    assert events[-1].evidence["mean_speed_mps"] == pytest.approx(0.34, abs=1e-3)
    assert events[-1].evidence["max_speed_mps"] == 1.0


def test_people_together_get_one_event_each_in_track_order():
    events = _run(_frames(12.0, [_row(5), _row(2), _row(9, OUTSIDE)]))
    opens = [e for e in events if e.status == "open"]
    assert [e.member_ids for e in opens] == [(2,), (5,)]
    assert [e.id for e in opens] == ["cam:loiter:0", "cam:loiter:1"]


def test_close_at_end_of_stream_uses_the_last_time_present():
    rule = LoiteringRule(CONFIG)
    state = rule.initial_state()
    assert rule.close(state, 0.0, context=_ctx(0)) == []
    for seq, rows in enumerate(_frames(15.0, [_row(1)]) + [[], []]):
        state, _ = rule.step(_tracks(rows), state, seq * DT, context=_ctx(seq))
    closed = rule.close(state, 16.0, context=_ctx(32))
    assert [(e.status, e.start, e.end, e.id) for e in closed] == [("closed", 0.0, 15.0, "cam:loiter:0")]
    assert closed[0].evidence["duration"] == 15.0


def test_step_is_pure_and_deterministic():
    rule = LoiteringRule(CONFIG.model_copy(update={"max_speed_mps": 1.0}))
    frames = _frames(12.0, [_row(1, vx=10.0), _row(2, state=LOST)]) + _absent(2.0) + _frames(3.0, [_row(1)])
    assert_steps_are_pure(rule, [_tracks(rows) for rows in frames], [seq * DT for seq in range(len(frames))],
                          [_ctx(seq) for seq in range(len(frames))])
    assert _run(frames) == _run(frames)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"classes": ("dragon",)}, "unknown class"),
        ({"classes": ()}, "at least one class"),
        ({"min_duration": 0.0}, "greater than 0"),
        ({"grace": -1.0}, "greater than or equal"),
        ({"end_grace": -1.0}, "greater than or equal"),
        ({"max_speed_mps": 0.0}, "greater than 0"),
        ({"colour": "red"}, "Extra inputs"),
        ({"kind": "gathering"}, "loitering"),
    ],
)
def test_config_is_strict(kwargs, message):
    with pytest.raises(ValidationError, match=message):
        LoiteringConfig.model_validate({"kind": "loitering", "id": "loiter", **kwargs})


def test_defaults_and_geometry_check():
    cfg = LoiteringConfig(kind="loitering", id="l")
    assert (cfg.zone, cfg.classes, cfg.min_duration, cfg.grace, cfg.end_grace, cfg.max_speed_mps) == (
        None, ("person",), 30.0, 3.0, 3.0, None)
    cfg.check_geometry(SceneGeometry())  # whole frame: needs no zone
    CONFIG.check_geometry(GEOMETRY)
    with pytest.raises(ValueError, match=r"'nope' is not a zone.*table"):
        CONFIG.model_copy(update={"zone": "nope"}).check_geometry(GEOMETRY)


# --------------------------------------------------------------------------------------------------
# Property: K people one after another, each lingering with flicker, give exactly K events
# --------------------------------------------------------------------------------------------------

MIN_FRAMES = round(CONFIG.min_duration / DT)  # a stay of this many frame steps reaches min_duration
GAP_FRAMES = round(CONFIG.grace / DT) - 1  # at most this many missing frames keep present frames <= grace apart


_SEGMENT = st.tuples(st.integers(1, 12), st.integers(0, GAP_FRAMES), st.sampled_from([0, 3]), st.sampled_from([1, 2]))


@st.composite
def _visitors(draw: st.DrawFn) -> list[tuple[int, list[int]]]:
    """Per person: (arrival frame, per-frame codes) with 0 absent, 1 in the zone, 2 LOST, 3 out of the zone.

    A stay alternates present runs (in the zone, some frames LOST) and flicker gaps (absent or out of the zone)
    of at most GAP_FRAMES frames, starts and ends in the zone, and lasts at least min_duration.
    """
    people, arrival = [], 0
    for _ in range(draw(st.integers(1, 4))):
        arrival += draw(st.integers(0, 40))
        codes = [1]
        for present, gap, gap_code, present_code in draw(st.lists(_SEGMENT, max_size=10)):
            codes += [present_code] * present + [gap_code] * gap
        codes += [1] * max(1, MIN_FRAMES + 1 + draw(st.integers(0, 10)) - len(codes))
        people.append((arrival, codes))
    return people


def _schedule(people: list[tuple[int, list[int]]]) -> list[list[tuple]]:
    n_frames = max(a + len(c) for a, c in people) + 10
    frames: list[list[tuple]] = [[] for _ in range(n_frames)]
    for tid, (arrival, codes) in enumerate(people, start=1):
        for i, code in enumerate(codes):
            if code == 1:
                frames[arrival + i].append(_row(tid))
            elif code == 2:
                frames[arrival + i].append(_row(tid, state=LOST))
            elif code == 3:
                frames[arrival + i].append(_row(tid, OUTSIDE))
    return frames


@settings(max_examples=60, deadline=None)
@given(people=_visitors(), close_early=st.booleans())
def test_k_people_lingering_one_after_another_give_k_events(people, close_early):
    frames = _schedule(people)
    if close_early:  # end the stream while someone is still there
        frames = frames[: max(a + len(c) for a, c in people)]
    events = _run(frames)
    by_id = _by_id(events)
    assert len(by_id) == len(people)
    assert sorted(evs[0].member_ids[0] for evs in by_id.values()) == list(range(1, len(people) + 1))
    for evs in by_id.values():
        assert [e.status for e in evs][0] == "open" and [e.status for e in evs].count("open") == 1
        assert [e.status for e in evs][-1] == "closed" and [e.status for e in evs].count("closed") == 1
        tid = evs[0].member_ids[0]
        arrival, codes = people[tid - 1]
        assert evs[0].start == arrival * DT and evs[-1].end == (arrival + len(codes) - 1) * DT


def test_state_is_a_frozen_value():
    state = StayState()
    with pytest.raises(AttributeError):
        state.timers = {}  # type: ignore[misc]
