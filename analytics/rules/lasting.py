"""Life cycle of lasting events (open -> updated -> closed) with hysteresis, shared by the rules.

Each frame a rule says which *candidates* hold: a key (a track id, a group id, a zone index) with the time
its condition began to hold, its members, a score and evidence. :class:`Lifecycle` turns that into events:

* a candidate **opens** an event once it has held for ``min_duration`` seconds; the event starts when the
  condition began to hold (not when the rule became sure);
* while it holds, the event is **updated** when its members change, or at most every ``update_every``
  seconds to refresh the evidence (duration, size...), so one gathering is one event, not one per frame;
* it **closes** once the condition has not held for ``end_grace`` seconds (hysteresis on the end: a member
  hidden for a moment does not split the event), with ``end`` the last time it held; :meth:`close_all`
  closes what is still open at the end of a stream.

:func:`update_timers` is the matching hysteresis on the start: since when a per-key condition holds,
tolerating gaps (detector flicker) up to ``grace`` seconds.

Everything here is pure: states are immutable, ``now`` is the frame's timestamp.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from analytics.rules.base import Event, RuleContext, event_id

#: key -> (since, last_true): seconds, frame time.
Timers = Mapping[int, tuple[float, float]]


def update_timers(timers: Timers, true_keys: Iterable[int], now: float, *, grace: float) -> dict[int, tuple[float, float]]:
    """Advance per-key timers by one frame.

    Args:
        timers: the previous timers (not mutated).
        true_keys: keys whose condition holds at ``now``.
        now: frame time, seconds.
        grace: seconds a key may stop holding and still keep its ``since`` (flicker tolerance); 0 resets
            on the first frame it does not hold.

    Returns:
        New timers: holding keys with their ``since`` (kept while the key is in the timers) and
        ``last_true = now``; non-holding keys still within ``grace`` unchanged; the rest dropped. A key is
        only dropped on a frame where it does *not* hold, so a gap between frames (a low analysis rate, a
        stream reconnecting) never resets a condition that holds on both sides of it.
    """
    out: dict[int, tuple[float, float]] = {}
    for key in true_keys:
        prev = timers.get(key)
        out[key] = (prev[0] if prev is not None else now, now)  # kept below only while within grace
    for key, (since, last) in timers.items():
        if key not in out and now - last <= grace:
            out[key] = (since, last)
    return out


@dataclass(frozen=True)
class Candidate:
    """A condition that holds at this frame, as the rule sees it.

    Attributes:
        key: identity of the condition across frames (track id, group id, zone index).
        since: seconds, when the condition began to hold (see :func:`update_timers`).
        members: track ids involved, ascending.
        classes: class names aligned with ``members``.
        score: [0, 1], strength of the evidence at this frame (the best frame is the highest score).
        evidence: JSON-serialisable facts at this frame (plain Python types).
        zone_id: zone concerned, if any.
        line_id: line concerned, if any.
    """

    key: int
    since: float
    members: tuple[int, ...] = ()
    classes: tuple[str, ...] = ()
    score: float = 1.0
    evidence: Mapping[str, Any] = field(default_factory=dict)
    zone_id: str | None = None
    line_id: str | None = None


@dataclass(frozen=True)
class Episode:
    """An open event: the last candidate seen for its key and the bookkeeping of its life cycle."""

    event_id: str
    candidate: Candidate
    start: float
    last_true: float
    last_emit: float
    emitted_members: tuple[int, ...]
    best_score: float
    best_seq: int


@dataclass(frozen=True)
class LifecycleState:
    """Open episodes by key, and the counter for deterministic event ids."""

    episodes: Mapping[int, Episode] = field(default_factory=dict)
    next_event: int = 0


@dataclass(frozen=True)
class Lifecycle:
    """Turns per-frame candidates into open / updated / closed events for one rule.

    Attributes:
        kind: event kind (``"gathering"``, ``"loitering"``...).
        rule_id: the rule config's id.
        min_duration: seconds a candidate must hold before its event opens.
        end_grace: seconds without the candidate before its event closes.
        update_every: seconds between ``updated`` records when only the evidence changes.
        update_on_members: also emit ``updated`` as soon as the members change (groups, where who is in it
            matters); False for counts over a zone (occupancy, queues), whose members churn every frame in
            a crowd: their records then come every ``update_every`` seconds only.
    """

    kind: str
    rule_id: str
    min_duration: float
    end_grace: float
    update_every: float = 5.0
    update_on_members: bool = True

    def _event(self, ep: Episode, status: str, end: float, context: RuleContext) -> Event:
        c = ep.candidate
        evidence = {**c.evidence, "duration": round(end - ep.start, 3)}
        return Event(
            id=ep.event_id, kind=self.kind, rule_id=self.rule_id,
            camera_id=context.camera_id,
            status=status, start=ep.start, end=end, member_ids=c.members, classes=c.classes,
            score=min(max(float(ep.best_score), 0.0), 1.0), evidence=evidence, best_frame_seq=ep.best_seq,
            zone_id=c.zone_id, line_id=c.line_id,
        )

    def advance(self, state: LifecycleState, candidates: Sequence[Candidate], now: float, *,
                context: RuleContext) -> tuple[LifecycleState, list[Event]]:
        """One frame: open, update and close events. Events are ordered: closed, then opened/updated by key."""
        if not candidates and not state.episodes:
            return state, []
        holding = {c.key: c for c in candidates}
        episodes: dict[int, Episode] = {}
        closed: list[Event] = []
        for key, ep in state.episodes.items():
            if key in holding:
                continue
            if now - ep.last_true >= self.end_grace:
                closed.append(self._event(ep, "closed", ep.last_true, context))
            else:
                episodes[key] = ep
        events: list[Event] = []
        counter = state.next_event
        for key in sorted(holding):
            cand = holding[key]
            ep = state.episodes.get(key)
            if ep is None:
                if now - cand.since < self.min_duration:
                    continue
                ep = Episode(event_id(context.camera_id, self.rule_id, counter), cand, min(cand.since, now), now,
                             now, cand.members, cand.score, context.seq)
                counter += 1
                episodes[key] = ep
                events.append(self._event(ep, "open", now, context))
                continue
            better = cand.score > ep.best_score
            changed = self.update_on_members and cand.members != ep.emitted_members
            emit = changed or now - ep.last_emit >= self.update_every
            ep = Episode(ep.event_id, cand, ep.start, now, now if emit else ep.last_emit,
                         cand.members if emit else ep.emitted_members,
                         cand.score if better else ep.best_score, context.seq if better else ep.best_seq)
            if emit:
                events.append(self._event(ep, "updated", now, context))
            episodes[key] = ep
        return LifecycleState(episodes, counter), closed + events

    def close_all(self, state: LifecycleState, now: float, *, context: RuleContext) -> list[Event]:
        """End of stream: close every open event at the last time it held (ordered by key)."""
        return [self._event(state.episodes[k], "closed", state.episodes[k].last_true, context)
                for k in sorted(state.episodes)]
