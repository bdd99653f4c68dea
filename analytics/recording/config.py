"""Recording settings: segments, where they go, the disk floor that triggers an early purge, export signing."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class RecordingConfig(BaseModel):
    """Continuous recording of every camera (``recording:`` in the run config)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(False, description="record every camera in fixed-length segments")
    segment_seconds: float = Field(60.0, ge=5.0, le=600.0, description="segment length, seconds of video; "
                                   "range 30-300")
    dir: str | None = Field(None, description="where segments go; null: <output dir>/recordings")
    max_width: int = Field(1920, ge=160, le=3840, description="wider frames are scaled down before encoding")
    crf: int = Field(26, ge=15, le=40, description="H.264 quality (lower: better, bigger); range 20-30")
    min_free_gb: float = Field(2.0, ge=0.0, le=10_000.0, description="below this much free space on the "
                               "recordings' disk, the oldest segments not under legal hold are purged early and "
                               "a health alert is raised; range 1-50")
    signing_key: str | None = Field(None, description="Ed25519 private key (PEM) signing requisition exports; "
                                    "null: <output dir>/keys/export_ed25519.pem, created on first export")
