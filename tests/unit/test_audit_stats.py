"""Supervisor audit statistics: the alerts frame, precision, times to acknowledge, operator load, charts, exports.

Hand-built alerts in Europe/Paris in June (CEST, UTC+2), with the default shifts morning 06:00, afternoon 14:00,
night 22:00. Each alert's verdict, local day, shift and time to acknowledge is known by construction:

====  =========  ====  ================  ==========  =========  =======================================
id    rule       cam   local created     day         shift      life cycle (seconds after creation)
====  =========  ====  ================  ==========  =========  =======================================
a1    intrusion  cam1  06-14 23:30       06-14       night      ack ana +10, closed ana +50 true
a2    intrusion  cam1  06-15 00:30       06-15 (UTC  night      seen +5, ack bob +20, closed bob +80 false
                                         06-14)
a3    intrusion  cam2  06-15 03:00       06-15       night      escalated ana +30 (pm), closed ana +300 true
a4    crowd      cam2  06-15 06:00       06-15       morning    closed bob +40 duplicate
a5    crowd      cam1  06-15 13:59       06-15       morning    ack bob +60, closed bob +120 false,
                                                                reviewed sup +5000 true
a6    crowd      cam2  06-15 14:00       06-15       afternoon  seen +3 only (never taken in charge)
a7    crowd      cam1  06-15 21:59       06-15       afternoon  closed ana +200 false
====  =========  ====  ================  ==========  =========  =======================================
"""

from __future__ import annotations

import datetime as dt
import io
import subprocess
import sys
import zoneinfo

import numpy as np
import polars as pl
import pytest

from analytics.alerts.audit_stats import (PLOTS, ack_times, alerts_frame, export, operator_load, plot_png,
                                          precision_by)
from analytics.alerts.model import Alert, Transition
from analytics.console.config import DEFAULT_SHIFTS, Shift

TZ = "Europe/Paris"
PARIS = zoneinfo.ZoneInfo(TZ)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def local(day: int, hour: int, minute: int, *, month: int = 6) -> float:
    """Unix seconds of a Paris wall-clock time in 2024."""
    return dt.datetime(2024, month, day, hour, minute, tzinfo=PARIS).timestamp()


def alert(aid: str, created: float, *, rule: str = "intrusion", camera: str = "cam1", kind: str = "intrusion",
          zone: str | None = "square", line: str | None = None, status: str = "closed") -> Alert:
    return Alert(id=aid, camera_id=camera, kind=kind, rule_id=rule, start=0.0, end=1.0, created_at=created,
                 updated_at=created, status=status, zone_id=zone, line_id=line)


def step(a: Alert, status: str, user: str, after: float, verdict: str | None = None,
         authority: str | None = None) -> Transition:
    return Transition(alert_id=a.id, status=status, user=user, at=a.created_at + after, verdict=verdict,
                      authority=authority)


A1 = alert("a1", local(14, 23, 30))
A2 = alert("a2", local(15, 0, 30))
A3 = alert("a3", local(15, 3, 0), camera="cam2")
A4 = alert("a4", local(15, 6, 0), rule="crowd", kind="gathering", camera="cam2")
A5 = alert("a5", local(15, 13, 59), rule="crowd", kind="gathering", line="gate", zone=None)
A6 = alert("a6", local(15, 14, 0), rule="crowd", kind="gathering", camera="cam2", status="seen")
A7 = alert("a7", local(15, 21, 59), rule="crowd", kind="gathering")
ALERTS = (A1, A2, A3, A4, A5, A6, A7)
REVIEW = step(A5, "closed", "sup", 5000, "true_alert")
OPERATOR_STEPS = (
    step(A1, "acknowledged", "ana", 10), step(A1, "closed", "ana", 50, "true_alert"),
    step(A2, "seen", "bob", 5), step(A2, "acknowledged", "bob", 20), step(A2, "closed", "bob", 80, "false_alarm"),
    step(A3, "escalated", "ana", 30, authority="pm"), step(A3, "closed", "ana", 300, "true_alert"),
    step(A4, "closed", "bob", 40, "duplicate"),
    step(A5, "acknowledged", "bob", 60), step(A5, "closed", "bob", 120, "false_alarm"),
    step(A6, "seen", "ana", 3),
    step(A7, "closed", "ana", 200, "false_alarm"),
)
TRANSITIONS = (*OPERATOR_STEPS, REVIEW)


