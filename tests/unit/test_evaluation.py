"""MOTChallenge I/O and scoring, checked against published motmetrics values and trivial cases."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from analytics import paths
from analytics.evaluation import MOT_COLUMNS, evaluate_frames, evaluate_mot, read_mot, tracks_to_mot, write_mot
from analytics.types import Tracks

pytest.importorskip("trackeval")

TUD = paths.footage_dir() / "mot" / "TUD-gt-only"

# py-motmetrics' own test (motmetrics/tests/test_metrics.py::test_motchallenge_files, IoU 0.5):
# idf1, idp, idr, mostly tracked, partially tracked, mostly lost, FP, FN, ID switches, fragmentations, MOTA.
KNOWN = {
    "TUD-Campus": (0.557659, 0.729730, 0.451253, 1, 6, 1, 13, 150, 7, 7, 0.526462),
    "TUD-Stadtmitte": (0.644619, 0.819760, 0.531142, 5, 4, 1, 45, 452, 7, 6, 0.564014),
}
KEYS = ("IDF1", "IDP", "IDR", "MT", "PT", "ML", "FP", "FN", "IDSW", "Frag", "MOTA")


@pytest.mark.skipif(not TUD.is_dir(), reason=f"no shared footage at {TUD}")
@pytest.mark.parametrize("name", sorted(KNOWN))
def test_tud_matches_published_motmetrics_values(name: str) -> None:
    res = evaluate_mot(TUD / name / "test.txt", TUD / name / "gt.txt")
    got = tuple(res[k] for k in KEYS)
    assert got == pytest.approx(KNOWN[name], abs=1e-5)
    assert 0.3 < res["HOTA"] < 0.5  # TrackEval HOTA has no published value for this pair


def _gt() -> pl.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for frame in range(1, 21):
        for obj in range(1, 4):
            x, y = 50.0 * obj + 3 * frame + rng.uniform(0, 1), 40.0 * obj
            rows.append((frame, obj, x, y, 30.0, 80.0, 1.0, -1.0, -1.0, -1.0))
    return pl.DataFrame(rows, schema=list(MOT_COLUMNS), orient="row").with_columns(
        pl.col("frame").cast(pl.Int64), pl.col("id").cast(pl.Int64))


def test_perfect_result_scores_one() -> None:
    gt = _gt()
    res = evaluate_frames(gt.with_columns(pl.col("id") + 100), gt)  # ids need not be equal, only consistent
    for key in ("HOTA", "DetA", "AssA", "MOTA", "IDF1"):
        assert res[key] == pytest.approx(1.0)
    assert (res["IDSW"], res["FP"], res["FN"]) == (0, 0, 0)


def test_swapped_ids_halfway_cost_association_not_detection() -> None:
    gt = _gt()
    swapped = gt.with_columns(pl.when((pl.col("frame") > 10) & (pl.col("id") < 3)).then(3 - pl.col("id"))
                              .otherwise(pl.col("id")).alias("id"))
    res = evaluate_frames(swapped, gt)
    assert res["DetA"] == pytest.approx(1.0)
    assert res["IDSW"] == 2
    assert res["AssA"] < 0.8 and res["IDF1"] < 0.8


def test_zero_flag_rows_are_ignored_and_classes_filter() -> None:
    gt = _gt()
    flagged = gt.with_columns(pl.when(pl.col("id") == 3).then(0.0).otherwise(1.0).alias("conf"),
                              pl.lit(1.0).alias("c8"))
    result = gt.filter(pl.col("id") != 3)
    assert evaluate_frames(result, flagged)["MOTA"] == pytest.approx(1.0)
    assert evaluate_frames(result, flagged, drop_zero_flag=False)["FN"] == 20
    assert evaluate_frames(result, flagged, classes=(7,))["gt_dets"] == 0


def test_repeated_ids_in_a_frame_are_rejected() -> None:
    gt = _gt()
    with pytest.raises(ValueError, match="repeated"):
        evaluate_frames(pl.concat([gt, gt.head(1)]), gt)


def test_write_then_read_roundtrip(tmp_path: Path) -> None:
    tracks = Tracks([5, 2], [[10, 20, 40, 100], [0, 0, 10, 10]], [0, 0], [0.9, 0.5], np.zeros((2, 2)), [0, 0],
                    [1, 1])
    path = tmp_path / "out" / "res.txt"
    write_mot(tracks_to_mot(7, tracks), path)
    back = read_mot(path)
    assert back["id"].to_list() == [2, 5]  # sorted by frame then id
    assert back.row(1)[:7] == (7, 5, 10.0, 20.0, 30.0, 80.0, 0.9)
    assert back["c8"].to_list() == [-1.0, -1.0]


@pytest.mark.parametrize(("text", "match"), [("1,2,3\n", "6-10"), ("1,2,a,4,5,6\n", "non-numeric")])
def test_read_mot_rejects_bad_lines(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "bad.txt"
    path.write_text(text)
    with pytest.raises(ValueError, match=match):
        read_mot(path)


def test_read_mot_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        read_mot(tmp_path / "nope.txt")
