"""MOTChallenge text I/O and tracking scores (HOTA via TrackEval; MOTA and IDF1 via TrackEval CLEAR/Identity).

MOTChallenge rows are ``frame, id, x, y, w, h, conf, c8, c9, c10``: 1-based frame number, object id, box
top-left corner and size in pixels, then a score or flag. The meaning of the last three columns depends on
the file: MOT15 ground truth holds world x, y, z; MOT16/17 ground truth holds class (1 = pedestrian),
visibility (and nothing in c10); tracker results hold -1. Files may have 6 to 10 columns; missing ones
read as -1.

Scoring follows TrackEval's MOTChallenge preprocessing, simplified: ground-truth rows flagged 0 in the 7th
column are dropped (``drop_zero_flag``), ground truth may be restricted to ``classes`` (column c8), and
similarity is box IoU. Distractor-class removal (MOT16/17 only) is not done. TrackEval's metric classes
are called directly on per-frame arrays; its folder layout is not needed.

``trackeval`` is an optional dependency (``analytics[eval]``); it is imported only when scoring.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from analytics.tracklog import mot_lines
from analytics.tracking.matching import iou_matrix
from analytics.types import Tracks

MOT_COLUMNS = ("frame", "id", "x", "y", "w", "h", "conf", "c8", "c9", "c10")
_SCHEMA = {"frame": pl.Int64, "id": pl.Int64, **{c: pl.Float64 for c in MOT_COLUMNS[2:]}}


def read_mot(path: str | Path) -> pl.DataFrame:
    """Read a MOTChallenge text file (comma-separated, 6 to 10 columns, no header).

    Returns:
        DataFrame with columns :data:`MOT_COLUMNS` (frame, id: Int64; the rest Float64; pixels),
        in file order.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file is not MOTChallenge text (the message names the line).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"MOT file not found: {path}")
    rows = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.replace(" ", "").rstrip(",").split(",")
        if not 6 <= len(parts) <= 10:
            raise ValueError(f"{path}:{lineno}: expected 6-10 comma-separated values, got {len(parts)}")
        try:
            values = [float(p) for p in parts]
        except ValueError:
            raise ValueError(f"{path}:{lineno}: non-numeric value in {line!r}") from None
        rows.append(values + [-1.0] * (10 - len(values)))
    arr = np.asarray(rows, dtype=np.float64).reshape(-1, 10)
    data = {c: arr[:, i] for i, c in enumerate(MOT_COLUMNS)}
    data["frame"], data["id"] = arr[:, 0].astype(np.int64), arr[:, 1].astype(np.int64)
    return pl.DataFrame(data, schema=_SCHEMA)


def tracks_to_mot(frame: np.ndarray | int, tracks: Tracks) -> pl.DataFrame:
    """MOT rows for track boxes: ``frame`` is the 1-based frame number (scalar or (N,) per row)."""
    wh = tracks.xyxy[:, 2:] - tracks.xyxy[:, :2]
    n = len(tracks)
    minus = np.full(n, -1.0)
    data = {"frame": np.broadcast_to(np.asarray(frame, np.int64), (n,)), "id": tracks.track_id,
            "x": tracks.xyxy[:, 0].astype(np.float64), "y": tracks.xyxy[:, 1].astype(np.float64),
            "w": wh[:, 0].astype(np.float64), "h": wh[:, 1].astype(np.float64),
            "conf": tracks.confidence.astype(np.float64), "c8": minus, "c9": minus, "c10": minus}
    return pl.DataFrame(data, schema=_SCHEMA)


