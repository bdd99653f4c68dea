"""``intrusion``: an object of a forbidden class inside a zone (a person on the carriageway, a car in a
pedestrian zone); one event per intruding track.

What counts: present tracks (confirmed, or lost = predicted for a moment after their last detection;
tentative tracks are ignored, see :mod:`analytics.rules.view`) of the forbidden ``classes`` whose ground
anchor (bottom centre of the box) lies inside ``zone``. No calibration is needed.

Presence (key = track id): a track's presence begins at its first frame in the zone and survives gaps
(leaving the zone, not being detected) of up to ``grace`` seconds
(:func:`analytics.rules.lasting.update_timers`); a longer gap ends it.

Events (:class:`analytics.rules.lasting.Lifecycle`, kind ``"intrusion"``):

* **open** once the presence has lasted ``min_duration`` seconds (against detector flicker and boxes
  grazing the zone's edge); the event starts at the presence's first frame;
* **updated** every 5 s while the track stays, with fresh evidence;
* **closed** once the track has not been in the zone for ``end_grace`` seconds, with ``end`` the last frame
  it was there; that also ends the presence, so a return is a new intrusion once it again lasts
  ``min_duration``. :meth:`IntrusionRule.close` closes the events still open at the end of a stream.

Evidence: ``duration`` (seconds in the zone: ``end - start``), ``zone``, ``class``, ``mean_confidence`` (mean
detection confidence of the track over its presence) and ``min_duration`` (the threshold used).

Score: ``mean_confidence * (1 - 0.5 ** (duration / min_duration))``: half the track's mean confidence when
the event opens, three quarters at twice ``min_duration``, towards the mean confidence; the event keeps its
best score.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from analytics.rules.base import Event, RuleConfigBase, RuleContext, frame_view
from analytics.rules.loitering import StayState, Stays, counted_rows
from analytics.rules.view import LogFrames
from analytics.types import CLASS_IDS, Tracks, class_ids_from_names


class IntrusionConfig(RuleConfigBase):
    """Config of one intrusion rule. Tuning ranges are given in each description."""

    zone_fields = ("zone",)

    kind: Literal["intrusion"] = Field(description="rule type selector")
    zone: str = Field(description="id of the zone where the classes are forbidden, in the camera's scene geometry")
    classes: tuple[str, ...] = Field(description="class names forbidden in the zone, any of "
                                     f"{sorted(CLASS_IDS)}; e.g. [person, bicycle] on a carriageway, "
                                     "[car, truck, bus, motorcycle] in a pedestrian zone")
    min_duration: float = Field(1.0, gt=0.0, description="seconds a track must be in the zone before the event "
                                "opens (against flicker and boxes grazing the edge); range 0.3-10")
    grace: float = Field(1.0, ge=0.0, description="seconds a track may leave the zone or go undetected without "
                         "restarting its presence; range 0-3")
    end_grace: float = Field(2.0, ge=0.0, description="seconds without the track in the zone before an open "
                             "event closes; range 1-10")



class IntrusionRule:
    """Pure intrusion rule; see the module docstring for the semantics."""

    def __init__(self, config: IntrusionConfig) -> None:
        self.config = config
        self._classes = frozenset(class_ids_from_names(config.classes))
        cfg = config
        self._counted = counted_rows(cfg.zone, self._classes)

        min_duration = cfg.min_duration

        def score(dwell: float, mean: float) -> float:  # mean * saturating(dwell / min_duration), inlined
            ratio = dwell / min_duration
            value = 1.0 - 0.5 ** (0.0 if 0.0 > ratio else ratio)
            return mean * (1.0 if 1.0 < value else (0.0 if 0.0 > value else value))

        def evidence(name: str, mean: float, context: RuleContext) -> dict[str, Any]:
            return {"zone": cfg.zone, "class": name, "mean_confidence": round(mean, 3),
                    "min_duration": cfg.min_duration}

        self._stays = Stays("intrusion", config.id, min_duration=cfg.min_duration, grace=cfg.grace,
                            end_grace=cfg.end_grace, zone_id=cfg.zone, score=score, evidence=evidence)

    @property
    def id(self) -> str:
        return self.config.id

    def initial_state(self) -> StayState:
        return StayState()

    def replay(self, frames: LogFrames, camera_id: str) -> list[tuple[int, Event]] | None:
        """The whole log at once (:meth:`Stays.replay`; :class:`analytics.rules.base.Replays`)."""
        return self._stays.replay(frames, camera_id, frames.column(*self._counted), frames.tracks.confidence)

    def step(self, tracks: Tracks, state: StayState, now: float, *,
             context: RuleContext) -> tuple[StayState, list[Event]]:
        """Advance one frame; see :class:`analytics.rules.base.Rule`."""
        keep = frame_view(tracks, context).column(*self._counted).tolist()
        return self._stays.step_rows(state, tracks, keep, tracks.confidence.tolist, now, context)

    def close(self, state: StayState, now: float, *, context: RuleContext) -> list[Event]:
        """End of stream: close open events at the last time each track was in the zone."""
        return self._stays.close(state, now, context=context)
