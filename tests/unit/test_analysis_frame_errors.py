"""Per-frame tracking errors: the CLEAR matching frame by frame, summing exactly to TrackEval's counts."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from analytics.analysis.frame_errors import ERROR_SCHEMA, error_spans, frame_errors, worst_frames
from analytics.evaluation import MOT_COLUMNS, evaluate_frames


def _mot(rows: list[tuple]) -> pl.DataFrame:
    """Rows ``(frame, id, x, y, w, h[, conf])``."""
    full = [(*r, *(1.0,) * (7 - len(r)), -1.0, -1.0, -1.0) for r in rows]
    return pl.DataFrame(full, schema=list(MOT_COLUMNS), orient="row").with_columns(
        pl.col("frame").cast(pl.Int64), pl.col("id").cast(pl.Int64), pl.exclude("frame", "id").cast(pl.Float64))


def _walkers(n: int, frames: int) -> list[tuple]:
    return [(f, i, 50.0 + 60.0 * i + 3.0 * f, 100.0 + 10.0 * i, 40.0, 100.0) for i in range(1, n + 1)
            for f in range(1, frames + 1)]


def test_a_miss_a_false_track_and_a_switch_are_found_in_their_frames() -> None:
    gt = _walkers(2, 6)
    result = [r for r in gt if not (r[0] == 3 and r[1] == 1)]               # person 1 missed in frame 3
    result = [(f, 7 if (i == 2 and f >= 5) else i, x, y, w, h) for f, i, x, y, w, h in result]  # id 2 -> 7
    result.append((4, 9, 600.0, 400.0, 40.0, 100.0))                        # a false track in frame 4
    err = frame_errors(_mot(result), _mot(gt))
    assert list(err.schema) == list(ERROR_SCHEMA) and err["frame"].to_list() == list(range(1, 7))
    by_frame = {r["frame"]: r for r in err.iter_rows(named=True)}
    assert (by_frame[3]["fn"], by_frame[3]["missed_ids"]) == (1, [1])
    assert (by_frame[4]["fp"], by_frame[4]["false_ids"]) == (1, [9])
    assert (by_frame[5]["idsw"], by_frame[5]["switched_ids"]) == (1, [2]) and by_frame[6]["idsw"] == 0
    assert by_frame[1]["mean_iou"] == pytest.approx(1.0) and by_frame[1]["errors"] == 0
    assert worst_frames(err)["frame"].to_list() == [3, 4, 5]


def test_sums_equal_trackeval_clear_on_a_noisy_result() -> None:
    rng = np.random.default_rng(0)
    gt = _walkers(6, 60)
    result = []
    for f, i, x, y, w, h in gt:
        if rng.random() < 0.1:
            continue  # missed
        tid = i + 100 if (i == 3 and f > 30) else i  # a late identity switch
        tid = 4 if i == 5 and 20 <= f < 25 else 5 if i == 4 and 20 <= f < 25 else tid  # two ids swapped a while
        result.append((f, tid, x + rng.normal(0, 8), y + rng.normal(0, 8), w, h))
    result += [(f, 500 + f % 3, rng.uniform(0, 600), rng.uniform(0, 400), 40.0, 100.0) for f in range(1, 61, 4)]
    res, g = _mot(result), _mot(gt + [(f, 99, 10.0, 10.0, 30.0, 60.0, 0.0) for f in range(1, 61)])
    clear = evaluate_frames(res, g)
    sums = frame_errors(res, g).select(pl.col("fn", "fp", "idsw", "tp").sum()).row(0, named=True)
    assert (sums["fn"], sums["fp"], sums["idsw"], sums["tp"]) == (clear["FN"], clear["FP"], clear["IDSW"],
                                                                   clear["TP"])
    assert clear["IDSW"] >= 3


def test_false_tracks_on_ignored_people_are_counted_apart() -> None:
    gt = _walkers(1, 3) + [(f, 50, 500.0, 300.0, 40.0, 100.0, 0.0) for f in range(1, 4)]  # flagged 0
    result = _walkers(1, 3) + [(f, 60, 502.0, 301.0, 40.0, 100.0) for f in range(1, 4)]
    err = frame_errors(_mot(result), _mot(gt))
    assert err["fp"].to_list() == [1, 1, 1] and err["fp_ignored"].to_list() == [1, 1, 1]
    assert err["failures"].sum() == 0 and worst_frames(err).is_empty()
    assert worst_frames(err, by="errors")["frame"].to_list() == [1, 2, 3]
    kept = frame_errors(_mot(result), _mot(gt), drop_zero_flag=False)
    assert kept["fp"].sum() == 0 and kept["fp_ignored"].sum() == 0


def test_classes_filter_the_ground_truth_like_the_evaluation() -> None:
    gt = _mot(_walkers(2, 2)).with_columns(pl.when(pl.col("id") == 2).then(7.0).otherwise(1.0).alias("c8"))
    err = frame_errors(_mot(_walkers(1, 2)), gt, classes=(1,))
    assert err["fn"].sum() == 0 and err["gt"].to_list() == [1, 1]


def test_error_spans_bridge_short_gaps() -> None:
    err = pl.DataFrame({"frame": list(range(1, 11)), "fn": [0, 1, 1, 0, 1, 0, 0, 0, 2, 0]}).with_columns(
        pl.lit(0).alias("fp"), pl.lit(0).alias("fp_ignored"), pl.lit(0).alias("idsw"),
        pl.col("fn").alias("failures"), pl.col("fn").alias("errors"))
    assert error_spans(err).select("first", "last", "fn").rows() == [(2, 3, 2), (9, 9, 2), (5, 5, 1)]
    assert error_spans(err, max_gap=1).select("first", "last", "frames", "fn").rows() == [(2, 5, 4, 3), (9, 9, 1, 2)]
    assert error_spans(err, min_count=3).is_empty()
    with pytest.raises(ValueError, match="by must be"):
        error_spans(err, by="fn")


def test_bad_threshold() -> None:
    with pytest.raises(ValueError, match="iou_threshold"):
        frame_errors(_mot(_walkers(1, 1)), _mot(_walkers(1, 1)), iou_threshold=0.0)
