"""Replay: run a camera's rules on a stored track log, without decoding or detecting anything.

The track log (``<camera>.tracks.parquet``) holds every track row the live run saw and its frame index
(``<camera>.frames.parquet``) every analysed frame, empty ones included, with the decoded frame size. The
replay gives the whole log (:class:`~analytics.rules.view.LogFrames`) to the same
:class:`~analytics.rules.engine.RuleEngine` the live runner steps frame by frame; its
:meth:`~analytics.rules.engine.RuleEngine.replay` gives exactly the events of those steps, much faster
(tested: the live run's events, and stepping every rule on every frame). A track log without a frame index
(ground truth converted from MOTChallenge, a log from another tool) replays over the frames that have rows,
with the frame size given by the caller.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np
import polars as pl

from analytics.config import CameraConfig
from analytics.geometry import SceneGeometry
from analytics.rules.base import Event
from analytics.rules.engine import RuleEngine
from analytics.rules.view import LogFrames
from analytics.tracklog import FRAME_SCHEMA, TRACK_SCHEMA, frames_path_for
from analytics.types import Tracks


class ReplayError(ValueError):
    """A track log or frame index that cannot be replayed; the message names the file and the problem."""


class ReplayFrame(NamedTuple):
    """One analysed frame rebuilt from a track log."""

    seq: int
    timestamp: float
    frame_size: tuple[int, int]
    tracks: Tracks


def _check_columns(df: pl.DataFrame, schema: dict, path: Path, what: str) -> None:
    missing = [c for c in schema if c not in df.columns]
    if missing:
        raise ReplayError(f"{path} is not a {what}: missing columns {missing}")


def load_log(track_log: str | Path, geometry: SceneGeometry, *, frames: str | Path | None = None,
             frame_size: tuple[int, int] | None = None, camera_id: str | None = None) -> LogFrames:
    """Every frame of a track log at once, in time order, with its tracks (empty frames included when indexed).

    Args:
        track_log: Parquet track log (:data:`analytics.tracklog.TRACK_SCHEMA`).
        geometry: the scene whose measurements the rules will read.
        frames: its frame index; defaults to the file beside it (:func:`frames_path_for`) when it exists.
        frame_size: (width, height) in pixels, required when there is no frame index.
        camera_id: keep only this camera's rows (a log normally holds one camera).

    Raises:
        ReplayError: unreadable files, missing columns, no frame size, or timestamps that go backwards.
    """
    track_log = Path(track_log)
    try:
        df = pl.read_parquet(track_log)
    except (OSError, pl.exceptions.ComputeError) as err:
        raise ReplayError(f"cannot read track log {track_log}: {err}") from None
    _check_columns(df, TRACK_SCHEMA, track_log, "track log")
    index = _frame_index(df, track_log, frames=frames, frame_size=frame_size)
    if camera_id is not None:
        df = df.filter(pl.col("camera_id") == camera_id)
        index = index.filter(pl.col("camera_id") == camera_id) if "camera_id" in index.columns else index
    if not df["seq"].is_sorted():  # a log is written in seq order; sorting it would cost a pass
        df = df.sort("seq", maintain_order=True)  # stable: rows keep the live order within a frame
    return _log_frames(df, index, track_log, geometry)


def load_frames(track_log: str | Path, *, frames: str | Path | None = None,
                frame_size: tuple[int, int] | None = None, camera_id: str | None = None) -> Iterator[ReplayFrame]:
    """The frames of a track log in time order, each with its tracks (empty frames included when indexed);
    arguments and errors as :func:`load_log`."""
    log = load_log(track_log, SceneGeometry(), frames=frames, frame_size=frame_size, camera_id=camera_id)
    everything = log.tracks
    for f, (s, t, size) in enumerate(zip(log.seq.tolist(), log.time.tolist(), log.size_of, strict=True)):
        a, b = int(log.starts[f]), int(log.ends[f])
        yield ReplayFrame(s, t, size, everything[a:b])


def _frame_index(df: pl.DataFrame, track_log: Path, *, frames: str | Path | None,
                 frame_size: tuple[int, int] | None) -> pl.DataFrame:
    path = Path(frames) if frames is not None else frames_path_for(track_log)
    if path.is_file():
        try:
            index = pl.read_parquet(path)
        except (OSError, pl.exceptions.ComputeError) as err:
            raise ReplayError(f"cannot read frame index {path}: {err}") from None
        _check_columns(index, FRAME_SCHEMA, path, "frame index")
        return index if index["seq"].is_sorted() else index.sort("seq", maintain_order=True)
    if frames is not None:
        raise ReplayError(f"frame index {path} not found")
    if frame_size is None:
        raise ReplayError(f"{track_log} has no frame index ({path.name}); give the frame size (width, height)")
    return (df.group_by("seq").agg(pl.col("timestamp").first(), pl.col("camera_id").first()).sort("seq")
            .with_columns(pl.lit(frame_size[0]).alias("width"), pl.lit(frame_size[1]).alias("height")))


def _log_frames(df: pl.DataFrame, index: pl.DataFrame, track_log: Path, geometry: SceneGeometry) -> LogFrames:
    def column(frame: pl.DataFrame, name: str, dtype: type) -> np.ndarray:  # column by column: no query plan
        return frame[name].to_numpy().astype(dtype, copy=False)

    seq = column(df, "seq", np.int64)
    ids = column(df, "track_id", np.int64)
    xyxy = np.column_stack([column(df, c, np.float32) for c in ("x1", "y1", "x2", "y2")])
    cls = column(df, "class_id", np.int16)
    conf = column(df, "confidence", np.float32)
    vel = np.column_stack([column(df, "vx", np.float32), column(df, "vy", np.float32)])
    age = column(df, "age", np.int32)
    state = column(df, "state", np.int8)
    f_seq = column(index, "seq", np.int64)
    f_time = column(index, "timestamp", np.float64)
    if len(f_time) > 1 and np.any(np.diff(f_time) < 0):
        raise ReplayError(f"{track_log}: timestamps go backwards in seq order; cannot replay")
    sizes = np.column_stack([column(index, "width", np.int64), column(index, "height", np.int64)])
    starts = np.searchsorted(seq, f_seq, side="left")
    ends = np.searchsorted(seq, f_seq, side="right")
    everything = Tracks.trusted(ids, xyxy, cls, conf, vel, age, state)
    return LogFrames(everything, f_seq, f_time, sizes, starts, ends, geometry)


def replay(track_log: str | Path, camera: CameraConfig, *, frames: str | Path | None = None,
           frame_size: tuple[int, int] | None = None, camera_id: str | None = None,
           every_frame: bool = False) -> list[Event]:
    """Every event record the camera's rules give on a stored track log, closing what is open at the end.

    Args:
        track_log: the Parquet track log.
        camera: the camera config whose scene and rules are applied (its id names the events).
        frames, frame_size: see :func:`load_frames`.
        camera_id: rows of this camera only (default: all rows of the log).
        every_frame: step every rule on every frame (the reference; see :meth:`RuleEngine.replay`).
    """
    log = load_log(track_log, camera.scene, frames=frames, frame_size=frame_size, camera_id=camera_id)
    return RuleEngine(camera.id, camera.scene, camera.rules).replay(log, every_frame=every_frame)
