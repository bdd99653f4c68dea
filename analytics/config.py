"""Run configuration: pydantic models, loaded from YAML, validated strictly before anything starts.

A bad config raises :class:`ConfigError` naming the file, the key path (``cameras.1.fps``) and what was
expected. Validation has no side effects: it opens no camera and loads no model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from analytics import paths
from analytics.alerts.config import AlertsConfig
from analytics.console.config import ConsoleConfig
from analytics.geometry import SceneGeometry
from analytics.recording.config import RecordingConfig
from analytics.rules.catalog import RuleConfig
from analytics.types import CLASS_IDS, check_class_names, class_ids_from_names
from analytics.yamlio import read_yaml


class ConfigError(ValueError):
    """A config file that cannot be used; the message names the file, the key path and the expectation."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Point = tuple[float, float]


class DetectionFilter(_Strict):
    """Which detections a camera keeps. Tuning ranges are given in each description."""

    classes: tuple[str, ...] = Field(
        ("person", "bicycle", "car", "motorcycle", "bus", "truck"),
        description=f"class names to keep, any of {sorted(CLASS_IDS)}",
    )
    confidence: float = Field(0.25, ge=0.0, le=1.0, description="lowest detection score passed to the tracker "
                              "(the tracker's low threshold); range 0.05-0.5")
    min_size: float = Field(0.0, ge=0.0, description="minimum box height in pixels; smaller boxes are dropped "
                            "(far-away or spurious objects); range 0-60")
    edge_margin: float = Field(0.0, ge=0.0, description="boxes whose centre lies closer than this many pixels to "
                               "the frame border are dropped (half-visible objects); range 0-30")

    @field_validator("classes")
    @classmethod
    def _known_classes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return check_class_names(value)

    @property
    def class_ids(self) -> tuple[int, ...]:
        return class_ids_from_names(self.classes)


class TrackerConfig(_Strict):
    """ByteTrack-class association parameters. Times are in seconds so they hold at any analysis rate."""

    high_threshold: float = Field(0.5, ge=0.0, le=1.0, description="detections at or above this score are "
                                  "matched first (ByteTrack stage 1); range 0.3-0.7")
    new_track_threshold: float = Field(0.6, ge=0.0, le=1.0, description="an unmatched detection starts a new "
                                       "track only at or above this score; range 0.4-0.8")
    match_iou: float = Field(0.2, ge=0.0, le=1.0, description="minimum IoU (against the predicted box) for a "
                             "stage-1 match; range 0.1-0.5")
    low_match_iou: float = Field(0.5, ge=0.0, le=1.0, description="minimum IoU for matching low-score "
                                 "detections (stage 2); range 0.3-0.7")
    max_center_distance: float = Field(1.0, ge=0.0, description="fallback gate when IoU is too low: centre "
                                       "distance in units of the track's box height (fast motion at low "
                                       "frame rates); 0 disables; range 0-1.5")
    min_hits: int = Field(2, ge=1, le=10, description="matched frames before a track is confirmed and emitted; "
                          "range 1-4")
    lost_ttl: float = Field(1.5, gt=0.0, description="seconds a lost track is kept for re-identification by "
                            "motion; range 0.5-5")
    backfill: bool = Field(True, description="when a track is confirmed, emit its tentative frames too "
                           "(online output at most min_hits-1 frames late)")


class PrivacyMask(_Strict):
    """A private zone: a polygon in normalised image coordinates (0..1), blanked right after decoding."""

    name: str = Field("private", description="label for audits")
    polygon: tuple[Point, ...] = Field(description="3 or more (x, y) vertices, normalised to [0, 1]")

    @field_validator("polygon")
    @classmethod
    def _valid_polygon(cls, value: tuple[Point, ...]) -> tuple[Point, ...]:
        if len(value) < 3:
            raise ValueError(f"a polygon needs at least 3 points, got {len(value)}")
        for x, y in value:
            if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
                raise ValueError(f"point ({x}, {y}) is outside the frame; coordinates are normalised to [0, 1]")
        return value


class CameraConfig(_Strict):
    """One camera: where its frames come from and how it is analysed."""

    id: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="unique camera id (letters, digits, _.-)")
    source: str = Field(description="video file (mp4, avi...), MOTChallenge sequence folder or image folder, "
                        "or rtsp:// / http(s):// URL; ${SHARED} and ${ENV} are expanded, relative paths are "
                        "relative to the config file")
    fps: float | None = Field(5.0, gt=0.0, le=120.0, description="analysis rate in frames per second; frames "
                              "in between are skipped; null analyses every frame")
    benchmark: bool = Field(False, description="files only: yield every frame as fast as possible (ignores fps "
                            "and real-time pacing)")
    realtime: bool = Field(False, description="files only: pace frames at media speed as a live camera would")
    loop: bool = Field(False, description="files only: start again at the end (demo walls)")
    detection: DetectionFilter = Field(default_factory=DetectionFilter)
    tracker: TrackerConfig = Field(default_factory=TrackerConfig)
    privacy_masks: tuple[PrivacyMask, ...] = Field((), description="private zones blanked at the source")
    scene: SceneGeometry = Field(default_factory=SceneGeometry, description="zones, tripwire lines and an "
                                 "optional ground calibration, in normalised image coordinates")
    rules: tuple[RuleConfig, ...] = Field((), description="rules run on this camera's tracks, each selected by "
                                          "its kind (gathering, loitering, line_count...)")
    reconnect_initial: float = Field(0.5, gt=0.0, description="live only: first reconnect delay, seconds")
    reconnect_max: float = Field(10.0, gt=0.0, description="live only: reconnect backoff cap, seconds")
    stall_timeout: float = Field(5.0, gt=0.0, description="live only: seconds without a frame before the "
                                 "stream is considered dropped")

    @property
    def is_live(self) -> bool:
        return self.source.split("://", 1)[0].lower() in {"rtsp", "rtsps", "http", "https", "rtmp", "udp", "tcp"} \
            and "://" in self.source

    @model_validator(mode="after")
    def _coherent(self) -> CameraConfig:
        if self.benchmark and self.realtime:
            raise ValueError("benchmark and realtime are exclusive")
        if self.reconnect_max < self.reconnect_initial:
            raise ValueError("reconnect_max must be >= reconnect_initial")
        ids = [r.id for r in self.rules]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"rule ids must be unique within a camera, repeated: {dupes}")
        for rule in self.rules:
            rule.check_geometry(self.scene)
        return self


