"""Track logs: what every run writes, per camera.

* Parquet (one file per camera, ``<camera>.tracks.parquet``), one row per track per analysed frame, every
  state included, so that the rules can be replayed on exactly the tracks a live run saw. Row groups are
  flushed every ``flush_rows`` rows, so a crash loses at most one group. Schema: :data:`TRACK_SCHEMA`.
* MOTChallenge text (``<camera>.mot.txt``): ``frame,id,x,y,w,h,score,-1,-1,-1`` with 1-based frames, only
  confirmed tracks, tentative boxes back-filled when a track is confirmed (online, at most
  ``min_hits - 1`` frames late).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import IO

import numpy as np

from analytics.types import CLASS_NAMES, TrackedFrame, Tracks

log = logging.getLogger(__name__)

#: Parquet track-log schema: column -> (polars dtype name, meaning). Kept in sync with the README.
TRACK_SCHEMA: dict[str, tuple[str, str]] = {
    "camera_id": ("String", "camera id from the config"),
    "seq": ("Int64", "0-based frame index in the source (gaps where frames were skipped)"),
    "timestamp": ("Float64", "seconds: media time for files, Unix time for live streams"),
    "track_id": ("Int64", "track id, unique per camera and run, from 1"),
    "class_id": ("Int16", "COCO class id"),
    "class_name": ("String", "person, bicycle, car, motorcycle, bus, truck"),
    "confidence": ("Float32", "score of the last matched detection"),
    "x1": ("Float32", "box left, pixels"),
    "y1": ("Float32", "box top, pixels"),
    "x2": ("Float32", "box right, pixels"),
    "y2": ("Float32", "box bottom, pixels"),
    "anchor_x": ("Float32", "ground anchor (bottom centre) x, pixels"),
    "anchor_y": ("Float32", "ground anchor (bottom centre) y, pixels"),
    "vx": ("Float32", "anchor velocity x, pixels per second"),
    "vy": ("Float32", "anchor velocity y, pixels per second"),
    "age": ("Int32", "frames since the track was born"),
    "state": ("Int8", "0 tentative, 1 confirmed (matched this frame), 2 lost (predicted)"),
}


#: Frame index written beside each Parquet track log (``<camera>.frames.parquet``): one row per *analysed*
#: frame, empty ones included, so a replay steps the rules on exactly the frames the live run saw.
FRAME_SCHEMA: dict[str, tuple[str, str]] = {
    "camera_id": ("String", "camera id from the config"),
    "seq": ("Int64", "0-based frame index in the source"),
    "timestamp": ("Float64", "seconds, as in the track log"),
    "width": ("Int32", "decoded frame width, pixels"),
    "height": ("Int32", "decoded frame height, pixels"),
    "tracks": ("Int32", "rows of this frame in the track log"),
}


def _polars_schema(schema: dict[str, tuple[str, str]]) -> dict:
    import polars as pl

    return {name: getattr(pl, dtype) for name, (dtype, _) in schema.items()}


def tracks_to_columns(camera_id: str, seq: int, timestamp: float, tracks: Tracks) -> dict[str, np.ndarray]:
    """One frame's tracks as the track-log columns (numpy arrays, schema order)."""
    n = len(tracks)
    anchor = tracks.anchor
    names = np.array([CLASS_NAMES.get(int(c), str(int(c))) for c in tracks.class_id], dtype=object)
    return {
        "camera_id": np.full(n, camera_id, dtype=object),
        "seq": np.full(n, seq, dtype=np.int64),
        "timestamp": np.full(n, timestamp, dtype=np.float64),
        "track_id": tracks.track_id,
        "class_id": tracks.class_id,
        "class_name": names,
        "confidence": tracks.confidence,
        "x1": tracks.xyxy[:, 0],
        "y1": tracks.xyxy[:, 1],
        "x2": tracks.xyxy[:, 2],
        "y2": tracks.xyxy[:, 3],
        "anchor_x": anchor[:, 0],
        "anchor_y": anchor[:, 1],
        "vx": tracks.velocity[:, 0],
        "vy": tracks.velocity[:, 1],
        "age": tracks.age,
        "state": tracks.state,
    }


