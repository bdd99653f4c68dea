"""Live sources: RTSP and HTTP(S) streams, read by a background thread with a latest-frame policy.

A reader thread decodes continuously and keeps only the newest frame; the consumer takes the newest frame
it has not seen yet, at most ``cam.fps`` times a second, and never slows the reader down. Frames the
consumer did not take count as ``dropped``. ``seq`` counts decoded frames since the source was opened
(across reconnects); timestamps are Unix wall time (``time.time()``) at decode.

When the stream drops (end of stream, an error, or no data for ``stall_timeout`` s) the reader reconnects
forever, until :meth:`LiveSource.close`, with exponential backoff (``reconnect_initial`` doubling up to
``reconnect_max``, +-25 % jitter). Nothing here raises on a dropped or unreachable stream: the camera may
come back. Health (:meth:`LiveSource.status`):

* STARTING: no frame yet and no failure yet.
* ONLINE: frames arrive at about the stream's nominal rate.
* DEGRADED: frames arrive, but the stream reconnected in the last :data:`RECENT_RECONNECT_S` s, or the
  decode rate over the last :data:`RATE_WINDOW_S` s is below half the nominal rate, or no frame came for
  over a second (a stall the reader has not yet given up on).
* OFFLINE: disconnected, reconnecting; ``error`` names the URL and the reason.
* FINISHED: after ``close()``.

``reconnects`` counts re-open attempts after a failure or drop (so it grows during an outage);
``error`` keeps the last failure, also after the stream is back.

Decoder: PyAV (``av``, the ``stream`` extra) when installed, else OpenCV's FFmpeg backend. PyAV is
preferred because its open/read timeouts are enforced by an interrupt callback on every protocol, options
(``rtsp_transport=tcp``) are per stream rather than a process-wide environment variable, and failures come
back as exceptions carrying FFmpeg's reason and the URL ("Connection refused", "404 Not Found") for the
operator; OpenCV's ``read()`` only returns False.
"""

from __future__ import annotations

import collections
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from typing import Protocol

import numpy as np

from analytics.config import CameraConfig
from analytics.sources.privacy import PrivacyMasker
from analytics.types import Frame, Health, SourceStatus

logger = logging.getLogger(__name__)

#: A stream that reconnected less than this many seconds ago reports DEGRADED.
RECENT_RECONNECT_S = 10.0
#: Window over which the decode rate is measured against the nominal rate.
RATE_WINDOW_S = 5.0
#: Longest single wait of the iterator, so close() is honoured promptly.
WAIT_SLICE_S = 0.2


class StreamDropped(Exception):
    """The stream ended or could not be used; the reader reconnects."""


class Stream(Protocol):
    """An opened live stream."""

    nominal_fps: float | None

    def read(self) -> np.ndarray | None:
        """The next decoded frame, (H, W, 3) uint8 BGR, freshly allocated; None at end of stream."""

    def close(self) -> None: ...


class PyAVStream:
    """A stream decoded by PyAV with open and read timeouts (seconds)."""

    def __init__(self, url: str, *, open_timeout: float, read_timeout: float) -> None:
        import av

        options = {"rw_timeout": str(int(read_timeout * 1e6))}
        if url.lower().startswith(("rtsp://", "rtsps://")):
            options["rtsp_transport"] = "tcp"
        self._container = av.open(url, options=options, timeout=(open_timeout, read_timeout))
        if not self._container.streams.video:
            self._container.close()
            raise StreamDropped(f"{url} has no video stream")
        stream = self._container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate
        self.nominal_fps = float(rate) if rate else None
        self._frames = self._container.decode(stream)

    def read(self) -> np.ndarray | None:
        frame = next(self._frames, None)
        return None if frame is None else frame.to_ndarray(format="bgr24")

    def close(self) -> None:
        self._container.close()


class OpenCVStream:
    """A stream decoded by OpenCV's FFmpeg backend (fallback when PyAV is not installed)."""

    def __init__(self, url: str, *, open_timeout: float, read_timeout: float) -> None:
        import cv2

        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(open_timeout * 1000),
                  cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(read_timeout * 1000)]
        self._cap = cv2.VideoCapture(url, cv2.CAP_FFMPEG, params)
        if not self._cap.isOpened():
            self._cap.release()
            raise StreamDropped(f"cannot open {url} (OpenCV/FFmpeg gives no reason)")
        fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.nominal_fps = fps if 0.0 < fps < 1000.0 else None

    def read(self) -> np.ndarray | None:
        ok, image = self._cap.read()
        return image if ok else None

    def close(self) -> None:
        self._cap.release()


