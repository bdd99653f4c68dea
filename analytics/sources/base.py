"""The source contract: one camera's decoded, privacy-masked frames.

A source is iterated from one thread (its capture thread). Files and image folders yield in order; a live
source yields the newest frame when the consumer asks (latest-frame policy) and never raises on a dropped
stream: it reconnects with backoff and reports its health through :meth:`Source.status`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, runtime_checkable

from analytics.types import Frame, SourceStatus


class SourceError(RuntimeError):
    """A camera source that cannot be used (missing or corrupt file, bad URL); names the camera and the input."""


@runtime_checkable
class Source(Protocol):
    camera_id: str

    def __iter__(self) -> Iterator[Frame]: ...

    def status(self) -> SourceStatus: ...

    def close(self) -> None: ...
