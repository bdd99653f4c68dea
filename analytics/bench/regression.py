"""The regression check: measured metrics against committed reference numbers with tolerances.

Reference file (``benchmarks/reference.yaml``)::

    subset: ci                       # the subset the numbers were measured on (informational)
    metrics:                         # metric name (as in results.json "metrics") -> reference
      pets09/openvino-448x576/HOTA: {value: 0.64, tolerance: 0.02}
      one-by-one/openvino-640/labels_recall: {value: 1.0, tolerance: 0.1}
      # higher_is_better: false for a metric where lower is better

A metric **fails** when it is worse than its reference by more than its tolerance (absolute), or when it was
not measured at all; one better by more than the tolerance passes and is flagged so the reference can be
raised. Only accuracy metrics belong here: speed depends on the machine and its other load, and a name that
looks like a speed metric (fps, latency, CPU, memory, capacity) is refused.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from analytics.yamlio import load_model

#: Name fragments of speed metrics, which the check refuses (noisy machine).
SPEED_MARKERS = ("fps", "_ms", "cpu", "rss", "seconds", "speed", "capacity/", "latency")
#: Default absolute tolerances by metric name suffix, for :func:`reference_from_metrics`.
DEFAULT_TOLERANCES = {"HOTA": 0.02, "DetA": 0.02, "AssA": 0.03, "MOTA": 0.02, "IDF1": 0.03,
                      "precision": 0.1, "recall": 0.1}


class ReferenceFileError(ValueError):
    """A reference file that cannot be used (the message names the file and the key)."""


class ReferenceMetric(BaseModel):
    """One metric's reference value."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    value: float = Field(description="the reference value")
    tolerance: float = Field(ge=0.0, description="how much worse (absolute) still passes")
    higher_is_better: bool = Field(True, description="direction of better")


class Reference(BaseModel):
    """A reference file (module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    subset: str | None = None
    note: str = ""
    metrics: dict[str, ReferenceMetric] = Field(min_length=1)

    @field_validator("metrics")
    @classmethod
    def _accuracy_only(cls, value: dict[str, ReferenceMetric]) -> dict[str, ReferenceMetric]:
        speed = sorted(name for name in value if is_speed_metric(name))
        if speed:
            raise ValueError(f"speed metrics are not checked (they depend on the machine's load): {speed}")
        return value


def is_speed_metric(name: str) -> bool:
    """True for names of speed, latency, CPU, memory and capacity metrics."""
    lowered = name.lower()
    return any(marker in lowered for marker in SPEED_MARKERS)


def load_reference(path: str | Path) -> Reference:
    """Read and validate a reference file; :class:`ReferenceFileError` names the file and the key."""
    return load_model(path, Reference, what="reference numbers", error=ReferenceFileError, plural=True)


Status = Literal["ok", "better", "worse", "missing"]


@dataclass(frozen=True)
class Outcome:
    """The check of one metric."""

    metric: str
    reference: float
    measured: float | None
    tolerance: float
    higher_is_better: bool
    status: Status

    @property
    def failed(self) -> bool:
        return self.status in ("worse", "missing")

    def message(self) -> str:
        ref = f"reference {self.reference:.4f}, tolerance {self.tolerance:.4f}"
        if self.status == "missing":
            return f"FAIL {self.metric}: not measured ({ref})"
        direction = "higher" if self.higher_is_better else "lower"
        delta = round(self.measured - self.reference, 4) + 0.0  # no "-0.0000"
        text = f"{self.metric}: measured {self.measured:.4f}, {ref} ({direction} is better, delta {delta:+.4f})"
        if self.status == "worse":
            return f"FAIL {text}: worse than the reference beyond the tolerance"
        if self.status == "better":
            return f"ok   {text}: better than the reference beyond the tolerance; consider raising the reference"
        return f"ok   {text}"


def check(metrics: Mapping[str, float], reference: Reference) -> list[Outcome]:
    """Check every reference metric against ``metrics`` (name -> measured value); one outcome each, in the
    reference file's order."""
    outcomes = []
    for name, ref in reference.metrics.items():
        measured = metrics.get(name)
        if measured is None or not math.isfinite(float(measured)):
            outcomes.append(Outcome(name, ref.value, None, ref.tolerance, ref.higher_is_better, "missing"))
            continue
        gain = (float(measured) - ref.value) * (1.0 if ref.higher_is_better else -1.0)
        status: Status = "worse" if gain < -ref.tolerance - 1e-12 else "better" if gain > ref.tolerance else "ok"
        outcomes.append(Outcome(name, ref.value, float(measured), ref.tolerance, ref.higher_is_better, status))
    return outcomes


def format_check(outcomes: list[Outcome], *, source: str = "reference") -> str:
    """A readable report of the check: one line per metric, then the verdict."""
    failed = [o for o in outcomes if o.failed]
    lines = [o.message() for o in outcomes]
    verdict = (f"regression check FAILED: {len(failed)} of {len(outcomes)} metric(s) worse than {source} "
               f"beyond tolerance or not measured: {', '.join(o.metric for o in failed)}" if failed else
               f"regression check passed: {len(outcomes)} metric(s) within tolerance of {source}")
    return "\n".join([*lines, verdict])


def reference_from_metrics(metrics: Mapping[str, float], *, subset: str | None = None,
                           tolerances: Mapping[str, float] = DEFAULT_TOLERANCES) -> dict:
    """A reference document (for YAML) from measured accuracy metrics: every metric whose name ends with a
    key of ``tolerances`` gets that tolerance; speed metrics and others are left out."""
    out = {}
    for name, value in sorted(metrics.items()):
        suffix = next((s for s in tolerances if name.endswith(s)), None)
        if suffix is not None and not is_speed_metric(name) and math.isfinite(float(value)):
            out[name] = {"value": round(float(value), 4), "tolerance": tolerances[suffix]}
    return {"subset": subset, "metrics": out}