def write_mot(rows: pl.DataFrame, path: str | Path) -> None:
    """Write MOT rows (columns :data:`MOT_COLUMNS`), sorted by frame then id (format: ``tracklog.mot_lines``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = rows.sort(["frame", "id"]).select(MOT_COLUMNS[:7])
    path.write_text("".join(mot_lines(*(rows[c].to_numpy() for c in rows.columns))), encoding="utf-8")


def evaluate_mot(result_path: str | Path, gt_path: str | Path, *, drop_zero_flag: bool = True,
                 classes: tuple[int, ...] | None = None) -> dict[str, float]:
    """Score a MOTChallenge result file against ground truth; see :func:`evaluate_frames`."""
    return evaluate_frames(read_mot(result_path), read_mot(gt_path), drop_zero_flag=drop_zero_flag,
                           classes=classes)


def evaluate_frames(result: pl.DataFrame, gt: pl.DataFrame, *, drop_zero_flag: bool = True,
                    classes: tuple[int, ...] | None = None) -> dict[str, float]:
    """Score result rows against ground-truth rows (both with :data:`MOT_COLUMNS`).

    Args:
        result: tracker rows; every (frame, id) pair must be unique.
        gt: ground-truth rows.
        drop_zero_flag: ignore ground-truth rows whose 7th column (``conf``) is 0.
        classes: keep only ground-truth rows whose class column (c8, MOT16/17) is in this tuple.

    Returns:
        ``HOTA``, ``DetA``, ``AssA``, ``LocA`` (TrackEval HOTA averaged over IoU thresholds 0.05-0.95),
        ``MOTA``, ``MOTP``, ``IDSW``, ``FP``, ``FN``, ``TP``, ``Frag``, ``MT``, ``PT``, ``ML`` (CLEAR at IoU
        0.5), ``IDF1``, ``IDP``, ``IDR`` (Identity at IoU 0.5), and counts ``gt_dets``, ``result_dets``,
        ``gt_ids``, ``result_ids``, ``frames``. All plain Python floats.
    """
    if drop_zero_flag:
        gt = gt.filter(pl.col("conf") != 0)
    if classes is not None:
        gt = gt.filter(pl.col("c8").is_in([float(c) for c in classes]))
    dupes = result.group_by(["frame", "id"]).len().filter(pl.col("len") > 1)
    if len(dupes):
        raise ValueError(f"result has repeated (frame, id) pairs, e.g. {dupes.row(0)[:2]}")
    data = _trackeval_data(result, gt)
    return _score(data)


def _per_frame(df: pl.DataFrame, frames: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray], int]:
    """Dense 0-based ids and (n, 4) xyxy boxes per frame, and the number of distinct ids."""
    df = df.sort("frame")
    uniq, dense = np.unique(df["id"].to_numpy(), return_inverse=True)
    xywh = df.select(["x", "y", "w", "h"]).to_numpy()
    xyxy = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
    bounds = np.searchsorted(df["frame"].to_numpy(), np.append(frames, frames[-1] + 1) if len(frames) else [])
    ids = [dense[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    boxes = [xyxy[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    return ids, boxes, len(uniq)


def _trackeval_data(result: pl.DataFrame, gt: pl.DataFrame) -> dict:
    """The per-sequence dict TrackEval's metrics take."""
    all_frames = np.concatenate([gt["frame"].to_numpy(), result["frame"].to_numpy()])
    frames = np.arange(1, int(all_frames.max()) + 1) if len(all_frames) else np.zeros(0, np.int64)
    gt_ids, gt_boxes, n_gt = _per_frame(gt, frames)
    tr_ids, tr_boxes, n_tr = _per_frame(result, frames)
    return {
        "num_timesteps": len(frames), "num_gt_ids": n_gt, "num_tracker_ids": n_tr,
        "num_gt_dets": len(gt), "num_tracker_dets": len(result),
        "gt_ids": gt_ids, "tracker_ids": tr_ids,
        "similarity_scores": [iou_matrix(g, t) for g, t in zip(gt_boxes, tr_boxes, strict=True)],
    }


def _score(data: dict) -> dict[str, float]:
    from trackeval.metrics import CLEAR, HOTA, Identity

    quiet = {"PRINT_CONFIG": False}
    hota = HOTA(quiet).eval_sequence(data)
    clear = CLEAR(quiet).eval_sequence(data)
    ident = Identity(quiet).eval_sequence(data)
    out = {k: float(np.mean(hota[k])) for k in ("HOTA", "DetA", "AssA", "LocA")}
    out |= {"MOTA": clear["MOTA"], "MOTP": clear["MOTP"], "IDSW": clear["IDSW"], "FP": clear["CLR_FP"],
            "FN": clear["CLR_FN"], "TP": clear["CLR_TP"], "Frag": clear["Frag"], "MT": clear["MT"],
            "PT": clear["PT"], "ML": clear["ML"]}
    out |= {"IDF1": ident["IDF1"], "IDP": ident["IDP"], "IDR": ident["IDR"]}
    out |= {"gt_dets": data["num_gt_dets"], "result_dets": data["num_tracker_dets"],
            "gt_ids": data["num_gt_ids"], "result_ids": data["num_tracker_ids"], "frames": data["num_timesteps"]}
    return {k: float(v) for k, v in out.items()}


#: Default time window of the causal ground-truth velocity estimate, seconds (see :func:`mot_to_track_log`).
GT_VELOCITY_WINDOW = 0.5