def frame(alerts=ALERTS, transitions=TRANSITIONS, shifts=DEFAULT_SHIFTS) -> pl.DataFrame:
    # reversed: the frame must order transitions by time, not trust the input order
    return alerts_frame(alerts, tuple(reversed(transitions)), timezone=TZ, shifts=shifts)


def rows_by_key(table: pl.DataFrame) -> dict:
    return {row["key"]: row for row in table.iter_rows(named=True)}


# -- the alerts frame -----------------------------------------------------------------------------------------

def test_frame_has_one_row_per_alert_with_its_life_cycle():
    f = frame()
    assert f["id"].to_list() == [a.id for a in ALERTS]
    a5 = f.filter(pl.col("id") == "a5").row(0, named=True)
    # first closing time, latest verdict and closer (the supervisor's review)
    assert a5["closed_at"] == A5.created_at + 120 and a5["verdict"] == "true_alert" and a5["closed_by"] == "sup"
    assert a5["acknowledged_at"] == A5.created_at + 60 and a5["acknowledged_by"] == "bob"
    assert a5["place"] == "gate" and a5["reviewed"] is True
    a3 = f.filter(pl.col("id") == "a3").row(0, named=True)
    assert a3["escalated_to"] == "pm" and a3["escalated_at"] == A3.created_at + 30 and a3["acknowledged_at"] is None
    a6 = f.filter(pl.col("id") == "a6").row(0, named=True)
    assert a6["seen_at"] == A6.created_at + 3 and a6["time_to_ack_s"] is None and a6["reviewed"] is False
    assert f.schema["created"] == pl.Datetime("us", TZ) and f.schema["day"] == pl.Date
    assert f["created"][1] == dt.datetime(2024, 6, 15, 0, 30, tzinfo=PARIS)


def test_local_day_and_shift_cross_midnight_in_paris():
    f = frame()
    assert f["day"].to_list() == [dt.date(2024, 6, 14)] + [dt.date(2024, 6, 15)] * 6
    # a2 is still 14 June in UTC: the day must be the local one
    assert dt.datetime.fromtimestamp(A2.created_at, dt.UTC).date() == dt.date(2024, 6, 14)
    assert f["shift"].to_list() == ["night", "night", "night", "morning", "morning", "afternoon", "afternoon"]


@pytest.mark.parametrize(("created", "shift", "day"), [
    (local(15, 5, 59), "night", dt.date(2024, 6, 15)),         # before the day's first start: last night's shift
    (local(15, 6, 0), "morning", dt.date(2024, 6, 15)),
    (local(15, 22, 0), "night", dt.date(2024, 6, 15)),
    (local(16, 0, 0), "night", dt.date(2024, 6, 16)),
    (local(10, 0, 30, month=1), "night", dt.date(2024, 1, 10)),   # CET, UTC+1: 9 Jan 23:30 UTC
    (local(10, 13, 59, month=1), "morning", dt.date(2024, 1, 10)),
])
def test_shift_is_the_latest_local_start_at_or_before_wrapping_midnight(created, shift, day):
    shifts = tuple(reversed(DEFAULT_SHIFTS))  # any order
    row = alerts_frame([alert("x", created)], [], timezone=TZ, shifts=shifts).row(0, named=True)
    assert (row["shift"], row["day"]) == (shift, day)


