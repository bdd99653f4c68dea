"""Event-level evaluation: ground truth as a track log, track-id mapping, event life cycles and matching."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from analytics import paths
from analytics.event_eval import EventMatch, final_events, match_events, track_id_mapping
from analytics.evaluation import MOT_COLUMNS, mot_to_track_log, read_mot
from analytics.rules.base import Event
from analytics.tracklog import TRACK_SCHEMA

PETS_GT = paths.footage_dir() / "mot" / "PETS09-S2L1" / "gt" / "gt.txt"


def _mot(rows: list[tuple]) -> pl.DataFrame:
    """MOT rows ``(frame, id, x, y, w, h[, conf])``; conf defaults to 1, c8..c10 to -1."""
    full = [(*r, *(1.0,) * (7 - len(r)), -1.0, -1.0, -1.0) for r in rows]
    return pl.DataFrame(full, schema=list(MOT_COLUMNS), orient="row").with_columns(
        pl.col("frame").cast(pl.Int64), pl.col("id").cast(pl.Int64), pl.exclude("frame", "id").cast(pl.Float64))


def _walker(track_id: int, frames: range, *, x0: float = 100.0, dx: float = 10.0, y: float = 50.0) -> list[tuple]:
    """A 20 x 60 px box moving ``dx`` px per frame to the right from ``x0`` (at its first frame)."""
    return [(f, track_id, x0 + dx * (f - frames[0]), y, 20.0, 60.0) for f in frames]


# ------------------------------------------------------------------------------------- mot_to_track_log


def test_ground_truth_track_log_has_the_track_schema() -> None:
    log = mot_to_track_log(_mot(_walker(2, range(1, 6)) + _walker(1, range(3, 6))), camera_id="gt", fps=10.0)
    assert log.columns == list(TRACK_SCHEMA)
    assert [str(d) for d in log.dtypes] == [dtype for dtype, _ in TRACK_SCHEMA.values()]
    assert log.select("seq", "track_id").rows() == [(0, 2), (1, 2), (2, 1), (2, 2), (3, 1), (3, 2), (4, 1), (4, 2)]
    first = log.row(0, named=True)
    assert first | {"timestamp": 0.0} == {
        "camera_id": "gt", "seq": 0, "timestamp": 0.0, "track_id": 2, "class_id": 0, "class_name": "person",
        "confidence": 1.0, "x1": 100.0, "y1": 50.0, "x2": 120.0, "y2": 110.0, "anchor_x": 110.0,
        "anchor_y": 110.0, "vx": 0.0, "vy": 0.0, "age": 0, "state": 1}
    assert log.filter(pl.col("track_id") == 1)["age"].to_list() == [0, 1, 2]
    assert log["timestamp"].to_list() == pytest.approx(log["seq"].to_numpy() / 10.0)


def test_ground_truth_velocity_of_a_constant_velocity_track() -> None:
    # 10 px per frame at 10 fps is 100 px/s; the first row has no history, so 0.
    log = mot_to_track_log(_mot(_walker(1, range(1, 21))), camera_id="gt", fps=10.0)
    assert log["vx"][0] == 0.0
    assert log["vx"].to_list()[1:] == pytest.approx([100.0] * 19)
    assert log["vy"].to_list() == pytest.approx([0.0] * 20)


def test_ground_truth_velocity_across_gaps_and_is_causal() -> None:
    # Frames 6-8 missing (occlusion), then the walker stops at frame 12.
    rows = [r for r in _walker(1, range(1, 13)) if not 6 <= r[0] <= 8]
    rows += [(f, 1, rows[-1][2], 50.0, 20.0, 60.0) for f in range(13, 25)]
    full = mot_to_track_log(_mot(rows), camera_id="gt", fps=10.0)
    vx = dict(zip(full["seq"].to_list(), full["vx"].to_list(), strict=True))
    assert vx[8] == pytest.approx(100.0)  # the frame after the gap: elapsed time from the frame numbers
    assert vx[11] == pytest.approx(100.0)
    assert 0.0 < vx[13] < 100.0  # a 0.5 s (5 frame) window: slowing down
    assert vx[16] == pytest.approx(0.0) and vx[23] == pytest.approx(0.0)
    early = mot_to_track_log(_mot([r for r in rows if r[0] <= 15]), camera_id="gt", fps=10.0)
    assert early["vx"].to_list() == full["vx"].to_list()[: early.height]  # no look-ahead


def test_ground_truth_drops_ignore_rows_and_starts_age_at_the_first_kept_row() -> None:
    rows = [(*r, 0.0 if r[0] <= 2 else 1.0) for r in _walker(4, range(1, 7))]
    log = mot_to_track_log(_mot(rows), camera_id="gt", fps=10.0)
    assert log["seq"].to_list() == [2, 3, 4, 5]
    assert log["age"].to_list() == [0, 1, 2, 3]
    assert log["vx"].to_list() == pytest.approx([0.0, 100.0, 100.0, 100.0])


def test_ground_truth_frame_offset_and_empty_input() -> None:
    log = mot_to_track_log(_mot(_walker(1, range(0, 3))), camera_id="gt", fps=5.0, frame_offset=0)
    assert log["seq"].to_list() == [0, 1, 2] and log["timestamp"].to_list() == pytest.approx([0.0, 0.2, 0.4])
    empty = mot_to_track_log(_mot(_walker(1, range(1, 3))).head(0), camera_id="gt", fps=5.0)
    assert empty.height == 0 and empty.columns == list(TRACK_SCHEMA)


@pytest.mark.parametrize(("rows", "kwargs", "match"), [
    (_walker(1, range(1, 3)), {"fps": 0.0}, "fps"),
    (_walker(1, range(1, 3)) * 2, {"fps": 7.0}, "repeats"),
    (_walker(1, range(1, 3)), {"fps": 7.0, "frame_offset": 2}, "before frame_offset"),
])
def test_ground_truth_conversion_rejects_bad_input(rows: list[tuple], kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        mot_to_track_log(_mot(rows), camera_id="gt", **kwargs)


@pytest.mark.skipif(not PETS_GT.is_file(), reason=f"no shared ground truth at {PETS_GT}")
def test_pets09_ground_truth_converts_with_plausible_walking_speeds() -> None:
    gt = read_mot(PETS_GT)
    log = mot_to_track_log(gt, camera_id="pets", fps=7.0)
    assert log.height == gt.filter(pl.col("conf") != 0).height
    speed = np.hypot(log["vx"].to_numpy(), log["vy"].to_numpy())
    assert np.isfinite(speed).all()
    assert 5.0 < float(np.median(speed[log["age"].to_numpy() > 0])) < 80.0  # px/s, people walking
    assert log.select("seq", "track_id").is_duplicated().sum() == 0


# ------------------------------------------------------------------------------------- track_id_mapping


def _two_walkers() -> pl.DataFrame:
    """Reference log: id 1 at y=50 and id 2 at y=300, both walking right, frames 1-10."""
    return mot_to_track_log(_mot(_walker(1, range(1, 11)) + _walker(2, range(1, 11), y=300.0)),
                            camera_id="ref", fps=10.0)


def test_track_id_mapping_follows_boxes_not_ids() -> None:
    # Pred 20 follows ref 2 and pred 10 follows ref 1 (1 px off); pred 30 is nowhere near a reference box.
    pred_rows = _walker(20, range(1, 11), x0=101.0, y=300.0) + _walker(10, range(1, 11), x0=99.0)
    pred_rows += _walker(30, range(1, 11), x0=600.0)
    pred = mot_to_track_log(_mot(pred_rows), camera_id="pred", fps=10.0)
    assert track_id_mapping(pred, _two_walkers()) == {10: 1, 20: 2}


@pytest.mark.parametrize(("frames_on_2", "expected"), [(3, 1), (5, 1), (7, 2)])
def test_track_id_mapping_majority_then_smallest_ref_id(frames_on_2: int, expected: int) -> None:
    # Pred 5 follows ref 2 for its first `frames_on_2` frames, then ref 1: the majority wins, not the first
    # seen; a 5-5 tie goes to the smaller ref id.
    ref = _two_walkers()
    boxes = {(r[0], r[1]): r for r in _walker(1, range(1, 11)) + _walker(2, range(1, 11), y=300.0)}
    pred_rows = [(f, 5, *boxes[(f, 2 if f <= frames_on_2 else 1)][2:]) for f in range(1, 11)]
    pred = mot_to_track_log(_mot(pred_rows), camera_id="pred", fps=10.0)
    assert track_id_mapping(pred, ref) == {5: expected}


def test_track_id_mapping_threshold_and_no_common_frames() -> None:
    ref = mot_to_track_log(_mot(_walker(1, range(1, 6))), camera_id="ref", fps=10.0)
    shifted = mot_to_track_log(_mot(_walker(9, range(1, 6), x0=110.0)), camera_id="pred", fps=10.0)  # IoU 1/3
    assert track_id_mapping(shifted, ref) == {}
    assert track_id_mapping(shifted, ref, iou_threshold=0.3) == {9: 1}
    assert track_id_mapping(shifted.with_columns(pl.col("seq") + 100), ref) == {}
    with pytest.raises(ValueError, match="iou_threshold"):
        track_id_mapping(shifted, ref, iou_threshold=0.0)


# ----------------------------------------------------------------------------------------- final_events


def _ev(event_id: str, start: float, end: float | None = None, *, kind: str = "line_crossing",
        members: tuple[int, ...] = (1,), classes: tuple[str, ...] | None = None, status: str = "closed",
        direction: int | None = None, line_id: str | None = "L1", zone_id: str | None = None,
        camera_id: str = "cam") -> Event:
    evidence = {} if direction is None else {"direction": direction}
    return Event(id=event_id, kind=kind, rule_id="r", camera_id=camera_id, status=status, start=start,
                 end=start if end is None else end, member_ids=members,
                 classes=("person",) * len(members) if classes is None else classes, evidence=evidence,
                 line_id=line_id, zone_id=zone_id)


def test_final_events_collapse_life_cycles_in_order_of_first_appearance() -> None:
    records = [
        _ev("g:1", 10.0, 10.0, kind="gathering", members=(3, 5), status="open"),
        _ev("x:1", 11.0),
        _ev("g:1", 10.0, 14.0, kind="gathering", members=(5, 7), classes=("person", "bicycle"), status="updated"),
        _ev("g:1", 12.0, 13.0, kind="gathering", members=(5,), status="closed"),
    ]
    out = final_events(records)
    assert [e.id for e in out] == ["g:1", "x:1"]
    g = out[0]
    assert (g.status, g.start, g.end) == ("closed", 10.0, 14.0)
    assert g.member_ids == (3, 5, 7)
    assert g.classes == ("person", "person", "bicycle")
    assert out[1] == records[1]
    assert records[0].member_ids == (3, 5)  # inputs untouched


def test_final_events_drop_classes_when_a_member_has_none() -> None:
    records = [_ev("g:1", 0.0, kind="gathering", members=(1,), status="open"),
               _ev("g:1", 0.0, 1.0, kind="gathering", members=(2,), classes=())]
    assert final_events(records)[0].classes == ()
    assert final_events(records)[0].member_ids == (1, 2)


# ----------------------------------------------------------------------------------------- match_events


def _counts(m: EventMatch) -> tuple[int, int, int]:
    return m.tp, m.fp, m.fn


@pytest.mark.parametrize(("pred", "expected"), [
    pytest.param(_ev("p", 5.0), (1, 0, 0), id="exact"),
    pytest.param(_ev("p", 5.9), (1, 0, 0), id="shift-within-tolerance"),
    pytest.param(_ev("p", 4.0), (1, 0, 0), id="shift-at-tolerance"),
    pytest.param(_ev("p", 6.2), (0, 1, 1), id="shift-beyond-tolerance"),
    pytest.param(_ev("p", 5.0, kind="loitering"), (0, 1, 1), id="wrong-kind"),
    pytest.param(_ev("p", 5.0, line_id="L2"), (0, 1, 1), id="wrong-line"),
    pytest.param(_ev("p", 5.0, camera_id="other"), (1, 0, 0), id="camera-ignored-by-default"),
    pytest.param(_ev("p", 5.0, direction=-1), (0, 1, 1), id="direction-mismatch"),
    pytest.param(_ev("p", 5.0, direction=1), (1, 0, 0), id="direction-match"),
])
def test_match_single_crossing(pred: Event, expected: tuple[int, int, int]) -> None:
    ref = _ev("r", 5.0, direction=1)
    assert _counts(match_events([pred], [ref], time_tolerance=1.0)) == expected


def test_match_zero_tolerance_needs_simultaneous_instants() -> None:
    assert _counts(match_events([_ev("p", 5.0)], [_ev("r", 5.0)], time_tolerance=0.0)) == (1, 0, 0)
    assert _counts(match_events([_ev("p", 5.01)], [_ev("r", 5.0)], time_tolerance=0.0)) == (0, 1, 1)


def test_match_camera_when_asked() -> None:
    pred, ref = [_ev("p", 5.0, camera_id="a")], [_ev("r", 5.0, camera_id="b")]
    assert _counts(match_events(pred, ref, match_camera=True)) == (0, 1, 1)
    assert _counts(match_events(pred, [_ev("r", 5.0, camera_id="a")], match_camera=True)) == (1, 0, 0)


def test_match_lasting_events_by_time_iou() -> None:
    ref = [_ev("r", 10.0, 20.0, kind="gathering", line_id=None, members=(1, 2))]
    close = [_ev("p", 12.0, 19.0, kind="gathering", line_id=None, members=(8, 9))]
    short = [_ev("p", 10.0, 10.5, kind="gathering", line_id=None, members=(8, 9))]
    assert _counts(match_events(close, ref, time_tolerance=0.0, min_time_iou=0.5)) == (1, 0, 0)
    assert _counts(match_events(short, ref, time_tolerance=0.0, min_time_iou=0.5)) == (0, 1, 1)


def test_match_members_through_the_id_map() -> None:
    ref = [_ev("r", 10.0, 20.0, kind="gathering", line_id=None, members=(1, 2, 3))]
    pred = [_ev("p", 10.0, 20.0, kind="gathering", line_id=None, members=(11, 12))]
    assert _counts(match_events(pred, ref)) == (1, 0, 0)  # no id map: members not compared
    assert _counts(match_events(pred, ref, id_map={11: 1, 12: 2})) == (1, 0, 0)
    assert _counts(match_events(pred, ref, id_map={11: 1, 12: 9}, min_member_overlap=0.5)) == (1, 0, 0)  # 1/2
    assert _counts(match_events(pred, ref, id_map={11: 1, 12: 9}, min_member_overlap=0.6)) == (0, 1, 1)
    assert _counts(match_events(pred, ref, id_map={11: 7, 12: 8})) == (0, 1, 1)
    assert _counts(match_events(pred, ref, id_map={})) == (0, 1, 1)  # unmapped ids match nothing


def test_match_prefers_the_member_consistent_pairing() -> None:
    # Two simultaneous crossings of the same line: the times cannot tell them apart, the members can.
    ref = [_ev("r1", 5.0, members=(1,)), _ev("r2", 5.0, members=(2,))]
    pred = [_ev("p1", 5.0, members=(20,)), _ev("p2", 5.0, members=(10,))]
    m = match_events(pred, ref, id_map={10: 1, 20: 2})
    assert m.pairs == [("p1", "r2"), ("p2", "r1")]


def test_match_is_one_to_one() -> None:
    ref = [_ev("r", 5.0)]
    pred = [_ev("p1", 5.5), _ev("p2", 5.1)]
    m = match_events(pred, ref)
    assert _counts(m) == (1, 1, 0)
    assert m.pairs == [("p2", "r")]  # the closer one
    assert m.unmatched_pred == ["p1"] and m.unmatched_ref == []


def test_match_maximises_the_number_of_matches() -> None:
    # p2 can only reach r2. Similarity alone would pick p1-r2 (0.90) over p1-r1 + p2-r2 (0.38 + 0.38);
    # the assignment maximises the number of matches first.
    ref = [_ev("r1", 4.0), _ev("r2", 5.0)]
    pred = [_ev("p1", 4.9), _ev("p2", 5.9)]
    m = match_events(pred, ref)
    assert m.pairs == [("p1", "r1"), ("p2", "r2")]


def test_match_scores_and_report() -> None:
    ref = [_ev(f"r{i}", 10.0 * i) for i in range(4)] + [_ev("g", 100.0, 110.0, kind="gathering", line_id=None)]
    pred = [_ev("p0", 0.2), _ev("p1", 10.3), _ev("p2", 20.0, direction=1), _ev("px", 55.0),
            _ev("g:1", 100.0, 104.0, kind="gathering", line_id=None, status="open"),
            _ev("g:1", 100.0, 109.0, kind="gathering", line_id=None, status="closed")]
    m = match_events(pred, ref)
    assert _counts(m) == (4, 1, 1)
    assert m.precision == pytest.approx(4 / 5) and m.recall == pytest.approx(4 / 5)
    assert m.f1 == pytest.approx(4 / 5)
    assert m.unmatched_pred == ["px"] and m.unmatched_ref == ["r3"]
    assert _counts(m.by_kind["line_crossing"]) == (3, 1, 1)
    assert _counts(m.by_kind["gathering"]) == (1, 0, 0)
    report = json.loads(json.dumps(m.to_dict()))
    assert report["tp"] == 4 and report["pairs"][0] == ["p0", "r0"]
    assert report["by_kind"]["line_crossing"]["recall"] == pytest.approx(0.75)


@pytest.mark.parametrize(("n_pred", "n_ref", "scores"), [
    (0, 0, (1.0, 1.0, 1.0)),
    (2, 0, (0.0, 1.0, 0.0)),
    (0, 2, (1.0, 0.0, 0.0)),
])
def test_match_empty_sides(n_pred: int, n_ref: int, scores: tuple[float, float, float]) -> None:
    m = match_events([_ev(f"p{i}", 10.0 * i) for i in range(n_pred)], [_ev(f"r{i}", 10.0 * i + 500)
                                                                         for i in range(n_ref)])
    assert (m.precision, m.recall, m.f1) == scores
    assert _counts(m) == (0, n_pred, n_ref)


@pytest.mark.parametrize("kwargs", [{"time_tolerance": -1.0}, {"min_time_iou": 1.5}, {"min_member_overlap": -0.1}])
def test_match_rejects_bad_options(kwargs: dict) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        match_events([], [], **kwargs)


def test_match_many_events_stays_fast() -> None:
    rng = np.random.default_rng(0)
    times = np.sort(rng.uniform(0, 20_000, 5_000))
    ref = [_ev(f"r{i}", float(t), members=(i,)) for i, t in enumerate(times)]
    pred = [_ev(f"p{i}", float(t + rng.normal(0, 0.2)), members=(i + 1000,)) for i, t in enumerate(times)]
    m = match_events(pred, ref, id_map={i + 1000: i for i in range(len(times))})
    assert m.tp == len(times)
