"""Per-frame stage durations of a run, for benchmarks and diagnostics.

Cheap and bounded: one ``time.perf_counter()`` pair and one ``deque.append`` per stage and frame, keeping the
last ``maxlen`` values of each stage (a week-long run does not grow). Stages, in the order a frame meets them:

* ``decode``: the capture thread's wait for the source's next frame (decode, privacy mask; for a source paced
  in real time it includes the wait for the frame to be due);
* ``detect``: the shared detector call on a batch, divided evenly among the batch's frames;
* ``track``: the camera's tracker update;
* ``sinks``: the track log writers and the frame subscribers (evidence ring buffers, live frames);
* ``rules``: the camera's rule engine step;
* ``events``: the event log write and the event subscribers (the alert stage), only on frames with events.

All values are seconds (wall clock). Appends come from the capture thread (decode) and the analysis loop (the
rest); read the values once the run is over, or accept a value or two of skew while it runs.
"""

from __future__ import annotations

import collections

STAGES = ("decode", "detect", "track", "sinks", "rules", "events")
#: Values kept per stage by default (about 66 minutes of one camera at 5 analysed frames per second).
DEFAULT_MAXLEN = 20_000


class StageTimes:
    """The last ``maxlen`` durations of each stage in :data:`STAGES`, seconds."""

    def __init__(self, maxlen: int = DEFAULT_MAXLEN) -> None:
        if maxlen < 1:
            raise ValueError(f"maxlen must be >= 1, got {maxlen}")
        self._values: dict[str, collections.deque[float]] = {s: collections.deque(maxlen=maxlen) for s in STAGES}

    def add(self, stage: str, seconds: float) -> None:
        """Record one duration; ``stage`` must be one of :data:`STAGES`."""
        try:
            self._values[stage].append(seconds)
        except KeyError:
            raise ValueError(f"unknown stage {stage!r}; expected one of {STAGES}") from None

    def values(self, stage: str) -> list[float]:
        """The recorded durations of ``stage``, oldest first, seconds."""
        if stage not in self._values:
            raise ValueError(f"unknown stage {stage!r}; expected one of {STAGES}")
        return list(self._values[stage])

    def as_dict(self) -> dict[str, list[float]]:
        """Every stage's durations, seconds: ``{stage: [..]}``."""
        return {s: list(v) for s, v in self._values.items()}
