"""The benchmark manifest: which sequences, which detector variants, which subsets (``benchmarks/manifest.yaml``).

Format (YAML; paths may use ``${SHARED}`` and ``${ENV_VAR}``, relative paths are relative to the manifest)::

    detectors:                    # detector variants: one backend, one model, one input size each
      - {id: openvino-448x576, backend: openvino, model: yolo11n_int8_448x576_openvino}
      - {id: ultralytics-pt, backend: ultralytics, model: yolo11n_w8dq_pt, imgsz: 640}
    baseline: {model: yolo11n_int8_openvino, imgsz: 640}   # ultralytics model.track, same weights
    sequences:
      - id: pets09
        source: ${SHARED}/footage/mot/PETS09-S2L1        # a video, image folder or MOTChallenge folder
        config: ../configs/pets09.yaml                     # the camera's settings, scene and rules
        camera: pets09                                     # which camera of the config (default: the first)
        gt: ${SHARED}/footage/mot/PETS09-S2L1/gt/gt.txt    # optional MOTChallenge ground truth
        labels: labels/one_by_one.labels.yaml              # optional labelled events (analytics/labels.py)
    subsets:
      ci:
        runs: [{sequence: pets09, detectors: [openvino-448x576], max_frames: 150}]
      full:
        runs: [{sequence: pets09, detectors: [openvino-448x576, ultralytics-pt], baseline: true}]
        capacity: {detector: openvino-448x576, sequences: [pets09]}

:func:`load_manifest` validates the file strictly (unknown keys, unknown ids, repeated ids) and raises
:class:`ManifestError` naming the file and the key path; it touches no other file.
:meth:`Manifest.plan` picks a subset, filters it by backend and input size, and checks that every input
exists, so a bad manifest fails before the first run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from analytics import paths
from analytics.yamlio import read_yaml

_ID = r"^[A-Za-z0-9_.-]{1,64}$"
Backend = Literal["openvino", "onnxruntime", "ultralytics"]


class ManifestError(ValueError):
    """A manifest that cannot be used; the message names the file, the key path and what was expected."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DetectorVariant(_Strict):
    """One detector setting measured: a backend, a model and an input size."""

    id: str = Field(pattern=_ID, description="variant id used by subsets and in metric names")
    backend: Backend = Field(description="detector backend (analytics.detectors)")
    model: str = Field(description="model registry name (models/registry.yaml) or a path")
    imgsz: int | tuple[int, int] | None = Field(None, description="network input (h, w) or a side; null: the "
                                                "model's own (static models fix it)")
    batch: int | None = Field(None, ge=1, le=64, description="frames per detector call; null: the config's")


class BaselineSpec(_Strict):
    """The reference run: plain ultralytics ``model.track`` with ByteTrack on the same frames."""

    model: str = Field(description="registry name or path ultralytics loads (same weights as a variant)")
    imgsz: int = Field(640, ge=32, description="ultralytics imgsz, pixels")
    tracker: str = Field("bytetrack.yaml", description="ultralytics tracker config")
    compare_to: str | None = Field(None, pattern=_ID, description="the variant with the same weights and input "
                                   "size, for the like-for-like speed ratio")


class SequenceSpec(_Strict):
    """One piece of footage with its camera settings and optional ground truth and labels."""

    id: str = Field(pattern=_ID, description="sequence id used by subsets and in metric names")
    source: str = Field(description="video file, image folder or MOTChallenge sequence folder")
    config: str | None = Field(None, description="run config holding the camera (detection filter, tracker, "
                               "scene, rules); null: default camera settings, no rules")
    camera: str | None = Field(None, description="camera id in the config (default: its first camera)")
    gt: str | None = Field(None, description="MOTChallenge ground truth (frame,id,x,y,w,h,flag,...), 1-based")
    gt_classes: tuple[int, ...] | None = Field(None, description="keep ground-truth rows of these class ids "
                                               "(column 8, MOT16/17); null keeps all")
    labels: str | None = Field(None, description="labelled event file (analytics/labels.py format)")
    reference_events: bool = Field(True, description="with gt and rules: score events against the rules "
                                   "replayed on the ground-truth tracks")

    @model_validator(mode="after")
    def _labels_need_rules(self) -> SequenceSpec:
        if self.labels is not None and self.config is None:
            raise ValueError("labels need a config whose camera has rules (set 'config')")
        return self


class RunSpec(_Strict):
    """One sequence run with one or more detector variants."""

    sequence: str = Field(pattern=_ID, description="a sequence id")
    detectors: tuple[str, ...] = Field(min_length=1, description="detector variant ids, each run in turn")
    max_frames: int | None = Field(None, ge=1, description="analyse only the first N analysed frames")
    baseline: bool = Field(False, description="also run the ultralytics baseline on the same frames")


