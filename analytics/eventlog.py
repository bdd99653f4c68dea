"""Event logs: the events of a run as JSON lines (``<camera>.events.jsonl``), one record per line.

Each line is one life-cycle record of an event (``open``, ``updated``, ``closed``; instantaneous events such
as line crossings are written once, ``closed``) with the fields of :class:`analytics.rules.base.Event`.
Floats are written with Python's shortest round-trip repr, so reading a log back gives events equal to the
ones written (what the replay test compares).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

import numpy as np

from analytics.rules.base import Event


def _plain(value: Any) -> Any:
    """JSON fallback for numpy scalars and arrays that slipped into evidence."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"event evidence must be JSON-serialisable, got {type(value).__name__}: {value!r}")


def event_to_dict(event: Event) -> dict[str, Any]:
    """A JSON-ready dict of an event (tuples become lists)."""
    out = dataclasses.asdict(event)
    out["member_ids"] = list(event.member_ids)
    out["classes"] = list(event.classes)
    return out


def event_from_dict(data: dict[str, Any]) -> Event:
    """The event of a dict written by :func:`event_to_dict` (raises ValueError naming a bad field)."""
    try:
        return Event(**{**data, "member_ids": tuple(int(i) for i in data.get("member_ids", ())),
                        "classes": tuple(data.get("classes", ()))})
    except TypeError as err:
        raise ValueError(f"not an event record: {err}") from None


def event_json(event: Event) -> str:
    """One JSON line (no trailing newline), keys in field order."""
    return json.dumps(event_to_dict(event), default=_plain, separators=(",", ":"))


class EventLogWriter:
    """Appends events to a JSON-lines file; each write is flushed so a crash loses no written event."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] | None = self.path.open("w", encoding="utf-8")
        self.events_written = 0

    def write(self, events: Iterable[Event]) -> None:
        if self._file is None:
            raise ValueError(f"event log {self.path} is closed")
        lines = [event_json(e) + "\n" for e in events]
        if lines:
            self._file.writelines(lines)
            self._file.flush()
            self.events_written += len(lines)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def read_events(path: str | Path) -> list[Event]:
    """All records of an event log, in file order (ValueError naming the line of a bad record)."""
    path = Path(path)
    events = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            events.append(event_from_dict(json.loads(line)))
        except ValueError as err:
            raise ValueError(f"{path}:{lineno}: {err}") from None
    return events
