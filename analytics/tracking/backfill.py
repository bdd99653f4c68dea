"""Backfill: when a track is confirmed, also emit the boxes it had while tentative.

A tracker confirms a track only after ``min_hits`` matched frames, so without backfill the first
``min_hits - 1`` frames of every track are missing from the output. :class:`Backfill` keeps the tentative
rows of the last ``min_hits - 1`` frames and releases them when their track is confirmed, so output is at
most ``min_hits - 1`` frames late and otherwise online. Pure: no clock, no I/O, inputs never modified.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from analytics.config import TrackerConfig
from analytics.types import Tracks, TrackState


@dataclass(frozen=True)
class EmittedRows:
    """Rows to write for one pushed frame, ordered by frame.

    Attributes:
        seq: (N,) int64 frame sequence number of each row (earlier frames for backfilled rows).
        tracks: N track rows (backfilled rows keep their TENTATIVE state).
    """

    seq: np.ndarray
    tracks: Tracks

    def __len__(self) -> int:
        return len(self.seq)


def concat_tracks(parts: list[Tracks]) -> Tracks:
    """Concatenate track batches row-wise."""
    if not parts:
        return Tracks.empty()
    return Tracks(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(Tracks)))


class Backfill:
    """Turns each frame's :class:`~analytics.types.Tracks` into the rows an online writer emits.

    Args:
        min_hits: the tracker's confirmation count; tentative rows of the last ``min_hits - 1`` pushed
            frames are held back.
        enabled: with ``False`` only confirmed rows are emitted (nothing is held).

    Example:
        >>> bf = Backfill(min_hits=2)
        >>> rows = bf.push(7, tracks)  # confirmed rows of frame 7, plus frame 6 rows of tracks confirmed now
    """

    def __init__(self, min_hits: int, *, enabled: bool = True) -> None:
        if int(min_hits) != min_hits or min_hits < 1:
            raise ValueError(f"min_hits must be an integer >= 1, got {min_hits!r}")
        self.min_hits = int(min_hits)
        self.enabled = enabled
        self.reset()

    @classmethod
    def from_config(cls, cfg: TrackerConfig) -> Backfill:
        return cls(cfg.min_hits, enabled=cfg.backfill)

    def reset(self) -> None:
        self._pushes = 0
        self._held_seq = np.zeros(0, np.int64)
        self._held_push = np.zeros(0, np.int64)
        self._held = Tracks.empty()

    def push(self, seq: int, tracks: Tracks) -> EmittedRows:
        """Take frame ``seq``'s tracks; return this frame's confirmed rows plus the held tentative rows of
        tracks confirmed in this frame (those come first, oldest first)."""
        confirmed = tracks[tracks.state == TrackState.CONFIRMED]
        now = np.full(len(confirmed), seq, np.int64)
        if not self.enabled:
            return EmittedRows(now, confirmed)
        self._pushes += 1
        keep = self._held_push > self._pushes - self.min_hits  # the last min_hits-1 pushes, this one excluded
        release = keep & np.isin(self._held.track_id, confirmed.track_id)
        out_seq = np.concatenate([self._held_seq[release], now])
        out = concat_tracks([self._held[release], confirmed])
        keep &= ~release
        tentative = tracks.state == TrackState.TENTATIVE
        self._held_seq = np.concatenate([self._held_seq[keep], np.full(int(tentative.sum()), seq, np.int64)])
        self._held_push = np.concatenate([self._held_push[keep], np.full(int(tentative.sum()), self._pushes)])
        self._held = concat_tracks([self._held[keep], tracks[tentative]])
        order = np.argsort(out_seq, kind="stable")
        return EmittedRows(out_seq[order], out[order])
