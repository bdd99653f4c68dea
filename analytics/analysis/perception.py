"""Perception report: tracking scores per sequence and the per-frame errors behind them.

A sequence is a MOT result file and its ground truth (``{"name", "result", "gt"}``, optionally ``"classes"``:
ground-truth classes kept, e.g. ``[1]`` for MOT17 pedestrians; ``"keep_zero_flag"``: keep rows flagged 0;
``"images"``: the folder of its frames, default the ``img1/`` of the sequence holding ``gt/gt.txt``).
Scores are :func:`analytics.evaluation.evaluate_frames` (HOTA, MOTA, IDF1...), errors per frame
:func:`analytics.analysis.frame_errors.frame_errors`, on the same rows, so the two always agree. The ground
truth is cut to the frames the result covers (a short run on the first frames of a sequence is scored on
those frames only), which the table says in ``frames``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from analytics.analysis.frame_errors import frame_errors
from analytics.evaluation import read_mot

#: Score columns of :func:`evaluate_sequences`, after ``sequence``.
METRICS: tuple[str, ...] = ("HOTA", "MOTA", "IDF1", "DetA", "AssA", "MOTP", "TP", "FN", "FP", "IDSW", "Frag",
                            "MT", "PT", "ML", "gt_ids", "result_ids", "frames")


@dataclass(frozen=True)
class SequenceSpec:
    """One sequence to score (paths resolved by the caller)."""

    name: str
    result: Path
    gt: Path
    classes: tuple[int, ...] | None = None
    keep_zero_flag: bool = False
    images: Path | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, resolve: Any = Path) -> SequenceSpec:
        """From ``{"name", "result", "gt"[, "classes", "keep_zero_flag", "images"]}``; ``resolve`` maps path
        strings to paths. ``images`` defaults to the sequence's image folder when ``gt`` is ``<seq>/gt/gt.txt``
        beside a ``seqinfo.ini``."""
        from analytics.analysis.targets import sequence_info

        missing = [k for k in ("name", "result", "gt") if k not in data]
        unknown = sorted(set(data) - {"name", "result", "gt", "classes", "keep_zero_flag", "images"})
        if missing or unknown:
            raise ValueError(f"sequence {dict(data)}: missing {missing}, unknown {unknown}; expected name, result, "
                             "gt, and optionally classes, keep_zero_flag, images")
        classes = tuple(int(c) for c in data["classes"]) if data.get("classes") else None
        gt = resolve(data["gt"])
        images = resolve(data["images"]) if data.get("images") else None
        if images is None:
            try:
                images = sequence_info(gt).images
            except (FileNotFoundError, ValueError):
                images = None
        return cls(str(data["name"]), resolve(data["result"]), gt, classes, bool(data.get("keep_zero_flag", False)),
                   images)


def load_pair(spec: SequenceSpec) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(result rows, ground-truth rows cut to the result's last frame); FileNotFoundError names a missing file."""
    for what, path in (("result", spec.result), ("ground truth", spec.gt)):
        if not path.is_file():
            raise FileNotFoundError(f"sequence {spec.name}: {what} file {path} not found")
    result = read_mot(spec.result)
    gt = read_mot(spec.gt)
    if len(result):
        gt = gt.filter(pl.col("frame") <= result["frame"].max())
    return result, gt


def evaluate_sequences(specs: Sequence[SequenceSpec], *, iou_threshold: float = 0.5,
                       ) -> tuple[pl.DataFrame, dict[str, pl.DataFrame]]:
    """Scores per sequence (``sequence`` then :data:`METRICS`), and each sequence's frame errors by name."""
    from analytics.evaluation import evaluate_frames

    rows, errors = [], {}
    for spec in specs:
        result, gt = load_pair(spec)
        scores = evaluate_frames(result, gt, drop_zero_flag=not spec.keep_zero_flag, classes=spec.classes)
        rows.append({"sequence": spec.name, **{k: scores[k] for k in METRICS}})
        errors[spec.name] = frame_errors(result, gt, iou_threshold=iou_threshold,
                                         drop_zero_flag=not spec.keep_zero_flag, classes=spec.classes)
    return pl.DataFrame(rows, orient="row"), errors


def boxes_of_frame(spec: SequenceSpec, frame: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(result rows, ground-truth rows, flag-0 rows included) of one 1-based frame, to draw it."""
    result, gt = load_pair(spec)
    return result.filter(pl.col("frame") == frame), gt.filter(pl.col("frame") == frame)