def test_single_shift_covers_the_whole_day():
    only = (Shift(name="all-day", start="07:00"),)
    f = alerts_frame([alert("x", local(15, 3, 0)), alert("y", local(15, 8, 0))], [], timezone=TZ, shifts=only)
    assert f["shift"].to_list() == ["all-day", "all-day"]


def test_zero_alerts_give_an_empty_frame_with_the_same_schema():
    empty = frame(alerts=(), transitions=TRANSITIONS)
    assert empty.height == 0 and empty.schema == frame().schema
    assert precision_by(empty, "rule").height == 0
    overall = ack_times(empty).row(0, named=True)
    assert overall["key"] == "all" and overall["count"] == 0 and overall["p50"] is None
    assert operator_load(empty, []).row(0, named=True)["alerts_per_operator_hour"] is None


def test_no_shifts_is_an_error():
    with pytest.raises(ValueError, match="at least one shift"):
        alerts_frame(ALERTS, TRANSITIONS, timezone=TZ, shifts=())


# -- precision ------------------------------------------------------------------------------------------------

def test_precision_by_rule_excludes_duplicates_and_unreviewed():
    table = precision_by(frame(), "rule")
    assert table["key"].to_list() == ["crowd", "intrusion"]
    crowd, intrusion = rows_by_key(table)["crowd"], rows_by_key(table)["intrusion"]
    assert (intrusion["alerts"], intrusion["true_alerts"], intrusion["false_alarms"]) == (3, 2, 1)
    assert intrusion["precision"] == pytest.approx(2 / 3)
    assert {k: crowd[k] for k in ("alerts", "reviewed", "true_alerts", "false_alarms", "duplicates",
                                  "unreviewed")} == {"alerts": 4, "reviewed": 3, "true_alerts": 1,
                                                     "false_alarms": 1, "duplicates": 1, "unreviewed": 1}
    assert crowd["precision"] == pytest.approx(0.5)   # 1 / (1 + 1): the duplicate does not count


def test_a_review_changing_the_verdict_changes_precision():
    before = rows_by_key(precision_by(frame(transitions=OPERATOR_STEPS), "rule"))["crowd"]
    assert (before["true_alerts"], before["false_alarms"], before["precision"]) == (0, 2, 0.0)
    after = rows_by_key(precision_by(frame(), "rule"))["crowd"]
    assert (after["true_alerts"], after["false_alarms"], after["precision"]) == (1, 1, 0.5)


def test_precision_by_local_day_across_midnight():
    table = precision_by(frame(), "day")
    assert table["key"].to_list() == [dt.date(2024, 6, 14), dt.date(2024, 6, 15)]
    day14, day15 = table.iter_rows(named=True)
    assert (day14["alerts"], day14["precision"]) == (1, 1.0)
    assert (day15["alerts"], day15["true_alerts"], day15["false_alarms"], day15["duplicates"]) == (6, 2, 2, 1)
    assert day15["precision"] == pytest.approx(0.5)


@pytest.mark.parametrize(("by", "expected"), [
    ("camera", {"cam1": (4, 0.5), "cam2": (3, 1.0)}),
    ("zone", {"square": (6, 0.5), "gate": (1, 1.0)}),
    ("shift", {"night": (3, 2 / 3), "morning": (2, 1.0), "afternoon": (2, 0.0)}),
    ("kind", {"intrusion": (3, 2 / 3), "gathering": (4, 0.5)}),
    ("operator", {"ana": (3, 2 / 3), "bob": (2, 0.0), "sup": (1, 1.0), None: (1, None)}),
])
def test_precision_by_each_grouping(by, expected):
    table = precision_by(frame(), by)
    got = {k: (r["alerts"], r["precision"]) for k, r in rows_by_key(table).items()}
    assert got.keys() == expected.keys()
    for key, (alerts, precision) in expected.items():
        assert got[key][0] == alerts
        assert got[key][1] == (None if precision is None else pytest.approx(precision))
    keys = table["key"].to_list()
    assert keys == sorted(k for k in keys if k is not None) + [None] * keys.count(None)


