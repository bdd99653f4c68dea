"""The rule contract: typed events and the pure ``step`` every rule implements.

A rule is pure: ``step(tracks, state, now, *, context) -> (state, events)``. It reads no clock, does no
I/O and does not mutate its inputs, so a recorded track log replays to exactly the same events. Event ids
are deterministic (``"{camera}:{rule}:{counter}"``), with the counter carried in the rule's state.

A replay knows every frame in advance; a rule may add what lets it go faster there, each held to giving
exactly the events of ``step`` on every frame: :class:`Replays` (the whole log at once), :class:`Sleeps`
(which frames can change it) and :class:`Selects` (which tracks can make its events).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, NamedTuple, Protocol, TypeVar, runtime_checkable

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from analytics.geometry import SceneGeometry
from analytics.rules.view import FrameView, LogFrames
from analytics.types import Tracks, check_class_names

EventStatus = Literal["open", "updated", "closed"]
_STATUSES = ("open", "updated", "closed")


def event_id(camera_id: str, rule_id: str, counter: int) -> str:
    """Deterministic event id: ``"{camera_id}:{rule_id}:{counter}"`` (counter from the rule's state)."""
    return f"{camera_id}:{rule_id}:{counter}"


@dataclass(frozen=True)
class Event:
    """One event (or one update of a lasting event) emitted by a rule.

    Attributes:
        id: deterministic id, stable across the open / updated / closed records of one event.
        kind: what happened (``"line_crossing"``, ``"gathering"``...).
        rule_id: id of the rule config that produced it.
        camera_id: the camera's id.
        status: ``"open"``, ``"updated"`` or ``"closed"``; an instantaneous event is emitted ``"closed"``.
        start: seconds, the time base of the frames (media time for files, Unix time for live).
        end: seconds, >= start; the latest time seen while the event is open.
        member_ids: track ids involved, ascending.
        classes: class names of the members, aligned with ``member_ids``.
        score: confidence / severity in [0, 1].
        evidence: JSON-serialisable facts (group size, duration, direction, counts...).
        best_frame_seq: ``Frame.seq`` of the frame that best shows the event, or None.
        zone_id: the zone concerned, if any.
        line_id: the line concerned, if any.
    """

    id: str
    kind: str
    rule_id: str
    camera_id: str
    status: EventStatus
    start: float
    end: float
    member_ids: tuple[int, ...] = ()
    classes: tuple[str, ...] = ()
    score: float = 1.0
    evidence: dict[str, Any] = field(default_factory=dict)
    best_frame_seq: int | None = None
    zone_id: str | None = None
    line_id: str | None = None

    def __post_init__(self) -> None:
        if self.status not in _STATUSES:
            raise ValueError(f"event status must be one of {_STATUSES}, got {self.status!r}")
        if not 0.0 <= self.score <= 1.0:
            raise ValueError(f"event score must be in [0, 1], got {self.score}")
        if self.end < self.start:
            raise ValueError(f"event end {self.end} is before its start {self.start}")
        if len(self.classes) not in (0, len(self.member_ids)):
            raise ValueError(f"{len(self.classes)} classes for {len(self.member_ids)} members")


class RuleContext(NamedTuple):
    """What a rule may know about the frame besides its tracks (immutable; a named tuple because the
    engine builds one per frame and a frozen dataclass costs several times more to build).

    Attributes:
        camera_id: the camera's id.
        frame_size: (width, height) of the decoded frame, pixels.
        seq: ``Frame.seq`` of the current frame.
        geometry: the camera's zones, lines and calibration.
        view: the frame's shared, cached measurements (set by the engine; see :func:`frame_view`).
    """

    camera_id: str
    frame_size: tuple[int, int]
    seq: int
    geometry: SceneGeometry
    view: FrameView | None = None


def frame_view(tracks: Tracks, context: RuleContext) -> FrameView:
    """The cached measurements of ``tracks``: the engine's shared view when it is of these tracks, else a
    fresh one (a rule stepped on its own, in a unit test)."""
    view = context.view
    if view is not None and view.tracks is tracks:
        return view
    return FrameView(tracks, context.frame_size, context.geometry)


class RuleConfigBase(BaseModel):
    """Fields and geometry checks common to every rule config; each rule adds its own ``kind`` literal.

    Subclasses name the geometry they need in ``zone_fields`` / ``line_fields`` (fields holding a zone or
    line id) and may override :meth:`check_geometry` for more (an allowed direction, a calibration). The
    camera config calls :meth:`check_geometry` at load time, so a rule naming a missing zone fails there.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    zone_fields: ClassVar[tuple[str, ...]] = ()
    line_fields: ClassVar[tuple[str, ...]] = ()

    id: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="rule id, unique within the camera; part "
                    "of event ids")
    severity: float = Field(0.5, ge=0.0, le=1.0, description="how serious this rule's events are for the "
                            "alert ranking (0 informative, 1 critical); range 0.2-1")

    @field_validator("classes", check_fields=False)
    @classmethod
    def _known_classes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        """Every rule with a ``classes`` field: known class names, at least one."""
        return check_class_names(value)

    def check_geometry(self, geometry: SceneGeometry) -> None:
        """Raise ValueError naming the missing zone or line (or other unmet need) of this rule."""
        for name in self.zone_fields:
            zone_id = getattr(self, name)
            if zone_id is not None and zone_id not in {z.id for z in geometry.zones}:
                raise ValueError(f"rule {self.id!r}: {name} {zone_id!r} is not a zone of this camera "
                                 f"(zones: {[z.id for z in geometry.zones]})")
        for name in self.line_fields:
            line_id = getattr(self, name)
            if line_id is not None and line_id not in {ln.id for ln in geometry.lines}:
                raise ValueError(f"rule {self.id!r}: {name} {line_id!r} is not a line of this camera "
                                 f"(lines: {[ln.id for ln in geometry.lines]})")


S = TypeVar("S")


class Rule(Protocol[S]):
    """A pure rule over per-frame tracks. ``S`` is the rule's own immutable state type."""

    @property
    def id(self) -> str:
        """The rule config's id (part of every event id)."""
        ...

    def initial_state(self) -> S:
        """The state before the first frame."""
        ...

    def step(self, tracks: Tracks, state: S, now: float, *, context: RuleContext) -> tuple[S, list[Event]]:
        """Advance by one frame.

        Args:
            tracks: this frame's tracks (not mutated).
            state: the state returned by the previous call, or :meth:`initial_state` (not mutated).
            now: the frame's timestamp, seconds; never the wall clock.
            context: camera id, frame size, frame seq and scene geometry.

        Returns:
            The new state and the events of this frame, in a deterministic order.
        """
        ...

    def close(self, state: S, now: float, *, context: RuleContext) -> list[Event]:
        """End of stream: ``"closed"`` records for every event still open at ``now`` (none if nothing is)."""
        ...


@runtime_checkable
class Sleeps(Protocol[S]):
    """What a rule may add so that a replay steps it only on the frames that matter (optional).

    A replay (:meth:`analytics.rules.engine.RuleEngine.replay`) knows every frame of the log in advance. A
    rule with these two methods is stepped on the frames :meth:`wakes` flags, on every frame from
    :meth:`asleep_until` on, on the last frame, and on no other. The rule promises that skipping the other
    frames gives the same events and, at each frame it is stepped on, the same state: a step on them would
    leave the state as it is (no rows of interest, no timer running out), or would only change what the next
    stepped frame overwrites anyway (a remembered "last frame"). Tests replay every rule both ways.
    """

    def wakes(self, frames: LogFrames) -> np.ndarray:
        """(F,) bool: the frames of the log that may change the rule's state however it stands."""
        ...

    def asleep_until(self, state: S) -> float:
        """The time from which frames the rule did not flag may change ``state`` (a timer running out, an
        event closing): ``inf`` when they never do, ``-inf`` when every frame must be stepped. The replay
        wakes the rule a hair earlier (:func:`~analytics.rules.view.wake_margin`)."""
        ...


@runtime_checkable
class Selects(Protocol):
    """What a rule stepped frame by frame may add so that a replay gives it only the rows that matter
    (optional): the rows of the tracks that could ever make an event, found on the whole log at once.

    The rule promises that stepping it on every frame with only these rows (the other rows removed from
    each frame, frames kept) gives the same events as with all rows; tests replay every rule both ways.
    """

    def rows(self, frames: LogFrames) -> np.ndarray:
        """(R,) bool: the rows the rule's events may depend on."""
        ...


@runtime_checkable
class Replays(Protocol):
    """What a rule may add to take a whole stored log at once in a replay (optional): much faster than a
    step per frame, since the per-row work is done on columns and the rest on plain Python values.

    It must give exactly the events that stepping the rule on every frame and closing it at the end gives;
    tests replay every rule both ways on random and real logs.
    """

    def replay(self, frames: LogFrames, camera_id: str) -> list[tuple[int, Event]] | None:
        """The rule's events over the log, each with the index of the frame whose step gives it
        (``len(frames)`` for those of :meth:`Rule.close` at the end), in step order; or None when this log
        is outside what the method handles exactly (the replay then steps the rule frame by frame)."""
        ...
