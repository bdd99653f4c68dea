"""Track-log writers: Parquet schema and row groups, MOTChallenge rows with backfill."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from analytics.tracklog import TRACK_SCHEMA, MotTextWriter, ParquetTrackWriter, read_track_log
from analytics.types import Frame, TrackedFrame, Tracks, TrackState

IMAGE = np.zeros((10, 10, 3), np.uint8)


def tracks(ids: list[int], states: list[int], x: float = 10.0) -> Tracks:
    n = len(ids)
    xyxy = np.array([[x + 30 * i, 20, x + 30 * i + 10, 60] for i in range(n)], np.float32).reshape(-1, 4)
    return Tracks(ids, xyxy, [0] * n, [0.8] * n, np.full((n, 2), [1.5, -2.0]), [3] * n, states)


def msg(seq: int, t: Tracks, camera: str = "cam") -> TrackedFrame:
    return TrackedFrame(Frame(camera, seq, seq / 10, IMAGE), t)


def test_parquet_has_the_documented_schema_and_values(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    writer = ParquetTrackWriter(path, flush_rows=3)
    for seq in range(5):
        writer.write(msg(seq, tracks([1, 2], [TrackState.CONFIRMED, TrackState.LOST], x=float(seq))))
    writer.close()
    df = read_track_log(path)
    assert list(df.columns) == list(TRACK_SCHEMA)
    assert {c: str(t) for c, t in df.schema.items()} == {c: d for c, (d, _) in TRACK_SCHEMA.items()}
    assert df.height == 10 and writer.rows_written == 10
    first = df.row(0, named=True)
    assert first["class_name"] == "person" and first["timestamp"] == 0.0
    assert first["anchor_x"] == pytest.approx(5.0) and first["anchor_y"] == pytest.approx(60.0)
    assert first["vx"] == pytest.approx(1.5) and first["state"] == TrackState.CONFIRMED
    import pyarrow.parquet as pq

    assert pq.ParquetFile(path).num_row_groups >= 3  # flushed every 3 rows (whole frames), not at the end


def test_parquet_of_a_run_without_tracks_is_readable(tmp_path: Path) -> None:
    path = tmp_path / "empty.parquet"
    writer = ParquetTrackWriter(path)
    writer.write(msg(0, Tracks.empty()))
    writer.close()
    assert read_track_log(path).height == 0


def test_read_track_log_rejects_other_parquet(tmp_path: Path) -> None:
    path = tmp_path / "other.parquet"
    pl.DataFrame({"a": [1]}).write_parquet(path)
    with pytest.raises(ValueError, match="not a track log: missing columns"):
        read_track_log(path)


def test_mot_rows_are_one_based_and_backfilled(tmp_path: Path) -> None:
    path = tmp_path / "r.txt"
    writer = MotTextWriter(path, min_hits=2, backfill=True)
    writer.write(msg(0, tracks([1], [TrackState.TENTATIVE])))
    writer.write(msg(1, tracks([1], [TrackState.CONFIRMED], x=12.0)))
    writer.write(msg(2, tracks([1], [TrackState.LOST])))  # lost: predicted, not written
    writer.close()
    rows = [line.split(",") for line in path.read_text().splitlines()]
    assert [(r[0], r[1]) for r in rows] == [("1", "1"), ("2", "1")]
    assert rows[1][2:6] == ["12.00", "20.00", "10.00", "40.00"] and rows[1][7:] == ["-1", "-1", "-1"]


def test_mot_without_backfill_drops_tentative_rows(tmp_path: Path) -> None:
    path = tmp_path / "r.txt"
    writer = MotTextWriter(path, min_hits=2, backfill=False)
    writer.write(msg(0, tracks([1], [TrackState.TENTATIVE])))
    writer.write(msg(1, tracks([1], [TrackState.CONFIRMED])))
    writer.close()
    assert [line.split(",")[0] for line in path.read_text().splitlines()] == ["2"]
    with pytest.raises(ValueError, match="closed"):
        writer.write(msg(2, tracks([1], [TrackState.CONFIRMED])))
