"""Threshold sweeps on a synthetic scene: grids, replay per setting, scoring against targets, the choice."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from analytics.analysis import sweep
from analytics.analysis import targets as tg
from analytics.config import CameraConfig
from analytics.evaluation import MOT_COLUMNS, mot_to_track_log
from analytics.event_eval import MatchCounts, final_events
from analytics.labels import EventLabel, EventLabels
from analytics.replay import replay

FPS, SIZE = 5.0, (640, 480)


def _mot(rows: list[tuple], conf: float = 1.0) -> pl.DataFrame:
    full = [(*r, conf, -1.0, -1.0, -1.0) for r in rows]
    return pl.DataFrame(full, schema=list(MOT_COLUMNS), orient="row").with_columns(
        pl.col("frame").cast(pl.Int64), pl.col("id").cast(pl.Int64), pl.exclude("frame", "id").cast(pl.Float64))


def _still(track_id: int, frames: range, x: float, y: float) -> list[tuple]:
    return [(f, track_id, x, y, 40.0, 100.0) for f in frames]


def scene(*, pair_conf: float = 1.0) -> pl.DataFrame:
    """20 s at 5 fps: three people standing together from 2 s to 14 s (frames 11-71), a walker crossing far
    from them (about 1 m/s), and a pair standing far to the left from 13.8 s to the end (frames 70-100)."""
    trio = [r for i, x in enumerate((300.0, 340.0, 380.0), start=1) for r in _still(i, range(11, 72), x, 200.0)]
    walker = [(f, 4, 12.0 * f, 350.0, 40.0, 100.0) for f in range(1, 51)]
    pair = _still(5, range(70, 101), 60.0, 40.0) + _still(6, range(70, 101), 100.0, 40.0)
    return pl.concat([_mot(trio + walker), _mot(pair, conf=pair_conf)])


def camera(**gathering: object) -> CameraConfig:
    rule = {"kind": "gathering", "id": "group", "min_people": 3, "min_duration": 15.0, **gathering}
    return CameraConfig.model_validate({"id": "cam", "source": "synthetic", "fps": FPS, "rules": [
        rule, {"kind": "loitering", "id": "standing", "min_duration": 30.0}]})


@pytest.fixture
def track_log(tmp_path: Path) -> Path:
    path = tmp_path / "cam.tracks.parquet"
    mot_to_track_log(scene(), camera_id="cam", fps=FPS).write_parquet(path)
    return path


LABELS = EventLabels(camera="cam", slack=1.0, labels=(EventLabel(kind="gathering", start=2.0, end=14.0),))
GRID = {"group": {"min_duration": [5.0, 10.0, 15.0], "min_people": [2, 3]}}


# -- grids ----------------------------------------------------------------------------------------------------

def test_grid_starts_with_the_configured_setting_and_skips_invalid_combinations() -> None:
    cam = camera(end_min_people=3)
    settings, notes = sweep.rule_grid(cam, {"gathering": {"min_people": [2, 3]}, "abnormal_flow": {"window": [30]}})
    assert [s.values for s in settings] == [{"min_people": 3}]  # 2 < end_min_people 3: invalid; 3 is the current
    assert settings[0].changed == () and settings[0].label == "min_people=3"
    assert any("end_min_people" in n for n in notes) and any("no abnormal_flow rule" in n for n in notes)


def test_grid_by_rule_id_wins_over_kind_and_dedups() -> None:
    settings, _ = sweep.rule_grid(camera(), {"gathering": {"min_people": [4]}, "group": {"min_people": [3, 3, 2]}})
    assert [(s.values["min_people"], s.changed) for s in settings] == [(3, ()), (2, ("min_people",))]


@pytest.mark.parametrize(("grid", "match"), [
    ({"nope": {"min_people": [2]}}, "neither rule ids"),
    ({"group": {"min_peple": [2]}}, "no field"),
    ({"group": {"min_people": []}}, "non-empty list"),
])
def test_grid_errors_name_the_problem(grid: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        sweep.rule_grid(camera(), grid)


def test_camera_with_validates_and_does_not_mutate() -> None:
    cam = camera()
    only = sweep.camera_with(cam, {"group": {"radius_m": 3.0}}, only="group")
    assert [r.id for r in only.rules] == ["group"] and only.rules[0].radius_m == 3.0
    assert cam.rules[0].radius_m == 2.0 and len(cam.rules) == 2
    with pytest.raises(ValueError, match="group"):
        sweep.camera_with(cam, {"group": {"radius_m": -1.0}})
    with pytest.raises(KeyError, match="nope"):
        sweep.camera_with(cam, {"nope": {}})


# -- sweep and choice -----------------------------------------------------------------------------------------

def test_sweep_scores_each_setting_and_the_choice_fixes_the_missed_gathering(track_log: Path) -> None:
    cam = camera()
    settings, _ = sweep.rule_grid(cam, GRID)
    table = sweep.run_sweep(track_log, cam, settings, tg.Targets(labels=(LABELS,)), frame_size=SIZE)
    assert table.columns[:len(sweep.SWEEP_COLUMNS)] == list(sweep.SWEEP_COLUMNS)
    assert {"labels_tp", "p.min_duration", "p.min_people"} <= set(table.columns)
    rows = {(r["p.min_duration"], r["p.min_people"]): r for r in table.iter_rows(named=True)}
    assert rows[15.0, 3]["original"] and (rows[15.0, 3]["events"], rows[15.0, 3]["fn"]) == (0, 1)
    assert (rows[10.0, 3]["tp"], rows[10.0, 3]["fp"]) == (1, 0)
    assert (rows[5.0, 2]["tp"], rows[5.0, 2]["fp"]) == (1, 1)  # the pair too: a false positive
    assert rows[5.0, 2]["events_per_hour"] == pytest.approx(2 / (20.0 / 3600.0))
    chosen = sweep.choose(table)
    assert chosen["setting"].to_list() == ["min_duration=5.0, min_people=3"]
    assert sweep.changes_from(chosen) == {"group": {"min_duration": 5.0}}


def test_a_volume_cap_below_every_alerting_setting_keeps_the_silent_one(track_log: Path) -> None:
    cam = camera()
    settings, _ = sweep.rule_grid(cam, GRID)
    table = sweep.run_sweep(track_log, cam, settings, tg.Targets(labels=(LABELS,)), frame_size=SIZE)
    chosen = sweep.choose(table, max_events_per_hour=100.0)
    assert chosen["original"].to_list() == [True] and "100 events/h" in chosen["reason"][0]
    assert sweep.changes_from(chosen) == {}


def _table(rows: list[dict]) -> pl.DataFrame:
    base = {"rule_id": "r", "kind": "gathering", "values": "{}", "changed": "x", "original": False, "events": 1,
            "ignored": 0, "unjudged": 0, "tp": 0, "fp": 0, "fn": 0, "precision": 1.0, "recall": 1.0}
    return pl.DataFrame([{**base, **r} for r in rows])


def test_choice_ties_keep_the_configured_setting_then_the_lowest_volume() -> None:
    table = _table([{"setting": "a", "f1": 0.8, "events_per_hour": 5.0},
                    {"setting": "orig", "f1": 0.8, "events_per_hour": 9.0, "original": True, "changed": ""},
                    {"setting": "b", "f1": 0.5, "events_per_hour": 1.0}])
    assert sweep.choose(table)["setting"].to_list() == ["orig"]
    table = table.with_columns(pl.when(pl.col("setting") == "orig").then(0.7).otherwise(pl.col("f1")).alias("f1"))
    assert sweep.choose(table)["setting"].to_list() == ["a"]
    assert sweep.choose(table, max_events_per_hour=4.0)["setting"].to_list() == ["b"]
    assert sweep.choose(table, max_events_per_hour=0.5)["reason"][0].startswith("no setting under")


def test_changes_from_lists_only_the_changed_fields() -> None:
    chosen = pl.DataFrame([{"rule_id": "g", "changed": "min_duration", "values": json.dumps(
        {"min_duration": 5.0, "min_people": 3})}, {"rule_id": "l", "changed": "", "values": "{}"}])
    assert sweep.changes_from(chosen) == {"g": {"min_duration": 5.0}}


def test_log_span_uses_the_frame_index_when_there_is_one(track_log: Path) -> None:
    seconds, first, last = sweep.log_span(track_log)
    assert (first, last) == (0, 99) and seconds == pytest.approx(20.0)
    pl.DataFrame({"camera_id": ["cam"] * 150, "seq": list(range(150)), "timestamp": [i / FPS for i in range(150)],
                  "width": [640] * 150, "height": [480] * 150, "tracks": [0] * 150}).write_parquet(
        track_log.with_name("cam.frames.parquet"))
    assert sweep.log_span(track_log) == (pytest.approx(30.0), 0, 149)


def test_compare_and_event_changes(track_log: Path) -> None:
    table, records = sweep.compare(track_log, {"configured": camera(), "tuned": camera(min_duration=5.0)},
                                   tg.Targets(labels=(LABELS,)), frame_size=SIZE)
    f1 = {(r["config"], r["rule_id"]): r["f1"] for r in table.iter_rows(named=True)}
    assert f1["configured", "group"] == 0.0 and f1["tuned", "group"] == 1.0 and f1["tuned", "all"] == 1.0
    changes = sweep.event_changes(records["configured"], records["tuned"])
    assert changes.select("change", "rule_id", "members").rows() == [("added", "group", [1, 2, 3])]
    assert sweep.event_changes(records["tuned"], records["tuned"]).is_empty()


# -- targets on the scene -------------------------------------------------------------------------------------

def test_reference_from_ground_truth_and_people_it_ignores(tmp_path: Path, track_log: Path) -> None:
    truth = camera(min_duration=4.0, min_people=2)
    pred = pl.read_parquet(track_log)
    gt = scene(pair_conf=0.0)  # the annotators left the pair out
    ref = tg.build_reference(truth, pred, gt, fps=FPS, frame_size=SIZE, work_dir=tmp_path)
    assert [e.member_ids for e in final_events(ref.events) if e.rule_id == "group"] == [(1, 2, 3)]
    assert ref.id_map == {i: i for i in range(1, 7) if i not in (5, 6)}
    assert ref.rows.filter(pl.col("ignored"))["track_id"].unique().sort().to_list() == [5, 6]
    score = tg.Targets(reference=ref).score(replay(track_log, truth, frame_size=SIZE), truth.rules[0])
    assert (score.total.tp, score.total.fp, score.total.fn, score.ignored) == (1, 0, 0, 1)


def test_verdicts_count_judged_events_only(track_log: Path) -> None:
    cam = camera(min_duration=4.0, min_people=2)
    verdicts = pl.DataFrame([
        {"alert_id": "a1", "camera_id": "cam", "rule_id": "group", "kind": "gathering", "zone_id": None,
         "line_id": None, "start": 2.0, "end": 14.0, "verdict": "true_alert"},
        {"alert_id": "a2", "camera_id": "cam", "rule_id": "group", "kind": "gathering", "zone_id": None,
         "line_id": None, "start": 14.0, "end": 20.0, "verdict": "false_alarm"},
        {"alert_id": "a3", "camera_id": "cam", "rule_id": "group", "kind": "gathering", "zone_id": None,
         "line_id": None, "start": 2.0, "end": 3.0, "verdict": "duplicate"},
        {"alert_id": "a4", "camera_id": "cam", "rule_id": "other", "kind": "gathering", "zone_id": None,
         "line_id": None, "start": 2.0, "end": 14.0, "verdict": "true_alert"},
    ], schema=tg.VERDICT_SCHEMA)
    targets = tg.Targets(verdicts=verdicts, verdict_slack=1.0)
    events = replay(track_log, cam, frame_size=SIZE)
    score = targets.score(events, cam.rules[0])
    assert score.counts["verdicts"] == MatchCounts(tp=1, fp=1, fn=0) and score.unjudged == 0
    late = targets.score(replay(track_log, camera(min_duration=15.0), frame_size=SIZE), cam.rules[0])
    assert late.counts["verdicts"] == MatchCounts(tp=0, fp=0, fn=1) and late.events == 0
    assert targets.sources == ("verdicts",)
