"""One camera's rules, run frame by frame: the same object serves the live pipeline and the replay.

The engine owns the rule states (the rules themselves are pure) and builds each frame's
:class:`~analytics.rules.base.RuleContext`. Determinism contract: given the same sequence of
``(tracks, seq, timestamp, frame_size)`` and the same config, it returns the same events; the live runner
steps it on every analysed frame (empty ones included) and the track log records every analysed frame, so
``analytics replay`` reproduces a live run exactly. Each frame's measurements (zone membership, ground
speeds...) are computed once and shared by the rules through :class:`~analytics.rules.view.FrameView`.
:meth:`RuleEngine.replay` takes a whole stored log at once and gives the same events as :meth:`RuleEngine.step`
on each of its frames followed by :meth:`RuleEngine.close`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from operator import itemgetter
from typing import Any

import numpy as np

from analytics.geometry import SceneGeometry
from analytics.rules.base import Event, Replays, RuleContext, Selects, Sleeps
from analytics.rules.catalog import build_rule
from analytics.rules.view import FrameView, LogFrames, wake_margin
from analytics.types import Tracks

_ORDER = itemgetter(0, 1, 2)  # frame, then rule, then the rule's own order


class RuleEngine:
    """Steps every rule of one camera and keeps their states.

    Args:
        camera_id: the camera's id (in every event id).
        geometry: the camera's zones, lines and calibration.
        rules: validated rule configs (see :data:`analytics.rules.catalog.RuleConfig`), in config order.
    """

    def __init__(self, camera_id: str, geometry: SceneGeometry, rules: Sequence[Any]) -> None:
        self.camera_id = camera_id
        self.geometry = geometry
        self.rules = [build_rule(cfg) for cfg in rules]
        self.states = [rule.initial_state() for rule in self.rules]
        self.last_time: float | None = None
        self._last_context: RuleContext | None = None

    def step(self, tracks: Tracks, *, seq: int, timestamp: float, frame_size: tuple[int, int]) -> list[Event]:
        """Run every rule on one frame; events in rule order, then each rule's own order. The frame's
        measurements are computed once, in a :class:`FrameView` the rules share."""
        if self.last_time is not None and timestamp < self.last_time:
            raise ValueError(f"camera {self.camera_id}: frame time went backwards "
                             f"({timestamp} after {self.last_time}); rules need increasing timestamps")
        view = FrameView(tracks, frame_size, self.geometry)
        context = RuleContext(self.camera_id, frame_size, seq, self.geometry, view)
        events: list[Event] = []
        for i, rule in enumerate(self.rules):
            self.states[i], new = rule.step(tracks, self.states[i], timestamp, context=context)
            events.extend(new)
        self.last_time, self._last_context = timestamp, context
        return events

    def replay(self, frames: LogFrames, *, every_frame: bool = False) -> list[Event]:
        """Every event of a whole stored log, closing what is open at its end: exactly the events :meth:`step`
        gives frame by frame and then :meth:`close`, in the same order.

        Knowing every frame in advance, the replay lets a rule that can take the whole log at once
        (:class:`~analytics.rules.base.Replays`) do so; the others are stepped frame by frame, a rule that
        can sleep (:class:`~analytics.rules.base.Sleeps`) only on the frames it flags and while it is awake,
        on only the rows that matter to it when it says which (:class:`~analytics.rules.base.Selects`), and a
        frame's view is built only when some rule is stepped on it. ``every_frame`` steps every rule on every
        frame with every row instead: the reference the tests compare with.

        A log is a whole stream: the engine must be fresh (not stepped since it was made or last replayed),
        and is fresh again afterwards.

        Raises:
            ValueError: the engine has been stepped and not replayed since.
        """
        if self.last_time is not None:
            raise ValueError(f"camera {self.camera_id}: replay needs a fresh engine; this one has stepped "
                             "frames (make a new RuleEngine)")
        n = len(frames)
        if n == 0:
            return []
        tagged: list[tuple[int, int, int, Event]] = []  # (frame, rule, rank, event): merged in step order
        shared: list[int] = []  # rules stepped frame by frame on every row
        for i, rule in enumerate(self.rules):
            whole = None if every_frame or not isinstance(rule, Replays) else rule.replay(frames, self.camera_id)
            if whole is not None:
                tagged.extend((f, i, k, e) for k, (f, e) in enumerate(whole))
            elif not every_frame and isinstance(rule, Selects):
                self._step_frames(frames.subset(np.asarray(rule.rows(frames), dtype=bool)), [i], every_frame,
                                  tagged)
            else:
                shared.append(i)
        if shared:
            self._step_frames(frames, shared, every_frame, tagged)
        self.states = [rule.initial_state() for rule in self.rules]  # fresh again
        tagged.sort(key=_ORDER)
        return [t[3] for t in tagged]

    def _step_frames(self, frames: LogFrames, stepped: list[int], every_frame: bool,
                     tagged: list[tuple[int, int, int, Event]]) -> None:
        """Step the rules ``stepped`` (indices) over the log and close them at its end, appending their events
        to ``tagged`` as (frame, rule, rank, event)."""
        n, times = len(frames), frames.time
        last = n - 1
        # per rule: the first frame it flags at or after each frame (None: every frame), and the next frame
        # it is stepped on
        marks: dict[int, list[int] | None] = {}
        upcoming: dict[int, int] = {}
        for i in stepped:
            rule = self.rules[i]
            if every_frame or not isinstance(rule, Sleeps):
                marks[i], upcoming[i] = None, 0
                continue
            flags = np.asarray(rule.wakes(frames), dtype=bool).copy()
            flags[last] = True  # every rule is stepped on the last frame: the context its close is given
            marks[i] = frames.next_flagged(flags)
            upcoming[i] = marks[i][0]

        def after(i: int, f: int) -> int:
            """The next frame rule ``i`` is stepped on after frame ``f``."""
            nxt = marks[i]
            if nxt is None or f >= last:
                return f + 1
            until = self.rules[i].asleep_until(self.states[i])
            if until == math.inf:
                return nxt[f + 1]
            if not until > -math.inf:  # -inf, or NaN from times that are not numbers: every frame
                return f + 1
            woken = int(np.searchsorted(times, until - wake_margin(until), side="left"))
            return min(nxt[f + 1], max(woken, f + 1))

        rules, states, camera_id, geometry = self.rules, self.states, self.camera_id, self.geometry
        seqs, time_of = frames.seq.tolist(), times.tolist()
        context = None
        rank = 0
        while True:
            f = min(upcoming.values())
            if f > last:
                break
            view = frames.frame(f)
            now = time_of[f]
            context = RuleContext(camera_id, view.frame_size, seqs[f], geometry, view)
            for i in stepped:
                if upcoming[i] == f:
                    states[i], new = rules[i].step(view.tracks, states[i], now, context=context)
                    for e in new:
                        tagged.append((f, i, rank, e))
                        rank += 1
                    upcoming[i] = after(i, f)
        for i in stepped:
            for e in rules[i].close(states[i], time_of[last], context=context):
                tagged.append((n, i, rank, e))
                rank += 1

    def close(self) -> list[Event]:
        """End of stream: close every open event (at the last time each held). Idempotent."""
        if self._last_context is None or self.last_time is None:
            return []
        events: list[Event] = []
        for i, rule in enumerate(self.rules):
            events.extend(rule.close(self.states[i], self.last_time, context=self._last_context))
        self._last_context = None
        return events
