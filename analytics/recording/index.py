"""The recordings' index, requisitions with their legal holds, and police relay grants, in the alert store's
database (tables of schema version 4, :mod:`analytics.alerts.store_schema`).

Times: ``start`` / ``end`` of a segment are media time (the frames' time base: Unix time for live cameras),
``wall_start`` / ``wall_end`` Unix seconds when it was recorded; requisitions and grants are in Unix seconds
and select segments by wall time. A segment is held while any requisition naming it is not released; the
retention purge never deletes a held segment. Every change is audited in the same transaction.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from analytics.alerts.store import AlertStore
from analytics.alerts.store_schema import recordings, relay_grants, requisition_holds, requisitions, users

REFERENCE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_./-]{0,63}$")


@dataclass(frozen=True)
class Segment:
    id: int
    camera_id: str
    start: float
    end: float
    wall_start: float
    wall_end: float
    frames: int
    bytes: int
    path: str
    held: bool = False


@dataclass(frozen=True)
class Requisition:
    id: str
    authority: str
    officer: str
    reason: str
    cameras: tuple[str, ...]
    start: float
    end: float
    created_by: str
    created_at: float
    released_by: str | None = None
    released_at: float | None = None

    @property
    def open(self) -> bool:
        return self.released_at is None


@dataclass(frozen=True)
class Grant:
    id: int
    username: str
    cameras: tuple[str, ...]
    start: float
    end: float
    recorded: bool
    granted_by: str
    granted_at: float
    revoked_by: str | None = None
    revoked_at: float | None = None

    def allows(self, camera_id: str, now: float, *, recorded: bool = False) -> bool:
        """Whether this grant lets its holder see ``camera_id`` at ``now`` (recorded video only if granted)."""
        return (self.revoked_at is None and self.start <= now < self.end and camera_id in self.cameras
                and (self.recorded or not recorded))


def _held() -> sa.ColumnElement[bool]:
    """SQL: the segment is named by a requisition that is not released."""
    return sa.exists(sa.select(requisition_holds.c.recording_id)
                     .join(requisitions, requisitions.c.id == requisition_holds.c.requisition_id)
                     .where(requisition_holds.c.recording_id == recordings.c.id,
                            requisitions.c.released_at.is_(None)))


def _segment(row: sa.Row) -> Segment:
    return Segment(row.id, row.camera_id, row.start, row.end, row.wall_start, row.wall_end, row.frames,
                   row.bytes, row.path, bool(row.held))


def _requisition(row: sa.Row) -> Requisition:
    return Requisition(row.id, row.authority, row.officer, row.reason, tuple(json.loads(row.cameras)), row.start,
                       row.end, row.created_by, row.created_at, row.released_by, row.released_at)


def _grant(row: sa.Row) -> Grant:
    return Grant(row.id, row.username, tuple(json.loads(row.cameras)), row.start, row.end, bool(row.recorded),
                 row.granted_by, row.granted_at, row.revoked_by, row.revoked_at)


class RecordingIndex:
    """Segments, requisitions and grants over an open :class:`~analytics.alerts.store.AlertStore`."""

    def __init__(self, store: AlertStore) -> None:
        self.store = store

    # -- segments ------------------------------------------------------------------------------------------------

    def add_segment(self, camera_id: str, *, start: float, end: float, wall_start: float, wall_end: float,
                    frames: int, size: int, path: str | Path, at: float) -> int:
        """Index a finished segment file; returns its id. A segment recorded inside an open requisition's time
        range for its camera is held at once."""
        with self.store.writing() as conn:
            result = conn.execute(sa.insert(recordings).values(
                camera_id=camera_id, start=start, end=end, wall_start=wall_start, wall_end=wall_end,
                frames=frames, bytes=size, path=str(path), created_at=at).returning(recordings.c.id))
            segment_id = int(result.scalar_one())
            for req in conn.execute(sa.select(requisitions).where(requisitions.c.released_at.is_(None),
                                                                  requisitions.c.start < wall_end,
                                                                  requisitions.c.end > wall_start)):
                if camera_id in json.loads(req.cameras):
                    conn.execute(sa.insert(requisition_holds).values(requisition_id=req.id, recording_id=segment_id))
        return segment_id

    def segments(self, *, camera_id: str | None = None, since: float | None = None, until: float | None = None,
                 ids: Iterable[int] | None = None) -> list[Segment]:
        """Segments overlapping ``[since, until)`` in wall time, by camera then time."""
        query = sa.select(recordings, _held().label("held")).order_by(recordings.c.camera_id,
                                                                       recordings.c.wall_start)
        if camera_id is not None:
            query = query.where(recordings.c.camera_id == camera_id)
        if since is not None:
            query = query.where(recordings.c.wall_end > since)
        if until is not None:
            query = query.where(recordings.c.wall_start < until)
        if ids is not None:
            query = query.where(recordings.c.id.in_(list(ids)))
        with self.store.reading() as conn:
            return [_segment(r) for r in conn.execute(query)]

    def segment(self, segment_id: int) -> Segment | None:
        found = self.segments(ids=[segment_id])
        return found[0] if found else None

    def purgeable(self, *, before: float | None = None, limit: int | None = None) -> list[Segment]:
        """Unheld segments, oldest first; with ``before``: only those whose wall end is before it."""
        query = (sa.select(recordings, sa.false().label("held")).where(~_held())
                 .order_by(recordings.c.wall_end, recordings.c.id))
        if before is not None:
            query = query.where(recordings.c.wall_end < before)
        if limit is not None:
            query = query.limit(limit)
        with self.store.reading() as conn:
            return [_segment(r) for r in conn.execute(query)]

    def remove_segments(self, segment_ids: Iterable[int], *, user: str, reason: str, at: float) -> int:
        """Drop segments from the index (the caller deletes the files first); held ones are refused (kept).
        Audited. Returns how many rows went."""
        ids = list(segment_ids)
        if not ids:
            return 0
        with self.store.writing() as conn:
            # rows of released requisitions still name the segment (foreign key): drop them for unheld segments
            unheld = sa.select(recordings.c.id).where(recordings.c.id.in_(ids), ~_held())
            conn.execute(sa.delete(requisition_holds).where(requisition_holds.c.recording_id.in_(unheld)))
            gone = conn.execute(sa.delete(recordings).where(recordings.c.id.in_(ids), ~_held())).rowcount
            self.store.audit_in(conn, user, "recordings.purge", "recordings",
                                {"reason": reason, "count": gone, "ids": ids}, at=at)
        return int(gone)

    # -- requisitions --------------------------------------------------------------------------------------------

    def create_requisition(self, reference: str, *, authority: str, officer: str, reason: str,
                           cameras: Iterable[str], start: float, end: float, user: str, at: float) -> Requisition:
        """Record a requisition and hold every segment of its cameras overlapping ``[start, end)``; audited.

        Raises:
            ValueError: a bad reference, empty fields or cameras, ``end <= start``, or a reference in use.
        """
        cams = tuple(sorted(set(cameras)))
        if not REFERENCE_RE.match(reference or ""):
            raise ValueError(f"invalid requisition reference {reference!r}: 1-64 letters, digits, '_', '.', '/', "
                             "'-', starting with a letter or digit")
        for name, value in (("authority", authority), ("officer", officer), ("reason", reason)):
            if not value or not value.strip():
                raise ValueError(f"a requisition needs its {name}")
        if not cams:
            raise ValueError("a requisition names at least one camera")
        if not end > start:
            raise ValueError(f"the requisition's end ({end}) must be after its start ({start})")
        with self.store.writing() as conn:
            if conn.execute(sa.select(requisitions.c.id).where(requisitions.c.id == reference)).first():
                raise ValueError(f"requisition {reference!r} already exists")
            conn.execute(sa.insert(requisitions).values(
                id=reference, authority=authority, officer=officer, reason=reason, cameras=json.dumps(list(cams)),
                start=start, end=end, created_by=user, created_at=at))
            held = conn.execute(sa.select(recordings.c.id).where(
                recordings.c.camera_id.in_(cams), recordings.c.wall_start < end, recordings.c.wall_end > start)
            ).scalars().all()
            for segment_id in held:
                conn.execute(sa.insert(requisition_holds).values(requisition_id=reference, recording_id=segment_id))
            self.store.audit_in(conn, user, "requisition.create", reference, {
                "authority": authority, "officer": officer, "reason": reason, "cameras": list(cams),
                "start": start, "end": end, "held_segments": len(held)}, at=at)
        return self.requisition(reference)

    def requisition(self, reference: str) -> Requisition | None:
        with self.store.reading() as conn:
            row = conn.execute(sa.select(requisitions).where(requisitions.c.id == reference)).first()
        return None if row is None else _requisition(row)

    def requisitions(self) -> list[Requisition]:
        with self.store.reading() as conn:
            return [_requisition(r) for r in conn.execute(sa.select(requisitions)
                                                          .order_by(requisitions.c.created_at.desc()))]

    def requisition_segments(self, reference: str) -> list[Segment]:
        with self.store.reading() as conn:
            ids = conn.execute(sa.select(requisition_holds.c.recording_id)
                               .where(requisition_holds.c.requisition_id == reference)).scalars().all()
        return self.segments(ids=ids)

    def release(self, reference: str, *, user: str, at: float) -> Requisition:
        """Release a requisition's legal hold (its segments fall back under retention); audited.

        Raises:
            KeyError: unknown requisition. ValueError: already released.
        """
        with self.store.writing() as conn:
            row = conn.execute(sa.select(requisitions).where(requisitions.c.id == reference)).first()
            if row is None:
                raise KeyError(f"no requisition {reference!r}")
            if row.released_at is not None:
                raise ValueError(f"requisition {reference!r} was already released by {row.released_by!r}")
            conn.execute(sa.update(requisitions).where(requisitions.c.id == reference)
                         .values(released_by=user, released_at=at))
            self.store.audit_in(conn, user, "requisition.release", reference, {}, at=at)
        return self.requisition(reference)

    # -- police relay grants -------------------------------------------------------------------------------------

    def grant(self, username: str, cameras: Iterable[str], *, start: float, end: float, recorded: bool, user: str,
              at: float) -> Grant:
        """Let a police account see ``cameras`` live (and recorded, if ``recorded``) during ``[start, end)``."""
        cams = tuple(sorted(set(cameras)))
        if not cams:
            raise ValueError("a grant names at least one camera")
        if not end > start:
            raise ValueError(f"the grant's end ({end}) must be after its start ({start})")
        with self.store.writing() as conn:
            role = conn.execute(sa.select(users.c.role).where(users.c.username == username)).scalar()
            if role != "police":
                raise ValueError(f"relay grants go to police accounts; {username!r} "
                                 f"{'is not a user' if role is None else 'has the role ' + role}")
            result = conn.execute(sa.insert(relay_grants).values(
                username=username, cameras=json.dumps(list(cams)), start=start, end=end, recorded=bool(recorded),
                granted_by=user, granted_at=at).returning(relay_grants.c.id))
            grant_id = int(result.scalar_one())
            self.store.audit_in(conn, user, "relay.grant", username, {
                "grant": grant_id, "cameras": list(cams), "start": start, "end": end, "recorded": bool(recorded)},
                at=at)
        return next(g for g in self.grants(username=username) if g.id == grant_id)

    def revoke(self, grant_id: int, *, user: str, at: float) -> Grant:
        with self.store.writing() as conn:
            row = conn.execute(sa.select(relay_grants).where(relay_grants.c.id == grant_id)).first()
            if row is None:
                raise KeyError(f"no grant {grant_id}")
            conn.execute(sa.update(relay_grants).where(relay_grants.c.id == grant_id)
                         .values(revoked_by=user, revoked_at=at))
            self.store.audit_in(conn, user, "relay.revoke", row.username, {"grant": grant_id}, at=at)
        return next(g for g in self.grants() if g.id == grant_id)

    def grants(self, *, username: str | None = None) -> list[Grant]:
        query = sa.select(relay_grants).order_by(relay_grants.c.id)
        if username is not None:
            query = query.where(relay_grants.c.username == username)
        with self.store.reading() as conn:
            return [_grant(r) for r in conn.execute(query)]
