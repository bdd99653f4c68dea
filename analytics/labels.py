"""Labelled event files: what a person saw happen in a clip, to score the events of the pipeline.

Format (YAML; times in seconds of the clip's media time, places in the camera config's ids or normalised
image coordinates)::

    camera: indoor-desk              # the camera id whose events these label (events of other cameras ignored)
    clip: street/one-by-one-person-detection.mp4   # informational: what was watched
    slack: 3.0                       # seconds of tolerance on every start and end (how precisely it was labelled)
    labels:
      - {kind: loitering, start: 8, end: 20, zone: table, note: "woman, grey cardigan"}
      - {kind: line_crossing, start: 12.5, end: 12.5, line: north, direction: positive}
      - {kind: gathering, start: 30, end: 75, region: [[0.2, 0.5], [0.6, 0.5], [0.6, 0.9], [0.2, 0.9]]}

A label matches an event (its final record, :func:`analytics.event_eval.final_events`) of the same kind when
their times overlap once each label end is widened by ``slack``, and, when the label names a place: the
event's zone (``zone``) or line (``line``) is that one, its crossing ``direction`` is that one, or its
``centroid_norm`` evidence (gatherings) lies inside ``region``. Labels and events are paired one to one,
the largest time overlap first. Precision = matched events / events, recall = matched labels / labels
(:class:`~analytics.event_eval.MatchCounts`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from analytics.event_eval import MatchCounts, final_events
from analytics.geometry import points_in_polygon
from analytics.rules.base import Event
from analytics.yamlio import load_model


#: A line crossing's ``evidence["direction"]``: +1 to the right of the line's a -> b, -1 to the left.
_DIRECTIONS = {"positive": 1, "negative": -1}


class LabelsError(ValueError):
    """A labelled event file that cannot be used (the message names the file and the key)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EventLabel(_Strict):
    """One labelled event."""

    kind: str = Field(min_length=1, description="event kind, as the rules name it (gathering, loitering...)")
    start: float = Field(ge=0.0, description="seconds, media time")
    end: float = Field(ge=0.0, description="seconds, media time, >= start")
    zone: str | None = Field(None, description="the zone id the event must name")
    line: str | None = Field(None, description="the line id the event must name")
    direction: Literal["positive", "negative"] | None = Field(None, description="line crossings: the side")
    region: tuple[tuple[float, float], ...] | None = Field(None, description="normalised polygon the event's "
                                                            "centroid_norm must lie in (gatherings)")
    note: str = ""

    @model_validator(mode="after")
    def _check(self) -> EventLabel:
        if self.end < self.start:
            raise ValueError(f"end ({self.end}) is before start ({self.start})")
        if self.region is not None and (len(self.region) < 3 or not all(0 <= v <= 1 for p in self.region
                                                                          for v in p)):
            raise ValueError("region needs at least 3 points with coordinates in [0, 1]")
        return self


class EventLabels(_Strict):
    """A labelled event file (see the module docstring)."""

    camera: str | None = Field(None, description="camera id of the labelled events; null: any camera")
    clip: str | None = Field(None, description="what was watched (informational)")
    slack: float = Field(2.0, ge=0.0, le=60.0, description="seconds of tolerance on label times")
    labels: tuple[EventLabel, ...] = ()

    @field_validator("labels")
    @classmethod
    def _sorted(cls, value: tuple[EventLabel, ...]) -> tuple[EventLabel, ...]:
        return tuple(sorted(value, key=lambda label: (label.start, label.end, label.kind)))


def load_labels(path: str | Path) -> EventLabels:
    """Read and validate a labelled event file; :class:`LabelsError` names the file and the key path."""
    return load_model(path, EventLabels, what="labelled events", error=LabelsError, plural=True)


@dataclass(frozen=True)
class LabelMatch(MatchCounts):
    """Counts and scores, with the pairing: (event id, label index) per match, and what was left over."""

    pairs: list[tuple[str, int]] = field(default_factory=list)
    unmatched_events: list[str] = field(default_factory=list)
    unmatched_labels: list[int] = field(default_factory=list)
    by_kind: dict[str, MatchCounts] = field(default_factory=dict)


def _place_fits(event: Event, label: EventLabel) -> bool:
    if label.zone is not None and event.zone_id != label.zone:
        return False
    if label.line is not None and event.line_id != label.line:
        return False
    if label.direction is not None and event.evidence.get("direction") != _DIRECTIONS[label.direction]:
        return False
    if label.region is not None:
        point = event.evidence.get("centroid_norm")
        if not (isinstance(point, list | tuple) and len(point) == 2):
            return False
        inside = points_in_polygon(np.asarray([point], float), np.asarray(label.region, float))
        return bool(inside[0])
    return True


def _overlap(event: Event, label: EventLabel, slack: float) -> float:
    """Seconds of overlap of the event with the label widened by ``slack`` (negative: apart)."""
    return min(event.end, label.end + slack) - max(event.start, label.start - slack)


def match_labels(events: Sequence[Event], labels: EventLabels) -> LabelMatch:
    """Pair the events (records of any life-cycle status) with the labels one to one (module docstring)."""
    finals = [e for e in final_events(events) if labels.camera is None or e.camera_id == labels.camera]
    candidates = sorted(((_overlap(e, lab, labels.slack), i, j) for i, e in enumerate(finals)
                         for j, lab in enumerate(labels.labels)
                         if e.kind == lab.kind and _overlap(e, lab, labels.slack) >= 0 and _place_fits(e, lab)),
                        key=lambda c: (-c[0], c[1], c[2]))
    used_e, used_l, pairs = set(), set(), []
    for _overlap_s, i, j in candidates:
        if i not in used_e and j not in used_l:
            used_e.add(i)
            used_l.add(j)
            pairs.append((i, j))
    kinds = sorted({e.kind for e in finals} | {lab.kind for lab in labels.labels})
    by_kind = {}
    for kind in kinds:
        tp = sum(1 for i, _j in pairs if finals[i].kind == kind)
        by_kind[kind] = MatchCounts(tp=tp, fp=sum(1 for e in finals if e.kind == kind) - tp,
                                    fn=sum(1 for lab in labels.labels if lab.kind == kind) - tp)
    pairs.sort()
    return LabelMatch(tp=len(pairs), fp=len(finals) - len(pairs), fn=len(labels.labels) - len(pairs),
                      pairs=[(finals[i].id, j) for i, j in pairs],
                      unmatched_events=[e.id for i, e in enumerate(finals) if i not in used_e],
                      unmatched_labels=[j for j in range(len(labels.labels)) if j not in used_l],
                      by_kind=by_kind)
