"""Where tracking fails: per-frame misses, false tracks and identity switches of a MOT result against ground truth.

The matching is CLEAR-MOT's, as TrackEval computes it for MOTA (:func:`analytics.evaluation.evaluate_frames`),
frame by frame: boxes pair one to one by the Hungarian algorithm on IoU, pairs below ``iou_threshold`` are
not matches, and a pair that continues the previous frame's match of that ground-truth id is preferred
over any other. Then, per frame:

* **fn** (a miss): a ground-truth box with no matched result box;
* **fp** (a false track): a result box matched to no ground-truth box;
* **idsw** (an identity switch): a ground-truth id matched to a result id other than the one it was last
  matched to (any number of frames before).

``fp_ignored`` counts the false tracks whose box overlaps (IoU at least ``iou_threshold``) a ground-truth row
flagged 0 (MOT "ignore", dropped with ``drop_zero_flag``): people the annotators left out, whom the tracker
found. They are false positives by the MOT convention, but not tracking failures: ``failures = fn + fp -
fp_ignored + idsw`` is what :func:`worst_frames` and :func:`error_spans` rank by default.

Summed over the frames these are exactly TrackEval's CLEAR ``FN``, ``FP`` and ``IDSW`` (tested), so the plot
of errors over time adds up to the MOTA that :func:`~analytics.evaluation.evaluate_mot` reports, and each
frame says which ids were missed, which were false and which switched.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
from scipy.optimize import linear_sum_assignment

from analytics.tracking.matching import iou_matrix

_EPS = np.finfo("float").eps
#: Columns of :func:`frame_errors`.
ERROR_SCHEMA: dict[str, Any] = {
    "frame": pl.Int64, "gt": pl.Int64, "result": pl.Int64, "tp": pl.Int64, "fn": pl.Int64, "fp": pl.Int64,
    "idsw": pl.Int64, "fp_ignored": pl.Int64, "errors": pl.Int64,
    "failures": pl.Int64, "mean_iou": pl.Float64, "missed_ids": pl.List(pl.Int64),
    "false_ids": pl.List(pl.Int64), "switched_ids": pl.List(pl.Int64),
}


def _boxes(df: pl.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(frame (N,), id (N,), xyxy (N, 4) float64 pixels) of MOT rows sorted by frame."""
    df = df.sort("frame", maintain_order=True)
    xywh = df.select("x", "y", "w", "h").to_numpy().astype(np.float64).reshape(-1, 4)
    return (df["frame"].to_numpy(), df["id"].to_numpy(),
            np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1))


