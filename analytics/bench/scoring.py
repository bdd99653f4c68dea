"""Scores of one pipeline run: tracking quality against MOTChallenge ground truth, and events against the
reference events (the same rules replayed on the ground-truth tracks) and against labelled event files.

Every score is restricted to the frames the run analysed (its frame index, ``<camera>.frames.parquet``), so a
run cut short (``max_frames``) or rate-limited is compared with the ground truth of the same frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from analytics.config import CameraConfig
from analytics.rules.base import Event

#: Tracking metrics kept in results (the rest of evaluate_frames' output is in the JSON too).
TRACKING_KEYS = ("HOTA", "DetA", "AssA", "MOTA", "IDF1", "IDSW", "FP", "FN", "gt_ids", "result_ids", "frames")
#: Event matching against reference events (as benchmarks/rules_pets09.py).
EVENT_MATCHING = {"time_tolerance": 1.0, "min_time_iou": 0.2, "min_member_overlap": 0.3}
ID_MAP_IOU = 0.5


@dataclass(frozen=True)
class AnalysedFrames:
    """The frames a run analysed: 0-based ``seqs`` ((N,) int64), the source ``fps`` and ``size`` (w, h) px,
    and the frame index file they came from."""

    seqs: np.ndarray
    fps: float
    size: tuple[int, int]
    path: Path
    last_time: float


def analysed_frames(frames_parquet: str | Path) -> AnalysedFrames:
    """Read a run's frame index. The source frame rate is ``seq / timestamp`` (media time of file sources).

    Raises:
        ValueError: an empty index, or one whose timestamps give no frame rate.
    """
    path = Path(frames_parquet)
    df = pl.read_parquet(path).sort("seq")
    if df.is_empty():
        raise ValueError(f"{path}: the run analysed no frame")
    seq, ts = df["seq"].to_numpy(), df["timestamp"].to_numpy()
    ok = (seq > 0) & (ts > 0)
    fps = float(np.median(seq[ok] / ts[ok])) if ok.any() else float("nan")
    if not np.isfinite(fps) or fps <= 0:
        raise ValueError(f"{path}: cannot tell the frame rate from seq and timestamp")
    return AnalysedFrames(seq.astype(np.int64), fps, (int(df["width"][0]), int(df["height"][0])), path,
                          float(ts.max()))


def _gt_rows(gt_path: str | Path, frames: AnalysedFrames) -> pl.DataFrame:
    from analytics.evaluation import read_mot

    return read_mot(gt_path).filter(pl.col("frame").is_in((frames.seqs + 1).tolist()))


def score_tracking(result_mot: str | Path, gt_path: str | Path, frames: AnalysedFrames, *,
                   classes: tuple[int, ...] | None = None) -> dict[str, float]:
    """HOTA, MOTA, IDF1 and counts (:data:`TRACKING_KEYS`) of a MOTChallenge result on the analysed frames
    (MOT15 convention: ground-truth rows flagged 0 dropped)."""
    from analytics.evaluation import evaluate_frames, read_mot

    m = evaluate_frames(read_mot(result_mot), _gt_rows(gt_path, frames), drop_zero_flag=True, classes=classes)
    return {k: round(float(m[k]), 4) for k in TRACKING_KEYS}


def gt_track_log(gt_path: str | Path, frames: AnalysedFrames, *, camera_id: str, out: Path,
                 classes: tuple[int, ...] | None = None) -> Path:
    """Write the ground truth of the analysed frames as a track log (:func:`mot_to_track_log`) to ``out``."""
    from analytics.evaluation import mot_to_track_log

    gt = _gt_rows(gt_path, frames).filter(pl.col("conf") != 0)
    if classes is not None:
        gt = gt.filter(pl.col("c8").is_in([float(c) for c in classes]))
    out.parent.mkdir(parents=True, exist_ok=True)
    mot_to_track_log(gt, camera_id=camera_id, fps=frames.fps).write_parquet(out)
    return out


def reference_events(camera: CameraConfig, gt_log: str | Path, *, frames: str | Path | None = None,
                     frame_size: tuple[int, int] | None = None) -> list[Event]:
    """The camera's rules replayed on a ground-truth track log: what the rules say with perfect perception.

    ``frames``: a frame index to step exactly those frames (empty ones included); without it, the frames
    holding ground-truth rows, of size ``frame_size`` (width, height).
    """
    from analytics.replay import replay

    return replay(gt_log, camera, frames=frames, frame_size=frame_size)


def score_reference_events(pred: list[Event], ref: list[Event], *, pred_log: str | Path,
                           ref_log: str | Path) -> dict[str, Any]:
    """Match a run's events with reference events (kind, zone, line, time overlap, members after mapping
    the run's track ids to ground-truth ids by box IoU >= :data:`ID_MAP_IOU`); counts, scores and pairing."""
    from analytics.event_eval import match_events, track_id_mapping

    id_map = track_id_mapping(pl.read_parquet(pred_log), pl.read_parquet(ref_log), iou_threshold=ID_MAP_IOU)
    match = match_events(pred, ref, id_map=id_map, **EVENT_MATCHING)
    return {**match.to_dict(), "mapped_ids": len(id_map), "matching": {**EVENT_MATCHING, "id_map_iou": ID_MAP_IOU}}


def score_labels(pred: list[Event], labels_path: str | Path, *, until: float | None = None) -> dict[str, Any]:
    """Match a run's events with a labelled event file (:func:`analytics.labels.match_labels`); labels that
    start after ``until`` (seconds, the last analysed frame's time) are left out, and counted."""
    from analytics.labels import load_labels, match_labels

    labels = load_labels(labels_path)
    kept = tuple(lab for lab in labels.labels if until is None or lab.start <= until)
    cut = labels.model_copy(update={"labels": kept})
    m = match_labels(pred, cut)
    return {"tp": m.tp, "fp": m.fp, "fn": m.fn, "precision": round(m.precision, 4), "recall": round(m.recall, 4),
            "f1": round(m.f1, 4), "labels": len(kept), "labels_after_end": len(labels.labels) - len(kept),
            "slack": labels.slack, "pairs": [list(p) for p in m.pairs], "unmatched_events": m.unmatched_events,
            "unmatched_labels": m.unmatched_labels,
            "by_kind": {k: {"tp": v.tp, "fp": v.fp, "fn": v.fn} for k, v in m.by_kind.items()}}
