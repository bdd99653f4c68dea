"""Live view for the console: the latest annotated frame of each camera and the cameras' health, as files.

The run writes (:class:`LiveFrameWriter`), the console reads (:class:`LiveFrames`); they share only a folder:

* ``<live_dir>/<camera_id>.jpg``: the camera's latest annotated frame (scaled, private zones blanked),
  rewritten at most ``fps`` times per second;
* ``<live_dir>/health.json``: ``{"updated_at": unix s, "cameras": [{"id", "health", "fps", "frames",
  "dropped", "reconnects", "tracks", "error", "last_frame_at"}]}``.

Every file is written to a temporary file in the same folder and moved into place with :func:`os.replace`,
so a reader sees the old file or the new one, never a partial one.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from analytics.annotate import FrameRenderer
from analytics.types import TrackedFrame

if TYPE_CHECKING:
    from analytics.config import CameraConfig
    from analytics.pipeline.runner import CameraReport

log = logging.getLogger(__name__)

#: Camera ids as the config allows them; checked before any path is built from one.
CAMERA_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
HEALTH_FILE = "health.json"


def check_camera_id(camera_id: str) -> str:
    """``camera_id`` unchanged if it is a valid camera id (letters, digits, ``_.-``, 1-64, not ``.``/``..``)."""
    if not isinstance(camera_id, str) or not CAMERA_ID.match(camera_id) or camera_id in (".", ".."):
        raise ValueError(f"invalid camera id {camera_id!r}: expected 1-64 letters, digits, '_', '.' or '-'")
    return camera_id


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and :func:`os.replace`.

    Raises OSError (the temporary file is removed).
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


class LiveFrameWriter:
    """Writes each camera's latest annotated frame and the cameras' health for the console.

    Args:
        live_dir: the folder (created if missing).
        cameras: the run's camera configs (scene overlay and privacy masks).
        fps: live frames per second per camera, at most: written frames are at least ``1 / fps`` seconds
            apart on ``clock`` (a 5 fps camera at ``fps=2`` gives one frame in three, 1.67 per second).
        max_width: pixels; wider frames are scaled down.
        jpeg_quality: 1-100.
        clock: monotonic seconds, for the rate limit (injectable).
        wall: Unix seconds, for ``updated_at`` and ``last_frame_at`` (injectable).

    Threading: :meth:`on_frame` runs on the analysis thread (one JPEG encode per written frame);
    :meth:`write_health` may run on another thread. Write errors are logged, never raised.
    """

    def __init__(self, live_dir: Path, cameras: Sequence[CameraConfig], *, fps: float, max_width: int,
                 jpeg_quality: int, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        if not fps > 0:
            raise ValueError(f"live fps must be positive, got {fps}")
        self.live_dir = Path(live_dir)
        self.live_dir.mkdir(parents=True, exist_ok=True)
        self.period = 1.0 / fps
        self._renderer = FrameRenderer(cameras, max_width=max_width, jpeg_quality=jpeg_quality)
        self._clock = clock
        self._wall = wall
        self._lock = threading.Lock()
        self._next_due: dict[str, float] = {}
        self._last_frame_at: dict[str, float] = {}
        self._failing: set[str] = set()  # cameras whose last write failed (logged once per failure streak)

    def _due(self, camera_id: str, now: float) -> bool:
        """Rate limit: a camera's frames are written at least ``period`` seconds apart (``clock`` time)."""
        with self._lock:
            due = self._next_due.get(camera_id)
            if due is not None and now < due:
                return False
            self._next_due[camera_id] = now + self.period
            return True

    def on_frame(self, tracked: TrackedFrame) -> None:
        """Runner subscriber: write ``<camera_id>.jpg`` if the camera's next live frame is due."""
        camera_id = tracked.frame.camera_id
        if not self._renderer.knows(camera_id):
            if camera_id not in self._failing:
                self._failing.add(camera_id)
                log.warning("live view: frame of unknown camera %r ignored", camera_id)
            return
        if not self._due(camera_id, self._clock()):
            return
        try:
            write_atomic(self.live_dir / f"{camera_id}.jpg", self._renderer.jpeg(tracked))
        except Exception as err:  # noqa: BLE001 - the live view must never stop the analysis
            if camera_id not in self._failing:
                self._failing.add(camera_id)
                log.error("live view: camera %s: cannot write its live frame: %s", camera_id, err)
            return
        self._failing.discard(camera_id)
        with self._lock:
            self._last_frame_at[camera_id] = self._wall()

    def write_health(self, reports: Iterable[CameraReport],
                     recording: Mapping[str, Mapping[str, int]] | None = None) -> None:
        """Write ``health.json`` from the runner's camera reports (see the module docstring for its fields);
        ``recording``: each camera's recording counters (``frames``, ``dropped``, ``segments``, ``failed``),
        written as its ``recording`` field (null when the camera is not recorded)."""
        with self._lock:
            last = dict(self._last_frame_at)
        cameras = [{
            "id": r.camera_id,
            "health": getattr(r.health, "value", r.health),
            "fps": round(float(r.fps), 3),
            "frames": int(r.frames),
            "dropped": int(r.dropped),
            "reconnects": int(r.reconnects),
            "tracks": int(r.tracks),
            "error": r.error,
            "last_frame_at": last.get(r.camera_id),
            "recording": None if recording is None or r.camera_id not in recording
            else {k: int(v) for k, v in recording[r.camera_id].items()},
        } for r in reports]
        payload = json.dumps({"updated_at": self._wall(), "cameras": cameras}).encode()
        try:
            write_atomic(self.live_dir / HEALTH_FILE, payload)
        except OSError as err:
            log.error("live view: cannot write %s: %s", self.live_dir / HEALTH_FILE, err)


class LiveFrames:
    """The console's reader of a run's live folder. Never raises on a missing or damaged file.

    Threading: stateless reads; call from any thread.
    """

    def __init__(self, live_dir: Path) -> None:
        self.live_dir = Path(live_dir)
        self._warned = False

    def frame(self, camera_id: str) -> bytes | None:
        """The latest JPEG of a camera, or None if there is none yet. ValueError for an invalid camera id."""
        path = self.live_dir / f"{check_camera_id(camera_id)}.jpg"
        try:
            return path.read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None
        except OSError as err:
            log.warning("live view: cannot read %s: %s", path, err)
            return None

    def health(self) -> dict[str, Any]:
        """Parsed ``health.json``; ``{"updated_at": None, "cameras": []}`` when absent or unreadable."""
        path = self.live_dir / HEALTH_FILE
        try:
            data = json.loads(path.read_bytes())
        except FileNotFoundError:
            return {"updated_at": None, "cameras": []}
        except (OSError, ValueError) as err:  # ValueError: bad JSON or bad UTF-8
            return self._unreadable(path, f"{type(err).__name__}: {err}")
        if not isinstance(data, dict) or not isinstance(data.get("cameras"), list):
            return self._unreadable(path, "expected an object with a 'cameras' list")
        self._warned = False
        return data

    def _unreadable(self, path: Path, why: str) -> dict[str, Any]:
        if not self._warned:
            self._warned = True
            log.warning("live view: %s is unreadable (%s); showing no camera health", path, why)
        return {"updated_at": None, "cameras": []}