def test_precision_is_null_with_only_duplicates():
    f = frame(alerts=(A4,), transitions=TRANSITIONS)
    row = precision_by(f, "rule").row(0, named=True)
    assert (row["duplicates"], row["precision"]) == (1, None)


def test_unknown_grouping_names_the_allowed_values():
    with pytest.raises(ValueError, match=r"'place'.*camera.*operator.*rule"):
        precision_by(frame(), "place")
    with pytest.raises(ValueError, match="expected one of"):
        ack_times(frame(), "user")


# -- times to acknowledge -------------------------------------------------------------------------------------

def test_time_to_ack_is_the_first_of_acknowledge_escalate_close():
    f = frame()
    assert f["time_to_ack_s"].to_list() == [10.0, 20.0, 30.0, 40.0, 60.0, None, 200.0]
    assert f["taken_by"].to_list() == ["ana", "bob", "ana", "bob", "bob", None, "ana"]


def test_ack_time_percentiles_overall():
    row = ack_times(frame()).row(0, named=True)
    times = np.array([10.0, 20.0, 30.0, 40.0, 60.0, 200.0])
    assert row["key"] == "all" and row["count"] == 6
    assert row["p50"] == pytest.approx(35.0) == pytest.approx(np.percentile(times, 50))
    assert row["p90"] == pytest.approx(130.0) == pytest.approx(np.percentile(times, 90))
    assert row["mean"] == pytest.approx(60.0) and row["max"] == 200.0


def test_ack_times_by_operator_and_rule():
    by_op = rows_by_key(ack_times(frame(), "operator"))
    assert (by_op["ana"]["count"], by_op["ana"]["p50"], by_op["ana"]["max"]) == (3, 30.0, 200.0)
    assert (by_op["bob"]["count"], by_op["bob"]["p50"], by_op["bob"]["mean"]) == (3, 40.0, 40.0)
    assert by_op[None]["count"] == 0 and by_op[None]["p50"] is None   # a6, never taken in charge
    by_rule = rows_by_key(ack_times(frame(), "rule"))
    assert (by_rule["intrusion"]["count"], by_rule["intrusion"]["p50"]) == (3, 20.0)
    assert (by_rule["crowd"]["count"], by_rule["crowd"]["p90"]) == (3, pytest.approx(np.percentile([40, 60, 200], 90)))


# -- operator load --------------------------------------------------------------------------------------------

T = local(15, 9, 0)
LOAD_ALERTS = (alert("b0", T), alert("b1", T + 1800), alert("b2", T + 5400), alert("b3", T + 7200))
LOAD_STEPS = (
    step(LOAD_ALERTS[0], "acknowledged", "ana", 10), step(LOAD_ALERTS[0], "closed", "ana", 20, "true_alert"),
    step(LOAD_ALERTS[1], "acknowledged", "ana", 10), step(LOAD_ALERTS[1], "closed", "bob", 20, "false_alarm"),
    step(LOAD_ALERTS[3], "closed", "bob", 20, "true_alert"),
)
DUTY = (
    ("ana", T - 3600, T + 3600),
    ("ana", T, T + 1800),          # inside the first: not counted again
    ("ana", T + 3000, T + 5400),   # overlaps the first: union is [T - 1 h, T + 1.5 h) = 2.5 h
    ("bob", T, T + 3600),          # 1 h
    ("cy", T + 10_000, T + 10_000),  # zero-length session: on the roster with 0 hours
)


def test_overlapping_sessions_are_not_double_counted():
    load = operator_load(frame(LOAD_ALERTS, LOAD_STEPS), DUTY)
    assert load["user"].to_list() == ["ana", "bob", "cy", "all"]
    ana, bob, cy, _ = load.iter_rows(named=True)
    assert ana["hours_on_duty"] == pytest.approx(2.5) and bob["hours_on_duty"] == pytest.approx(1.0)
    assert (ana["alerts_handled"], bob["alerts_handled"]) == (2, 2)   # b0 counted once for ana
    assert ana["handled_per_hour"] == pytest.approx(0.8) and bob["handled_per_hour"] == pytest.approx(2.0)
    assert (cy["hours_on_duty"], cy["alerts_handled"], cy["handled_per_hour"]) == (0.0, 0, None)
    assert ana["operator_hours"] is None and ana["alerts"] is None