class _ParquetAppender:
    """Buffers column chunks of one schema and appends them to a Parquet file, a row group per flush."""

    def __init__(self, path: Path, schema: dict[str, tuple[str, str]], flush_rows: int) -> None:
        self.path = path
        self.schema = schema
        self.flush_rows = flush_rows
        self._pending: list[dict[str, np.ndarray]] = []
        self._pending_rows = 0
        self._writer = None  # pyarrow.parquet.ParquetWriter, opened on the first flush
        self.rows_written = 0

    def append(self, columns: dict[str, np.ndarray], rows: int) -> None:
        self._pending.append(columns)
        self._pending_rows += rows
        if self._pending_rows >= self.flush_rows:
            self.flush()

    def flush(self) -> None:
        import polars as pl
        import pyarrow.parquet as pq

        if not self._pending and self._writer is not None:
            return
        cols = {k: np.concatenate([p[k] for p in self._pending]) if self._pending else np.zeros(0)
                for k in self.schema}
        table = pl.DataFrame(cols, schema=_polars_schema(self.schema)).to_arrow()
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = pq.ParquetWriter(self.path, table.schema)
        if table.num_rows:
            self._writer.write_table(table)
        self.rows_written += table.num_rows
        self._pending.clear()
        self._pending_rows = 0

    def close(self) -> None:
        self.flush()
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def frames_path_for(track_log: str | Path) -> Path:
    """The frame index beside a track log: ``cam.tracks.parquet`` -> ``cam.frames.parquet``."""
    path = Path(track_log)
    stem = path.name[: -len(".tracks.parquet")] if path.name.endswith(".tracks.parquet") else path.stem
    return path.with_name(f"{stem}.frames.parquet")


class ParquetTrackWriter:
    """Appends frames of tracks to one Parquet file, a row group every ``flush_rows`` rows, and every
    analysed frame (empty ones included) to the frame index beside it (:func:`frames_path_for`)."""

    def __init__(self, path: str | Path, *, flush_rows: int = 4096) -> None:
        self.path = Path(path)
        self.frames_path = frames_path_for(self.path)
        self._tracks = _ParquetAppender(self.path, TRACK_SCHEMA, flush_rows)
        self._frames = _ParquetAppender(self.frames_path, FRAME_SCHEMA, flush_rows)

    @property
    def rows_written(self) -> int:
        return self._tracks.rows_written

    def write(self, msg: TrackedFrame) -> None:
        f = msg.frame
        width, height = f.size
        self._frames.append({"camera_id": np.array([f.camera_id], dtype=object),
                             "seq": np.array([f.seq], np.int64), "timestamp": np.array([f.timestamp], np.float64),
                             "width": np.array([width], np.int32), "height": np.array([height], np.int32),
                             "tracks": np.array([len(msg.tracks)], np.int32)}, 1)
        if len(msg.tracks):
            self._tracks.append(tracks_to_columns(f.camera_id, f.seq, f.timestamp, msg.tracks), len(msg.tracks))

    def flush(self) -> None:
        self._tracks.flush()
        self._frames.flush()

    def close(self) -> None:
        self._tracks.close()
        self._frames.close()


def mot_lines(frame: np.ndarray, track_id: np.ndarray, x: np.ndarray, y: np.ndarray, w: np.ndarray,
              h: np.ndarray, score: np.ndarray) -> list[str]:
    """MOTChallenge text rows ``frame,id,x,y,w,h,score,-1,-1,-1\\n`` from equal-length columns
    (1-based frame numbers; box left/top/width/height in pixels)."""
    return [f"{f},{i},{a:.2f},{b:.2f},{c:.2f},{d:.2f},{s:.4f},-1,-1,-1\n"
            for f, i, a, b, c, d, s in zip(frame, track_id, x, y, w, h, score, strict=True)]


class MotTextWriter:
    """Writes MOTChallenge rows (``frame,id,x,y,w,h,score,-1,-1,-1``, 1-based frames) for one camera.

    Frames are numbered ``seq + 1``, so results line up with the source's own frame numbers even when the
    analysis rate skips frames. Tentative boxes are back-filled when their track is confirmed.
    """

    def __init__(self, path: str | Path, *, min_hits: int, backfill: bool = True) -> None:
        from analytics.tracking.backfill import Backfill

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] | None = self.path.open("w", encoding="ascii")
        self._backfill = Backfill(min_hits, enabled=backfill)
        self.rows_written = 0

    def write(self, msg: TrackedFrame) -> None:
        if self._file is None:
            raise ValueError(f"MOT writer for {self.path} is closed")
        rows = self._backfill.push(msg.frame.seq, msg.tracks)
        xywh = rows.tracks.xyxy.copy()
        xywh[:, 2:] -= xywh[:, :2]
        lines = mot_lines(rows.seq + 1, rows.tracks.track_id, *xywh.T, rows.tracks.confidence)
        self._file.writelines(lines)
        self.rows_written += len(lines)

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def read_track_log(path: str | Path):
    """Read a Parquet track log into a polars DataFrame (checks the schema's columns are present)."""
    import polars as pl

    df = pl.read_parquet(path)
    missing = [c for c in TRACK_SCHEMA if c not in df.columns]
    if missing:
        raise ValueError(f"{path} is not a track log: missing columns {missing}")
    return df
