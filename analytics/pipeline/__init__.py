"""The streaming pipeline: source -> detector -> tracker -> sinks, wired by :class:`Runner`.

Stages are plain objects with a small ``process`` contract and typed messages (``Frame``,
``DetectedFrame``, ``TrackedFrame``), so the runner can put them in threads here, or in other processes /
Ray actors later, without changing the stages.
"""

from analytics.pipeline.runner import CameraReport, Runner, RunReport

__all__ = ["CameraReport", "RunReport", "Runner"]