def mot_to_track_log(mot: pl.DataFrame, *, camera_id: str, fps: float, frame_offset: int = 1,
                     velocity_window: float = GT_VELOCITY_WINDOW) -> pl.DataFrame:
    """Turn MOTChallenge ground truth into a track log, so the rules can be replayed on ground-truth tracks.

    Rows whose ``conf`` column is 0 (the MOT "ignore" flag) are dropped; every other row becomes one
    confirmed person track row. Columns (exactly :data:`analytics.tracklog.TRACK_SCHEMA`, same names, order
    and polars dtypes):

    * ``camera_id``: ``camera_id``; ``seq``: ``frame - frame_offset`` (0-based when frames are 1-based);
      ``timestamp``: ``seq / fps``, seconds of media time.
    * ``track_id``: the MOT ``id``; ``class_id`` 0, ``class_name`` ``"person"``; ``confidence`` 1.0;
      ``state`` 1 (confirmed).
    * ``x1, y1, x2, y2``: the box, pixels, top-left origin; ``anchor_x, anchor_y``: bottom centre of the box.
    * ``age``: frames since the id's first kept row (``seq - first seq``; 0 on its first row).
    * ``vx, vy``: anchor velocity, pixels per second, a causal estimate comparable to a tracker's smoothed
      velocity: the anchor displacement since the id's earliest row at most ``velocity_window`` seconds
      (``round(velocity_window * fps)`` frames, at least 1) back, divided by the time elapsed between the two
      rows; since the track's first row when it is younger; 0 on its first row. Frame gaps in the ground
      truth are handled, the elapsed time comes from the frame numbers.

    Rows are sorted by ``seq`` then ``track_id``. Vectorised: no Python loop over rows.

    Args:
        mot: ground-truth rows, columns :data:`MOT_COLUMNS` (as :func:`read_mot` returns them).
        camera_id: camera id written in every row.
        fps: frame rate of the sequence, frames per second (> 0).
        frame_offset: the number of the sequence's first frame (1 for MOTChallenge).
        velocity_window: seconds (> 0) of history behind each velocity estimate.

    Returns:
        The track log as a polars DataFrame (possibly empty, still with the schema).

    Raises:
        ValueError: non-positive ``fps`` or ``velocity_window``, missing columns, a frame before
            ``frame_offset``, or an ``(frame, id)`` pair repeated among the kept rows.
    """
    from analytics.tracklog import TRACK_SCHEMA

    if fps <= 0 or velocity_window <= 0:
        raise ValueError(f"fps and velocity_window must be > 0, got fps={fps}, velocity_window={velocity_window}")
    missing = [c for c in ("frame", "id", "x", "y", "w", "h", "conf") if c not in mot.columns]
    if missing:
        raise ValueError(f"MOT rows lack columns {missing}")
    df = mot.filter(pl.col("conf") != 0).sort(["id", "frame"])
    seq = df["frame"].cast(pl.Int64).to_numpy() - int(frame_offset)
    if len(seq) and seq.min() < 0:
        raise ValueError(f"frame {int(seq.min()) + frame_offset} is before frame_offset={frame_offset}")
    ids = df["id"].cast(pl.Int64).to_numpy()
    if len(ids) > 1 and np.any((np.diff(ids) == 0) & (np.diff(seq) == 0)):
        raise ValueError("ground truth repeats a (frame, id) pair among rows with conf != 0")
    x, y, w, h = (df[c].cast(pl.Float64).to_numpy() for c in ("x", "y", "w", "h"))
    anchor = np.stack([x + w / 2, y + h], axis=1)
    first, ref = _gt_history_rows(ids, seq, max(1, round(velocity_window * fps)))
    dt = (seq - seq[ref]) / fps
    vel = np.divide(anchor - anchor[ref], dt[:, None], out=np.zeros_like(anchor), where=dt[:, None] > 0)
    n = len(seq)
    cols = {
        "camera_id": [camera_id] * n, "seq": seq, "timestamp": seq / fps, "track_id": ids,
        "class_id": np.zeros(n, np.int16), "class_name": ["person"] * n, "confidence": np.ones(n, np.float32),
        "x1": x, "y1": y, "x2": x + w, "y2": y + h, "anchor_x": anchor[:, 0], "anchor_y": anchor[:, 1],
        "vx": vel[:, 0], "vy": vel[:, 1], "age": seq - seq[first], "state": np.ones(n, np.int8),
    }
    schema = {name: getattr(pl, dtype) for name, (dtype, _) in TRACK_SCHEMA.items()}
    return pl.DataFrame(cols, schema=schema, strict=False).sort(["seq", "track_id"])


def _gt_history_rows(ids: np.ndarray, seq: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """For rows sorted by (id, seq): the row index of each id's first row, and of the earliest row of the
    same id with ``seq >= seq_i - window``. Returns two (N,) int64 arrays."""
    n = len(ids)
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    group = np.cumsum(np.r_[True, ids[1:] != ids[:-1]]) - 1
    first = starts[group]
    # One increasing key over all rows: ids far enough apart that a window never reaches the previous id.
    span = int(seq.max() - seq.min()) + window + 1
    key = group.astype(np.int64) * span + (seq - seq.min())
    ref = np.maximum(np.searchsorted(key, key - window, side="left"), first)
    return first, ref