class CapacitySpec(_Strict):
    """The capacity search: N cameras replaying real footage paced in real time."""

    detector: str = Field(pattern=_ID, description="the detector variant the cameras share")
    sequences: tuple[str, ...] = Field(min_length=1, description="footage the cameras replay, round-robin "
                                       "(each with its camera settings and rules)")
    fps: float = Field(5.0, gt=0.0, le=30.0, description="analysis rate per camera, frames per second")
    max_streams: int = Field(16, ge=1, le=256, description="largest camera count tried")
    probe_seconds: float = Field(25.0, gt=0.0, description="measured seconds per probe, after the warm-up")
    warmup_seconds: float = Field(5.0, ge=0.0, description="seconds run before measuring each probe")
    min_fps_ratio: float = Field(0.95, gt=0.0, le=1.0, description="keeps up: analysed fps >= ratio x fps x N")
    max_drop_ratio: float = Field(0.01, ge=0.0, le=1.0, description="keeps up: analysis ticks lost by the "
                                  "latest-frame policy <= this share of ticks due")


class SubsetSpec(_Strict):
    """A named selection of runs (``ci``, ``full``...)."""

    description: str = ""
    runs: tuple[RunSpec, ...] = Field(min_length=1)
    capacity: CapacitySpec | None = None


class Manifest(_Strict):
    """The whole manifest (see the module docstring)."""

    detectors: tuple[DetectorVariant, ...] = Field(min_length=1)
    baseline: BaselineSpec | None = None
    sequences: tuple[SequenceSpec, ...] = Field(min_length=1)
    subsets: dict[str, SubsetSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _references(self) -> Manifest:
        for what, ids in (("detector", [d.id for d in self.detectors]), ("sequence", [s.id for s in self.sequences])):
            dupes = sorted({i for i in ids if ids.count(i) > 1})
            if dupes:
                raise ValueError(f"{what} ids must be unique, repeated: {dupes}")
        dets, seqs = {d.id for d in self.detectors}, {s.id for s in self.sequences}
        if self.baseline is not None and self.baseline.compare_to is not None and self.baseline.compare_to not in dets:
            raise ValueError(f"baseline.compare_to: unknown detector {self.baseline.compare_to!r}; known: "
                             f"{sorted(dets)}")
        for name, subset in self.subsets.items():
            for i, run in enumerate(subset.runs):
                _known(f"subsets.{name}.runs.{i}.sequence", [run.sequence], seqs)
                _known(f"subsets.{name}.runs.{i}.detectors", run.detectors, dets)
                if run.baseline and self.baseline is None:
                    raise ValueError(f"subsets.{name}.runs.{i}.baseline: the manifest has no 'baseline' section")
            if subset.capacity is not None:
                _known(f"subsets.{name}.capacity.detector", [subset.capacity.detector], dets)
                _known(f"subsets.{name}.capacity.sequences", subset.capacity.sequences, seqs)
        return self

    def detector(self, variant_id: str) -> DetectorVariant:
        return next(d for d in self.detectors if d.id == variant_id)

    def sequence(self, sequence_id: str) -> SequenceSpec:
        return next(s for s in self.sequences if s.id == sequence_id)

    def plan(self, subset: str, *, backends: tuple[str, ...] | None = None,
             imgsz: tuple[str, ...] | None = None) -> Plan:
        """The runs of ``subset``, keeping only variants of ``backends`` and of input sizes ``imgsz``
        (``"640"`` or ``"448x576"``, matched against the variant's input size).

        Raises:
            ManifestError: unknown subset, or filters that leave no run.
        """
        if subset not in self.subsets:
            raise ManifestError(f"unknown subset {subset!r}; the manifest has {sorted(self.subsets)}")
        spec = self.subsets[subset]
        wanted_sizes = {_parse_size(s) for s in imgsz} if imgsz else None
        runs = []
        for run in spec.runs:
            keep = tuple(d for d in run.detectors if _selected(self.detector(d), backends, wanted_sizes))
            if keep:
                runs.append(run.model_copy(update={"detectors": keep}))
        if not runs:
            raise ManifestError(f"subset {subset!r} has no run left with backends={list(backends or [])} and "
                                f"imgsz={list(imgsz or [])}; its variants: "
                                f"{sorted({d for r in spec.runs for d in r.detectors})}")
        capacity = spec.capacity
        if capacity is not None and not _selected(self.detector(capacity.detector), backends, wanted_sizes):
            capacity = None
        return Plan(self, subset, tuple(runs), capacity)


def _known(loc: str, ids: tuple[str, ...] | list[str], known: set[str]) -> None:
    unknown = [i for i in ids if i not in known]
    if unknown:
        raise ValueError(f"{loc}: unknown id(s) {unknown}; known: {sorted(known)}")


def _parse_size(text: str) -> tuple[int, int]:
    """``"640"`` -> (640, 640); ``"448x576"`` -> (448, 576) (height x width, pixels)."""
    try:
        parts = [int(p) for p in str(text).lower().split("x")]
    except ValueError:
        raise ManifestError(f"input size {text!r}: expected a side such as 640 or HxW such as 448x576") from None
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or min(parts) < 32:
        raise ManifestError(f"input size {text!r}: expected a side such as 640 or HxW such as 448x576")
    return parts[0], parts[1]


def variant_input_size(variant: DetectorVariant) -> tuple[int, int] | None:
    """The variant's network input (height, width): its ``imgsz``, else the registry's, else None."""
    if variant.imgsz is not None:
        return (variant.imgsz, variant.imgsz) if isinstance(variant.imgsz, int) else tuple(variant.imgsz)
    from analytics.models import ModelError, load_registry

    try:
        entry = load_registry().get(variant.model)
    except ModelError:
        return None
    return tuple(entry.input_size) if entry is not None and entry.input_size else None


def _selected(variant: DetectorVariant, backends: tuple[str, ...] | None,
              sizes: set[tuple[int, int]] | None) -> bool:
    if backends and variant.backend not in backends:
        return False
    return not sizes or variant_input_size(variant) in sizes


@dataclass(frozen=True)
class Plan:
    """What one suite run does: the selected runs (variants filtered) and the capacity search, if any."""

    manifest: Manifest
    subset: str
    runs: tuple[RunSpec, ...]
    capacity: CapacitySpec | None

    def check_inputs(self) -> None:
        """Every source, config, camera, ground truth and label file the plan needs exists and loads.

        Raises:
            ManifestError: naming the sequence, the key and the missing or invalid file.
        """
        from analytics.config import ConfigError, load_config
        from analytics.labels import LabelsError, load_labels

        ids = {r.sequence for r in self.runs} | set(self.capacity.sequences if self.capacity else ())
        for seq in (self.manifest.sequence(i) for i in sorted(ids)):
            for key in ("source", "config", "gt", "labels"):
                value = getattr(seq, key)
                if value is not None and not Path(value).exists():
                    raise ManifestError(f"sequence {seq.id}: {key} {value} does not exist")
            if seq.config is not None:
                try:
                    cams = {c.id for c in load_config(seq.config).cameras}
                except ConfigError as err:
                    raise ManifestError(f"sequence {seq.id}: {err}") from None
                if seq.camera is not None and seq.camera not in cams:
                    raise ManifestError(f"sequence {seq.id}: camera {seq.camera!r} is not in {seq.config}; "
                                        f"cameras: {sorted(cams)}")
            if seq.labels is not None:
                try:
                    load_labels(seq.labels)
                except LabelsError as err:
                    raise ManifestError(f"sequence {seq.id}: {err}") from None


def _expand_paths(manifest: Manifest, base: Path) -> Manifest:
    seqs = []
    for i, seq in enumerate(manifest.sequences):
        update = {}
        for key in ("source", "config", "gt", "labels"):
            value = getattr(seq, key)
            if value is not None:
                try:
                    update[key] = paths.expand(value, base=base)
                except ValueError as err:
                    raise ValueError(f"sequences.{i}.{key}: {err}") from None
        seqs.append(seq.model_copy(update=update))
    return manifest.model_copy(update={"sequences": tuple(seqs)})


def parse_manifest(data: object, *, path: Path) -> Manifest:
    """Validate a parsed manifest and expand its paths against the manifest's folder."""
    try:
        manifest = Manifest.model_validate(data)
        return _expand_paths(manifest, path.resolve().parent)
    except ValidationError as err:
        problems = [f"  {'.'.join(map(str, e['loc'])) or '(top level)'}: {e['msg']}"
                    + (f" (got {e['input']!r})" if not isinstance(e.get("input"), dict | list) else "")
                    for e in err.errors()]
        raise ManifestError("\n".join([f"invalid benchmark manifest {path}:", *problems])) from None
    except ValueError as err:
        raise ManifestError(f"invalid benchmark manifest {path}:\n  {err}") from None


def load_manifest(path: str | Path) -> Manifest:
    """Read and validate a manifest file.

    Raises:
        ManifestError: the file is missing, not YAML, or does not match the schema (file and key path named).
    """
    path = Path(path)
    data = read_yaml(path, what="benchmark manifest", error=ManifestError)
    if not isinstance(data, dict):
        raise ManifestError(f"benchmark manifest {path} must be a YAML mapping with 'detectors', 'sequences' and "
                            f"'subsets', got {type(data).__name__}")
    return parse_manifest(data, path=path)