def test_alerts_per_operator_hour():
    total = operator_load(frame(LOAD_ALERTS, LOAD_STEPS), DUTY).row(-1, named=True)
    assert total["user"] == "all"
    assert total["operator_hours"] == pytest.approx(3.5) and total["hours_on_duty"] == pytest.approx(3.5)
    # b0 and b1 were created on duty; b2 at T + 1.5 h is the end of the last session (half-open); b3 after it
    assert total["alerts"] == 2
    assert total["alerts_per_operator_hour"] == pytest.approx(2 / 3.5)
    assert total["alerts_handled"] == 3   # b0, b1, b3


def test_operator_load_without_duty_has_no_rate():
    total = operator_load(frame(LOAD_ALERTS, LOAD_STEPS), []).row(0, named=True)
    assert (total["user"], total["operator_hours"], total["alerts"]) == ("all", 0.0, 0)
    assert total["alerts_per_operator_hour"] is None


@pytest.mark.parametrize("duty", [[("ana", 10.0, 5.0)], [("ana", 0.0, float("nan"))], [("all", 0.0, 5.0)]])
def test_bad_duty_sessions_are_errors(duty):
    with pytest.raises(ValueError, match="ana|all"):
        operator_load(frame(), duty)


# -- charts and exports ---------------------------------------------------------------------------------------

def decode_png(data: bytes) -> np.ndarray:
    import cv2

    assert data[:8] == PNG_SIGNATURE
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    assert image is not None and image.size > 0
    return image


@pytest.mark.parametrize("name", PLOTS)
def test_every_chart_is_a_png_with_and_without_data(name):
    full = decode_png(plot_png(name, frame(), duty=DUTY))
    empty = decode_png(plot_png(name, frame(alerts=())))
    assert full.shape == empty.shape == (480, 800, 3)
    assert not np.array_equal(full, empty)   # the chart is not the "no data" placeholder
    assert (empty < 128).any()               # the placeholder has text on it


def test_unknown_chart_lists_the_names():
    with pytest.raises(ValueError, match="precision_by_rule.*alerts_by_shift"):
        plot_png("pie", frame())


def test_charts_do_not_import_pyplot_and_the_module_does_not_import_matplotlib():
    code = ("import sys\nfrom analytics.alerts import audit_stats as s\nassert 'matplotlib' not in sys.modules\n"
            "from analytics.console.config import DEFAULT_SHIFTS\n"
            "f = s.alerts_frame([], [], timezone='UTC', shifts=DEFAULT_SHIFTS)\n"
            "s.plot_png('ack_times', f)\nassert 'matplotlib' in sys.modules\n"
            "assert 'matplotlib.pyplot' not in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_csv_round_trip_gives_the_same_rows():
    f = frame()
    back = pl.read_csv(io.BytesIO(export(f, "csv")), schema=f.schema)
    assert back.equals(f)
    loose = pl.read_csv(io.BytesIO(export(f, "csv")))
    assert loose.columns == f.columns and loose["id"].to_list() == f["id"].to_list()
    assert loose["time_to_ack_s"].to_list() == f["time_to_ack_s"].to_list()


def test_parquet_round_trip_gives_the_same_rows():
    f = frame()
    back = pl.read_parquet(io.BytesIO(export(f, "parquet")))
    assert back.schema == f.schema and back.equals(f)


def test_unknown_export_format():
    with pytest.raises(ValueError, match="'xlsx'.*csv.*parquet"):
        export(frame(), "xlsx")
