"""Backfill: confirmed rows now, tentative rows released when their track confirms, at most min_hits-1 late."""

from __future__ import annotations

import numpy as np
import pytest

from analytics.config import TrackerConfig
from analytics.tracking.backfill import Backfill
from analytics.tracking.bytetrack import ByteTracker
from analytics.types import Detections, Tracks, TrackState

T, C, L = TrackState.TENTATIVE, TrackState.CONFIRMED, TrackState.LOST


def tracks(*rows: tuple[int, TrackState]) -> Tracks:
    """Tracks with the given (id, state) rows; x1 = 10 * id."""
    n = len(rows)
    ids = np.array([r[0] for r in rows], np.int64)
    xyxy = np.stack([10.0 * ids, np.zeros(n), 10.0 * ids + 5, np.full(n, 20.0)], axis=1) if n else np.zeros((0, 4))
    return Tracks(ids, xyxy, np.zeros(n), np.ones(n), np.zeros((n, 2)), np.zeros(n), [int(r[1]) for r in rows])


def emitted(bf: Backfill, seq: int, *rows: tuple[int, TrackState]) -> list[tuple[int, int]]:
    out = bf.push(seq, tracks(*rows))
    return list(zip(out.seq.tolist(), out.tracks.track_id.tolist(), strict=True))


def test_min_hits_two_releases_previous_frame() -> None:
    bf = Backfill(min_hits=2)
    assert emitted(bf, 10, (1, T)) == []
    assert emitted(bf, 11, (1, C)) == [(10, 1), (11, 1)]
    assert emitted(bf, 12, (1, C)) == [(12, 1)]


def test_min_hits_three_releases_two_frames_oldest_first() -> None:
    bf = Backfill(min_hits=3)
    assert emitted(bf, 1, (1, T), (2, C)) == [(1, 2)]
    assert emitted(bf, 2, (1, T), (2, C)) == [(2, 2)]
    assert emitted(bf, 3, (1, C), (2, L)) == [(1, 1), (2, 1), (3, 1)]


def test_never_later_than_min_hits_minus_one() -> None:
    """A row held longer than min_hits-1 pushes is dropped, even if its id confirms later."""
    bf = Backfill(min_hits=2)
    emitted(bf, 1, (1, T))
    emitted(bf, 2, (1, T))
    assert emitted(bf, 3, (1, C)) == [(2, 1), (3, 1)]


def test_frame_gaps_count_pushes_not_seq() -> None:
    bf = Backfill(min_hits=2)
    emitted(bf, 0, (4, T))
    assert emitted(bf, 5, (4, C)) == [(0, 4), (5, 4)]


def test_lost_and_dead_tentative_rows_are_not_emitted() -> None:
    bf = Backfill(min_hits=2)
    assert emitted(bf, 1, (1, T), (2, L)) == []
    assert emitted(bf, 2) == []
    assert emitted(bf, 3, (3, C)) == [(3, 3)]


def test_disabled_emits_confirmed_only() -> None:
    bf = Backfill.from_config(TrackerConfig(backfill=False))
    emitted(bf, 1, (1, T))
    assert emitted(bf, 2, (1, C)) == [(2, 1)]


def test_backfilled_rows_keep_their_own_boxes_and_state() -> None:
    bf = Backfill(min_hits=2)
    first = tracks((1, T))
    bf.push(1, first)
    out = bf.push(2, tracks((1, C)))
    np.testing.assert_array_equal(out.tracks.xyxy[0], first.xyxy[0])
    assert out.tracks.state.tolist() == [T, C]


@pytest.mark.parametrize("bad", [0, -1, 1.5])
def test_rejects_bad_min_hits(bad: float) -> None:
    with pytest.raises(ValueError, match="min_hits"):
        Backfill(bad)


def test_with_tracker_every_confirmed_track_starts_at_birth() -> None:
    cfg = TrackerConfig(min_hits=3)
    tracker, bf = ByteTracker(cfg), Backfill.from_config(cfg)
    seqs = []
    for i in range(6):
        d = Detections([[100 + 5 * i, 100, 140 + 5 * i, 200]], [0.9], [0])
        seqs += bf.push(i, tracker.update(d, i / 10)).seq.tolist()
    assert seqs == list(range(6))
