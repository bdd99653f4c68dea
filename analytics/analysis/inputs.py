"""Finding the notebooks' inputs: a camera's latest track log under ``runs/``, or its ground truth instead."""

from __future__ import annotations

from pathlib import Path

import polars as pl


def find_latest(runs: str | Path, name: str, *, exclude: tuple[str, ...] = ("notebooks",)) -> Path | None:
    """The most recently written file called ``name`` anywhere under ``runs`` (the outputs of ``analytics
    run``), skipping the sub-folders named in ``exclude``; None when there is none."""
    runs = Path(runs)
    if not runs.is_dir():
        return None
    found = [p for p in runs.rglob(name) if p.is_file() and not set(p.relative_to(runs).parts[:-1]) & set(exclude)]
    return max(found, key=lambda p: (p.stat().st_mtime, str(p)), default=None)


def find_track_log(runs: str | Path, camera_id: str) -> Path | None:
    """The newest ``<camera_id>.tracks.parquet`` under ``runs`` (:func:`find_latest`)."""
    return find_latest(runs, f"{camera_id}.tracks.parquet")


def write_gt_track_log(gt: str | Path, out: str | Path, *, camera_id: str, fps: float) -> Path:
    """Write MOT ground truth (rows flagged 0 dropped) as a Parquet track log at ``out``; returns ``out``."""
    from analytics.evaluation import mot_to_track_log, read_mot

    mot = read_mot(gt)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    mot_to_track_log(mot.filter(pl.col("conf") != 0), camera_id=camera_id, fps=fps).write_parquet(out)
    return out


def track_log_summary(log: pl.DataFrame) -> pl.DataFrame:
    """Per class: rows, distinct tracks, frames with at least one, and the time span (seconds)."""
    return (log.group_by("class_name").agg(
        pl.len().alias("rows"), pl.col("track_id").n_unique().alias("tracks"),
        pl.col("seq").n_unique().alias("frames"), pl.col("timestamp").min().alias("first_s"),
        pl.col("timestamp").max().alias("last_s")).sort("rows", descending=True))


def log_frame_size(track_log: str | Path) -> tuple[int, int] | None:
    """(width, height) in pixels of a track log's frames, from its frame index; None without one (or when the
    frames do not share one size)."""
    from analytics.tracklog import frames_path_for

    index = frames_path_for(track_log)
    if not index.is_file():
        return None
    sizes = pl.read_parquet(index, columns=["width", "height"]).unique()
    return (int(sizes["width"][0]), int(sizes["height"][0])) if len(sizes) == 1 else None
