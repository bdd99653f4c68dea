"""Console settings: where it listens, sessions, shifts (for the supervisor audit), live view rate.

Declared once and validated strictly (``extra="forbid"``, frozen, a description and range on every field).
"""

from __future__ import annotations

import re
import zoneinfo

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_HHMM = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Shift(_Strict):
    """A work shift: it starts at ``start`` (local time, HH:MM) and lasts until the next shift starts."""

    name: str = Field(min_length=1, max_length=32, description="shift name shown in the audit")
    start: str = Field(description="local start time, HH:MM (24 h)")

    @field_validator("start")
    @classmethod
    def _hhmm(cls, value: str) -> str:
        if not _HHMM.match(value):
            raise ValueError(f"expected a time as HH:MM (00:00-23:59), got {value!r}")
        return value

    @property
    def minute(self) -> int:
        """Minutes after local midnight."""
        hours, minutes = self.start.split(":")
        return int(hours) * 60 + int(minutes)


DEFAULT_SHIFTS = (Shift(name="morning", start="06:00"), Shift(name="afternoon", start="14:00"),
                  Shift(name="night", start="22:00"))


class ConsoleConfig(_Strict):
    """The operator console (``analytics serve``, or ``analytics run --serve``)."""

    host: str = Field("127.0.0.1", description="address to listen on; 127.0.0.1 keeps it on this machine, "
                      "0.0.0.0 opens it to the centre's network")
    port: int = Field(8080, ge=1, le=65535, description="TCP port")
    timezone: str = Field("UTC", description="IANA time zone of the centre (shifts and days in the audit), "
                          "e.g. Europe/Paris")
    shifts: tuple[Shift, ...] = Field(DEFAULT_SHIFTS, min_length=1, description="the centre's shifts, in any order")
    session_hours: float = Field(12.0, gt=0.0, le=24.0, description="a login lasts this long (hours); range 8-14")
    live_fps: float = Field(2.0, gt=0.0, le=10.0, description="frames per second written for each camera's live "
                            "view; range 1-5 (each frame is a JPEG encode on the analysis thread)")
    live_dir: str | None = Field(None, description="where the run writes live frames and camera health for the "
                                 "console; null: <output dir>/live")
    critical_priority: float = Field(0.7, ge=0.0, le=1.0, description="alerts at or above this priority get the "
                                     "visual and sound cue; range 0.5-0.9")
    queue_limit: int = Field(100, ge=10, le=2000, description="the pushed queue holds the highest-ranked alerts up "
                             "to this many (with the total count); range 50-300")
    poll_seconds: float = Field(0.25, gt=0.0, le=5.0, description="how often the console checks the store for "
                                "changes to push (seconds); keep it well under 1 s")

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}; expected an IANA name such as 'Europe/Paris'") from None
        return value

    @model_validator(mode="after")
    def _distinct_shifts(self) -> ConsoleConfig:
        for attr in ("name", "start"):
            values = [getattr(s, attr) for s in self.shifts]
            dupes = sorted({v for v in values if values.count(v) > 1})
            if dupes:
                raise ValueError(f"shift {attr}s must be unique, repeated: {dupes}")
        return self
