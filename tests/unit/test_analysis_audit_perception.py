"""Audit inputs (store by path or URL, periods, rules to re-tune), verdicts read from a store, sequence
reports, track-log discovery and the charts."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import polars as pl
import pytest

from analytics.alerts.model import Alert, Transition
from analytics.alerts.store import AlertStore
from analytics.analysis import audit, inputs, perception, plots
from analytics.analysis import targets as tg
from analytics.console.config import ConsoleConfig
from analytics.evaluation import MOT_COLUMNS

DAY = 1_795_600_000.0  # a Unix time; the alerts below are created around it


def _alert(n: int, rule: str, start: float, *, day: int = 0) -> Alert:
    return Alert(id=f"cam:gathering:{n}", camera_id="cam", kind="gathering", rule_id=rule, start=start,
                 end=start + 10.0, created_at=DAY + day * 86_400 + n, updated_at=DAY + n)


def _close(store: AlertStore, alert: Alert, verdict: str, *, at: float) -> None:
    for status, dt, v in (("acknowledged", 10.0, None), ("closed", 30.0, verdict)):
        alert = dataclasses.replace(alert, status=status, verdict=v)
        store.record_transition(alert, Transition(alert.id, status, "op", at + dt, verdict=v))


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    path = tmp_path / "alerts.db"
    with AlertStore.open(f"sqlite:///{path}") as store:
        alerts = [_alert(1, "group", 5.0), _alert(2, "group", 30.0), _alert(3, "group", 60.0, day=1),
                  _alert(4, "standing", 8.0), _alert(5, "group", 90.0)]
        for a in alerts:
            store.save_alert(a)
        for a, verdict in zip(alerts[:4], ("true_alert", "false_alarm", "false_alarm", "true_alert"), strict=True):
            _close(store, a, verdict, at=a.created_at)
        store.record_review(alerts[2].id, verdict="true_alert", comment="on second look", user="sup", at=DAY + 9e4)
    return path


def test_store_url_from_a_path_or_a_url(store_path: Path, tmp_path: Path) -> None:
    assert audit.store_url(store_path) == f"sqlite:///{store_path.resolve()}"
    assert audit.store_url("postgresql://u@h/db") == "postgresql://u@h/db"
    with pytest.raises(FileNotFoundError, match="no alert store"):
        audit.store_url(tmp_path / "missing.db")


def test_day_bounds_are_local_midnights() -> None:
    since, until = audit.day_bounds("2026-11-25", "2026-11-26", timezone="Europe/Paris")
    assert until - since == 2 * 86_400 and since % 3600 == 0 and since % 86_400 == 82_800  # 23:00 UTC
    assert audit.day_bounds("", "", timezone="UTC") == (None, None)


def test_audit_frame_and_rules_to_tune(store_path: Path) -> None:
    console = ConsoleConfig()
    data = audit.load_audit(audit.store_url(store_path), timezone="UTC", shifts=console.shifts)
    assert len(data.frame) == 5 and data.duty == []
    worst = audit.rules_to_tune(data.frame, precision_below=0.8, min_reviewed=2)
    assert worst.select("rule_id", "true_alerts", "false_alarms").rows() == [("group", 2, 1)]
    assert audit.rules_to_tune(data.frame, precision_below=0.8, min_reviewed=4).is_empty()
    first_day = audit.load_audit(audit.store_url(store_path), timezone="UTC", shifts=console.shifts,
                                 since=DAY - 10, until=DAY + 3600)
    assert len(first_day.frame) == 4


def test_verdicts_are_the_latest_and_leave_open_alerts_out(store_path: Path) -> None:
    verdicts = tg.load_verdicts(audit.store_url(store_path), camera_id="cam")
    assert verdicts.schema == pl.Schema(tg.VERDICT_SCHEMA)
    assert dict(verdicts.select("alert_id", "verdict").rows()) == {
        "cam:gathering:1": "true_alert", "cam:gathering:2": "false_alarm", "cam:gathering:3": "true_alert",
        "cam:gathering:4": "true_alert"}
    assert tg.load_verdicts(audit.store_url(store_path), camera_id="other").is_empty()


def test_sequence_info_and_specs(tmp_path: Path) -> None:
    seq = tmp_path / "SEQ"
    (seq / "gt").mkdir(parents=True)
    (seq / "img1").mkdir()
    (seq / "seqinfo.ini").write_text("[Sequence]\nname=SEQ\nimDir=img1\nframeRate=7\nimWidth=768\nimHeight=576\n")
    (seq / "gt" / "gt.txt").write_text("1,1,10,10,20,50,1,-1,-1,-1\n")
    info = tg.sequence_info(seq / "gt" / "gt.txt")
    assert info == tg.SequenceInfo("SEQ", 7.0, (768, 576), seq / "img1") == tg.sequence_info(seq)
    with pytest.raises(FileNotFoundError, match="seqinfo.ini"):
        tg.sequence_info(tmp_path)
    spec = perception.SequenceSpec.from_dict({"name": "s", "result": "r.txt", "gt": str(seq / "gt" / "gt.txt"),
                                              "classes": [1]})
    assert spec.images == seq / "img1" and spec.classes == (1,)
    with pytest.raises(ValueError, match="unknown"):
        perception.SequenceSpec.from_dict({"name": "s", "result": "r", "gt": "g", "colour": 1})


def _write_mot(path: Path, rows: list[tuple]) -> Path:
    path.write_text("".join(",".join(str(v) for v in r) + ",1,-1,-1,-1\n" for r in rows))
    return path


def test_evaluate_sequences_cuts_the_ground_truth_to_the_result(tmp_path: Path) -> None:
    gt = [(f, i, 50.0 * i, 100.0, 40.0, 100.0) for f in range(1, 11) for i in (1, 2)]
    result = [r for r in gt if r[0] <= 5 and not (r[0] == 3 and r[1] == 2)]
    spec = perception.SequenceSpec("seq", _write_mot(tmp_path / "r.txt", result), _write_mot(tmp_path / "g.txt", gt))
    table, errors = perception.evaluate_sequences([spec])
    assert table.columns == ["sequence", *perception.METRICS]
    row = table.row(0, named=True)
    assert (row["frames"], row["FN"], row["TP"]) == (5, 1, 9)
    assert errors["seq"]["fn"].sum() == 1 and len(errors["seq"]) == 5
    res, g = perception.boxes_of_frame(spec, 3)
    assert len(res) == 1 and len(g) == 2
    with pytest.raises(FileNotFoundError, match="result file"):
        perception.load_pair(dataclasses.replace(spec, result=tmp_path / "none.txt"))


def test_find_track_log_takes_the_newest_run(tmp_path: Path) -> None:
    assert inputs.find_track_log(tmp_path / "none", "cam") is None
    old, new, skipped = (tmp_path / "a" / "cam.tracks.parquet", tmp_path / "b" / "c" / "cam.tracks.parquet",
                         tmp_path / "notebooks" / "cam.tracks.parquet")
    for i, path in enumerate((old, new, skipped)):
        path.parent.mkdir(parents=True)
        path.write_bytes(b"")
        os.utime(path, (1000 + i, 1000 + i))
    assert inputs.find_track_log(tmp_path, "cam") == new
    assert inputs.find_track_log(tmp_path, "other") is None
    assert inputs.find_latest(tmp_path, "cam.tracks.parquet", exclude=("b", "notebooks")) == old


def test_log_frame_size_from_the_frame_index(tmp_path: Path) -> None:
    log = tmp_path / "cam.tracks.parquet"
    assert inputs.log_frame_size(log) is None
    pl.DataFrame({"seq": [0, 1], "width": [768, 768], "height": [576, 576]}).write_parquet(
        tmp_path / "cam.frames.parquet")
    assert inputs.log_frame_size(log) == (768, 576)


def test_charts_render(tmp_path: Path, store_path: Path) -> None:
    sweep = pl.DataFrame({"rule_id": ["g"] * 4, "setting": ["a=1, b=1", "a=2, b=1", "a=1, b=2", "a=2, b=2"],
                          "original": [True, False, False, False], "recall": [0.5, 1.0, 0.5, 1.0],
                          "precision": [1.0, 0.5, 1.0, 0.7], "f1": [0.67, 0.67, 0.67, 0.82],
                          "events_per_hour": [10.0, 30.0, 12.0, 25.0], "p.a": [1, 2, 1, 2], "p.b": [1, 1, 2, 2]})
    errors = pl.DataFrame({"frame": [1, 2, 3], "gt": [2, 2, 2], "fn": [0, 1, 0], "fp": [1, 0, 0],
                           "fp_ignored": [1, 0, 0], "idsw": [0, 0, 1]})
    table = pl.DataFrame({"sequence": ["s1", "s2"], "HOTA": [0.5, 0.6], "MOTA": [0.7, 0.8], "IDF1": [0.6, 0.7]})
    image = tmp_path / "f.png"
    plots.errors_figure(errors, "s").savefig(image, dpi=30)
    frame_gt = pl.DataFrame([(1, 1, 10.0, 10.0, 20.0, 40.0, 1.0, -1.0, -1.0, -1.0),
                             (1, 2, 40.0, 10.0, 20.0, 40.0, 0.0, -1.0, -1.0, -1.0)], schema=list(MOT_COLUMNS),
                            orient="row")
    figures = [plots.sweep_figure(sweep, "g", chosen_setting="a=2, b=2", max_events_per_hour=20.0),
               plots.slices_figure(sweep, "g", chosen_values='{"a": 2, "b": 2}'), plots.metrics_figure(table),
               plots.frame_figure(image, frame_gt.filter(pl.col("id") == 1), frame_gt,
                                  {"frame": 1, "missed_ids": [1], "false_ids": [1], "switched_ids": []}),
               plots.verdicts_figure(audit.load_audit(audit.store_url(store_path), timezone="UTC",
                                                      shifts=ConsoleConfig().shifts).frame)]
    for i, fig in enumerate(figures):
        fig.savefig(tmp_path / f"{i}.png", dpi=30)
        assert (tmp_path / f"{i}.png").stat().st_size > 500
