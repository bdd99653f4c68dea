"""One camera's rules, run frame by frame: the same object serves the live pipeline and the replay.

The engine owns the rule states (the rules themselves are pure) and builds each frame's
:class:`~analytics.rules.base.RuleContext`. Determinism contract: given the same sequence of
``(tracks, seq, timestamp, frame_size)`` and the same config, it returns the same events; the live runner
steps it on every analysed frame (empty ones included) and the track log records every analysed frame, so
``analytics replay`` reproduces a live run exactly. Each frame's measurements (zone membership, ground
speeds...) are computed once and shared by the rules through :class:`~analytics.rules.view.FrameView`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from analytics.geometry import SceneGeometry
from analytics.rules.base import Event, RuleContext
from analytics.rules.catalog import build_rule
from analytics.rules.view import FrameView
from analytics.types import Tracks


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

    def step(self, tracks: Tracks, *, seq: int, timestamp: float, frame_size: tuple[int, int],
             view: FrameView | None = None) -> list[Event]:
        """Run every rule on one frame; events in rule order, then each rule's own order.

        ``view`` lets a replay pass measurements precomputed for the whole log (:class:`LogView`); by
        default each frame gets its own :class:`FrameView`, shared by the rules.
        """
        if self.last_time is not None and timestamp < self.last_time:
            raise ValueError(f"camera {self.camera_id}: frame time went backwards "
                             f"({timestamp} after {self.last_time}); rules need increasing timestamps")
        if view is None or view.tracks is not tracks:
            view = FrameView(tracks, frame_size, self.geometry)
        context = RuleContext(self.camera_id, frame_size, seq, self.geometry, view)
        events: list[Event] = []
        for i, rule in enumerate(self.rules):
            self.states[i], new = rule.step(tracks, self.states[i], timestamp, context=context)
            events.extend(new)
        self.last_time, self._last_context = timestamp, context
        return events

    def close(self) -> list[Event]:
        """End of stream: close every open event (at the last time each held). Idempotent."""
        if self._last_context is None or self.last_time is None:
            return []
        events: list[Event] = []
        for i, rule in enumerate(self.rules):
            events.extend(rule.close(self.states[i], self.last_time, context=self._last_context))
        self._last_context = None
        return events