def default_backend() -> str:
    """``"pyav"`` when PyAV imports, else ``"opencv"``."""
    try:
        import av  # noqa: F401
    except ImportError:
        return "opencv"
    return "pyav"


def _stream_errors() -> tuple[type[BaseException], ...]:
    errors: tuple[type[BaseException], ...] = (StreamDropped, OSError)
    try:
        import av
    except ImportError:
        return errors
    return (*errors, av.FFmpegError)


#: Opens a stream: ``(url, open_timeout=s, read_timeout=s) -> Stream``; raises on failure.
StreamFactory = Callable[..., Stream]


class _State:
    """Counters and health inputs shared by the reader thread and the consumer (guarded by ``cond``)."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.latest: Frame | None = None  # newest decoded frame not yet taken
        self.decoded = 0  # frames decoded since start; also the next seq
        self.yielded = 0
        self.connected = False  # a frame arrived since the last (re)connect
        self.ever_failed = False
        self.reconnects = 0
        self.last_reconnect: float | None = None  # monotonic time of the last successful reconnect
        self.error: str | None = None
        self.nominal_fps: float | None = None
        self.recent: collections.deque[float] = collections.deque()  # monotonic decode times
        self.connected_at = 0.0  # monotonic time of the first frame of this connection
        self.closed = False


class LiveSource:
    """One live camera (see the module docstring). The reader thread starts on construction."""

    def __init__(self, cam: CameraConfig, *, backend: str | None = None,
                 stream_factory: StreamFactory | None = None) -> None:
        """Start reading ``cam.source``.

        Args:
            cam: the camera; ``fps`` is the maximum analysis rate, ``reconnect_*`` and ``stall_timeout`` apply.
            backend: ``"pyav"`` or ``"opencv"``; None picks PyAV when installed.
            stream_factory: opens the stream instead of the backend (tests, custom transports).
        """
        backend = backend or default_backend()
        if backend not in ("pyav", "opencv"):
            raise ValueError(f"unknown live backend {backend!r}; expected 'pyav' or 'opencv'")
        self.camera_id = cam.id
        self.url = cam.source
        self.backend = backend
        self._factory: StreamFactory = stream_factory or (PyAVStream if backend == "pyav" else OpenCVStream)
        self._cam = cam
        self._masker = PrivacyMasker(cam.privacy_masks, camera_id=cam.id)
        self._errors = _stream_errors()
        self._s = _State()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"live-{cam.id}", daemon=True)
        self._thread.start()

    # ---- consumer side -------------------------------------------------------------------------------------

    def __iter__(self) -> Iterator[Frame]:
        """Yield the newest frame not yet yielded, at most ``cam.fps`` a second; waits (never raises) offline.

        Ends only when :meth:`close` is called.
        """
        interval = 1.0 / self._cam.fps if self._cam.fps else 0.0
        next_due = 0.0
        while True:
            if not self._sleep_until(next_due):
                return
            frame = self._take_newest()
            if frame is None:
                return
            next_due = time.monotonic() + interval
            yield frame

    def _sleep_until(self, due: float) -> bool:
        while (left := due - time.monotonic()) > 0:
            if self._stop.wait(min(left, WAIT_SLICE_S)):
                return False
        return not self._stop.is_set()

    def _take_newest(self) -> Frame | None:
        s = self._s
        with s.cond:
            while not s.closed and s.latest is None:
                s.cond.wait(WAIT_SLICE_S)
            if s.closed or s.latest is None:
                return None
            frame, s.latest = s.latest, None
            s.yielded += 1
        return frame

    def status(self) -> SourceStatus:
        s = self._s
        with s.cond:
            pending = 1 if s.latest is not None else 0
            return SourceStatus(self.camera_id, self._health(), frames=s.yielded,
                                dropped=s.decoded - s.yielded - pending, reconnects=s.reconnects, error=s.error)

    def _health(self) -> Health:
        """Current health; caller holds the lock."""
        s = self._s
        if s.closed:
            return Health.FINISHED
        if not s.connected:
            return Health.OFFLINE if s.ever_failed else Health.STARTING
        now = time.monotonic()
        if s.last_reconnect is not None and now - s.last_reconnect < RECENT_RECONNECT_S:
            return Health.DEGRADED
        while s.recent and s.recent[0] < now - RATE_WINDOW_S:
            s.recent.popleft()
        nominal = s.nominal_fps or 0.0
        if not s.recent or now - s.recent[-1] > max(1.0, 3.0 / nominal if nominal else 0.0):
            return Health.DEGRADED  # stalling; the reader drops the stream after stall_timeout
        measured_for = min(now - s.connected_at, RATE_WINDOW_S)
        if nominal and measured_for >= RATE_WINDOW_S / 2 and len(s.recent) < 0.5 * nominal * measured_for:
            return Health.DEGRADED
        return Health.ONLINE

    def close(self) -> None:
        """Stop the reader and end the iteration promptly. Idempotent, any thread.

        The reader thread may be blocked in a network read for up to ``stall_timeout`` s; it is a daemon
        thread and closes its stream itself when that read returns, so close() waits for it at most a second.
        """
        self._stop.set()
        with self._s.cond:
            self._s.closed = True
            self._s.latest = None
            self._s.cond.notify_all()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=1.0)

    # ---- reader thread -------------------------------------------------------------------------------------

    def _run(self) -> None:
        delay = self._cam.reconnect_initial
        attempt = 0
        while not self._stop.is_set():
            if attempt:
                with self._s.cond:
                    self._s.reconnects += 1
            attempt += 1
            if self._session():
                delay = self._cam.reconnect_initial
            if self._stop.is_set():
                break
            wait = delay * random.uniform(0.75, 1.25)
            logger.debug("camera %s: reconnecting to %s in %.2f s", self.camera_id, self.url, wait)
            self._stop.wait(wait)
            delay = min(delay * 2.0, self._cam.reconnect_max)
        logger.debug("camera %s: reader stopped", self.camera_id)

    def _session(self) -> bool:
        """Open the stream and decode until it drops. True if at least one frame arrived."""
        got_frames = False
        stream: Stream | None = None
        try:
            stream = self._open()
            with self._s.cond:
                self._s.nominal_fps = stream.nominal_fps
            while not self._stop.is_set():
                image = stream.read()
                if image is None:
                    raise StreamDropped(f"{self.url}: end of stream")
                self._publish(image)
                got_frames = True
        except self._errors as err:
            self._on_drop(err)
        except Exception as err:  # noqa: BLE001 - a decoder bug must not kill the reader: log, reconnect
            self._on_drop(err, unexpected=True)
        finally:
            if stream is not None:
                stream.close()
        return got_frames

    def _open(self) -> Stream:
        stall = self._cam.stall_timeout
        return self._factory(self.url, open_timeout=max(2.0 * stall, 5.0), read_timeout=stall)

    def _publish(self, image: np.ndarray) -> None:
        now = time.time()
        image = self._masker.apply(image, inplace=True)  # a fresh array per decode, see PrivacyMasker
        s = self._s
        with s.cond:
            s.latest = Frame(self.camera_id, s.decoded, now, image)
            s.decoded += 1
            s.recent.append(time.monotonic())
            if not s.connected:
                self._on_connect()
            s.cond.notify_all()

    def _on_connect(self) -> None:
        """First frame after (re)connecting; caller holds the lock."""
        s = self._s
        s.connected = True
        s.connected_at = time.monotonic()
        s.recent.clear()
        s.recent.append(s.connected_at)
        if s.ever_failed:
            s.last_reconnect = s.connected_at
            logger.info("camera %s: stream %s is back (after %d reconnect attempts)",
                        self.camera_id, self.url, s.reconnects)
        else:
            logger.info("camera %s: stream %s online", self.camera_id, self.url)

    def _on_drop(self, err: BaseException, *, unexpected: bool = False) -> None:
        """The stream failed to open or dropped: go OFFLINE; warn once per outage, not per retry.

        ``unexpected`` errors (not a network or decoder error: a bug) are logged with their traceback.
        """
        reason = str(err) or type(err).__name__
        message = reason if self.url in reason else f"{self.url}: {reason}"
        s = self._s
        with s.cond:
            new_outage = s.connected or not s.ever_failed
            s.connected = False
            s.ever_failed = True
            s.error = message
        if self._stop.is_set():
            return
        if new_outage and unexpected:
            logger.error("camera %s: unexpected error reading %s: %s; reconnecting with backoff",
                         self.camera_id, self.url, message, exc_info=err)
        elif new_outage:
            logger.warning("camera %s: stream lost: %s; reconnecting with backoff", self.camera_id, message)
        else:
            logger.debug("camera %s: reconnect failed: %s", self.camera_id, message)