def _frame_match(gt_ids: np.ndarray, tr_ids: np.ndarray, iou: np.ndarray,
                 prev_step: dict[int, int], threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Matched (gt rows, result rows) of one frame: continuations of last frame's pairs first, then IoU."""
    cont = np.array([[prev_step.get(int(g)) == int(t) for t in tr_ids] for g in gt_ids], dtype=bool)
    score = 1000.0 * cont + iou
    score[iou < threshold - _EPS] = 0.0
    rows, cols = linear_sum_assignment(-score)
    keep = score[rows, cols] > _EPS
    return rows[keep], cols[keep]


def frame_errors(result: pl.DataFrame, gt: pl.DataFrame, *, iou_threshold: float = 0.5,
                 drop_zero_flag: bool = True, classes: tuple[int, ...] | None = None) -> pl.DataFrame:
    """Per-frame CLEAR errors of ``result`` against ``gt`` (both :data:`analytics.evaluation.MOT_COLUMNS` rows).

    Args:
        result: tracker rows (frame, id, x, y, w, h: 1-based frames, pixels).
        gt: ground-truth rows; those whose ``conf`` is 0 are dropped with ``drop_zero_flag`` and, with
            ``classes``, only rows whose class column (c8) is in it are kept (as ``evaluate_frames`` does).
        iou_threshold: minimum IoU of a match, in (0, 1].

    Returns:
        One row per frame from 1 to the last frame of either side (:data:`ERROR_SCHEMA`): counts of ground-
        truth and result boxes, tp, fn, fp, idsw, ``errors = fn + fp + idsw``, ``mean_iou`` of the matches
        (null without one), and the ids involved: ``missed_ids`` (ground truth), ``false_ids`` (result),
        ``switched_ids`` (ground truth).
    """
    if not 0.0 < iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold must be in (0, 1], got {iou_threshold}")
    if classes is not None:
        gt = gt.filter(pl.col("c8").is_in([float(c) for c in classes]))
    ignored = gt.filter(pl.col("conf") == 0) if drop_zero_flag else gt.clear()
    if drop_zero_flag:
        gt = gt.filter(pl.col("conf") != 0)
    g_frame, g_id, g_box = _boxes(gt)
    r_frame, r_id, r_box = _boxes(result)
    i_frame, _i_id, i_box = _boxes(ignored)
    last = int(max(g_frame.max(initial=0), r_frame.max(initial=0)))
    frames = np.arange(1, last + 1)
    g_lo, g_hi = np.searchsorted(g_frame, frames, "left"), np.searchsorted(g_frame, frames, "right")
    r_lo, r_hi = np.searchsorted(r_frame, frames, "left"), np.searchsorted(r_frame, frames, "right")
    i_lo, i_hi = np.searchsorted(i_frame, frames, "left"), np.searchsorted(i_frame, frames, "right")
    last_match: dict[int, int] = {}  # gt id -> result id it was last matched to (for IDSW)
    prev_step: dict[int, int] = {}  # gt id -> result id matched in the previous frame (for matching)
    rows = []
    for f, ga, gb, ra, rb, ia, ib in zip(frames.tolist(), g_lo.tolist(), g_hi.tolist(), r_lo.tolist(),
                                         r_hi.tolist(), i_lo.tolist(), i_hi.tolist(), strict=True):
        gids, rids = g_id[ga:gb], r_id[ra:rb]
        if len(gids) and len(rids):
            iou = iou_matrix(g_box[ga:gb], r_box[ra:rb])
            mg, mr = _frame_match(gids, rids, iou, prev_step, iou_threshold)
        else:
            iou, mg, mr = np.zeros((len(gids), len(rids))), np.zeros(0, np.int64), np.zeros(0, np.int64)
        pairs = {int(gids[a]): int(rids[b]) for a, b in zip(mg.tolist(), mr.tolist(), strict=True)}
        switched = sorted(g for g, r in pairs.items() if last_match.get(g, r) != r)
        if len(gids) and len(rids):  # as TrackEval: a frame without either side keeps the earlier pairs
            prev_step = pairs
        last_match.update(pairs)
        row = _row(f, gids, rids, pairs, switched, iou[mg, mr] if len(mg) else np.zeros(0))
        row["fp_ignored"] = _on_ignored(r_box[ra:rb], rids, row["false_ids"], i_box[ia:ib], iou_threshold)
        row["failures"] = row["errors"] - row["fp_ignored"]
        rows.append(row)
    return pl.DataFrame(rows, schema=ERROR_SCHEMA, orient="row")


def _row(frame: int, gids: np.ndarray, rids: np.ndarray, pairs: dict[int, int], switched: list[int],
         ious: np.ndarray) -> dict[str, Any]:
    missed = sorted(int(g) for g in gids if int(g) not in pairs)
    matched_r = set(pairs.values())
    false = sorted(int(r) for r in rids if int(r) not in matched_r)
    return {"frame": frame, "gt": len(gids), "result": len(rids), "tp": len(pairs), "fn": len(missed),
            "fp": len(false), "idsw": len(switched), "errors": len(missed) + len(false) + len(switched),
            "mean_iou": float(ious.mean()) if len(ious) else None, "missed_ids": missed, "false_ids": false,
            "switched_ids": switched}


def _on_ignored(boxes: np.ndarray, ids: np.ndarray, false_ids: list[int], ignored: np.ndarray,
                threshold: float) -> int:
    """How many of the false result boxes overlap an ignored ground-truth box by at least ``threshold``."""
    if not false_ids or not len(ignored):
        return 0
    false = np.isin(ids, false_ids)
    return int((iou_matrix(boxes[false], ignored).max(axis=1) >= threshold - _EPS).sum())


def _check_by(by: str) -> None:
    if by not in ("failures", "errors"):
        raise ValueError(f"by must be 'failures' or 'errors', got {by!r}")


def worst_frames(errors: pl.DataFrame, n: int = 10, *, by: str = "failures") -> pl.DataFrame:
    """The ``n`` frames with the most ``by`` (``failures`` or ``errors``), most first, then by frame."""
    _check_by(by)
    return errors.filter(pl.col(by) > 0).sort([by, "frame"], descending=[True, False]).head(n)


_SPAN_COLUMNS = ("first", "last", "frames", "fn", "fp", "fp_ignored", "idsw", "failures", "errors")


def error_spans(errors: pl.DataFrame, *, min_count: int = 1, max_gap: int = 0, by: str = "failures") -> pl.DataFrame:
    """Runs of frames with at least ``min_count`` of ``by`` each (gaps of up to ``max_gap`` frames bridged),
    with their summed counts, the most ``by`` first.

    Returns:
        first, last (frames), frames (length), fn, fp, fp_ignored, idsw, failures, errors (Int64).
    """
    _check_by(by)
    bad = errors.filter(pl.col(by) >= max(min_count, 1)).sort("frame")
    if bad.is_empty():
        return pl.DataFrame(schema={c: pl.Int64 for c in _SPAN_COLUMNS})
    run = (bad["frame"].diff().fill_null(1) > max_gap + 1).cum_sum().alias("run")
    spans = bad.with_columns(run).group_by("run").agg(
        pl.col("frame").min().alias("first"), pl.col("frame").max().alias("last"),
        *(pl.col(c).sum() for c in ("fn", "fp", "fp_ignored", "idsw", "failures", "errors")))
    spans = spans.with_columns((pl.col("last") - pl.col("first") + 1).alias("frames"))
    return spans.select(_SPAN_COLUMNS).cast(pl.Int64).sort([by, "first"], descending=[True, False])