class DetectorConfig(_Strict):
    """The shared detector."""

    backend: Literal["openvino", "onnxruntime", "ultralytics"] = Field(
        "openvino", description="inference backend")
    model: str = Field("yolo11n_int8_openvino", description="model name from models/registry.yaml, or a path")
    device: str = Field("CPU", description="OpenVINO device (CPU, GPU, AUTO) or ultralytics device")
    imgsz: int | tuple[int, int] | None = Field(None, description="network input (h, w) or a square side; "
                                                "null uses the model's own (static models fix it)")
    batch: int = Field(1, ge=1, le=64, description="frames per inference call across cameras")
    nms_iou: float = Field(0.7, gt=0.0, le=1.0, description="IoU above which overlapping boxes of one class "
                           "are suppressed; range 0.45-0.7")
    threads: int | None = Field(None, ge=1, description="inference threads (null: the backend decides)")


class OutputConfig(_Strict):
    """What a run writes."""

    dir: str = Field("runs/latest", description="output folder, relative to the current directory")
    parquet: bool = Field(True, description="write the track log as Parquet (one file per camera)")
    mot: bool = Field(True, description="write MOTChallenge text (one file per camera)")
    video: bool = Field(False, description="write an annotated mp4 per camera (slower)")


class RunConfig(_Strict):
    """A whole run: the detector, the cameras and the outputs."""

    detector: DetectorConfig = Field(default_factory=DetectorConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)
    cameras: Annotated[tuple[CameraConfig, ...], Field(min_length=1, description="the cameras to analyse")]
    alerts: AlertsConfig = Field(default_factory=AlertsConfig, description="how events become ranked alerts, "
                                 "where they are stored, escalation authorities, retention")
    console: ConsoleConfig = Field(default_factory=ConsoleConfig, description="the operator console")
    recording: RecordingConfig = Field(default_factory=RecordingConfig, description="continuous recording, "
                                       "retention (alerts.retention_days) and requisition exports")

    @model_validator(mode="after")
    def _unique_ids(self) -> RunConfig:
        ids = [c.id for c in self.cameras]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"camera ids must be unique, repeated: {dupes}")
        return self


def _format_errors(path: Path, err: ValidationError) -> str:
    lines = [f"invalid config {path}:"]
    errors = err.errors()
    nested = {e["loc"][:1] for e in errors if len(e["loc"]) > 1}
    for e in errors:
        if e["type"] == "too_short" and tuple(e["loc"]) in nested:
            continue  # "at least 1 camera" only repeats that a camera below failed
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        got = e.get("input")
        got_s = f" (got {got!r})" if got is not None and not isinstance(got, dict) else ""
        lines.append(f"  {loc}: {e['msg']}{got_s}")
    return "\n".join(lines)


def parse_config(data: object, *, path: Path, base: Path | None = None) -> RunConfig:
    """Validate a parsed YAML document and expand camera source paths against ``base``."""
    try:
        cfg = RunConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format_errors(path, err)) from None
    cams = []
    for i, cam in enumerate(cfg.cameras):
        try:
            source = paths.expand(cam.source, base=base)
        except ValueError as err:
            raise ConfigError(f"invalid config {path}:\n  cameras.{i}.source: {err}") from None
        rules = []
        for j, rule in enumerate(cam.rules):
            if getattr(rule, "baseline", None) is not None:  # learned files, relative to the config like sources
                try:
                    rule = rule.model_copy(update={"baseline": paths.expand(rule.baseline, base=base)})
                except ValueError as err:
                    raise ConfigError(f"invalid config {path}:\n  cameras.{i}.rules.{j}.baseline: {err}") from None
            rules.append(rule)
        cams.append(cam.model_copy(update={"source": source, "rules": tuple(rules)}))
    return cfg.model_copy(update={"cameras": tuple(cams)})


def load_config(path: str | Path) -> RunConfig:
    """Read and validate a YAML run config.

    Raises:
        ConfigError: the file is missing, is not YAML, or does not match the schema.
    """
    path = Path(path)
    data = read_yaml(path, what="config", error=ConfigError)
    if not isinstance(data, dict):
        raise ConfigError(f"config {path} must be a YAML mapping with a 'cameras' key, got {type(data).__name__}")
    return parse_config(data, path=path, base=path.resolve().parent)
