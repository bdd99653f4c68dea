"""H.264 MP4 writing and MP4 reading through PyAV, shared by alert evidence, recording segments and exports.

Files are browser-playable: H.264 (libx264), ``yuv420p``, even width and height, ``moov`` atom first. Every file
is written to a temporary file in its folder and moved into place when complete, so a reader never sees half a
file. Images are BGR ``(H, W, 3) uint8`` arrays (OpenCV's layout).

PyAV is imported only when a file is opened, so importing this module is light.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

#: x264 settings that look fine for evidence and encode fast enough for one thread serving many cameras.
X264_DEFAULTS: Mapping[str, str] = {"crf": "23", "preset": "veryfast"}


class Mp4Writer:
    """Encode BGR frames into an H.264 MP4 at ``path``, atomically.

    The first image fixes the size: its width and height cut down to even numbers (yuv420p); later images of
    another size are resized to it. Timestamps: without ``pts``, frame ``i`` is shown at ``i / rate`` seconds;
    with ``time_base`` set, each :meth:`write` may pass ``pts`` (integer, units of ``time_base``, strictly
    increasing) for a variable frame rate (``rate`` then only guides the encoder's rate control).

    Use as a context manager: leaving the block normally finishes the file and moves it into place; leaving it
    with an exception (or calling :meth:`abort`) removes the temporary file.

    Args:
        path: the final file.
        rate: nominal frames per second.
        options: x264 options (``crf``, ``preset``...); :data:`X264_DEFAULTS` if None.
        time_base: seconds per ``pts`` unit for explicit timestamps (e.g. ``Fraction(1, 1000)``: milliseconds).
    """

    def __init__(self, path: Path, *, rate: Fraction | float, options: Mapping[str, str] | None = None,
                 time_base: Fraction | None = None) -> None:
        import av

        self.path = Path(path)
        self.written = 0
        self._rate = Fraction(rate).limit_denominator(1000)
        if self._rate <= 0:
            raise ValueError(f"the frame rate must be positive, got {rate}")
        self._options = dict(X264_DEFAULTS if options is None else options)
        self._time_base = time_base
        self._size: tuple[int, int] | None = None  # (width, height) of the first image
        self._last_pts = -1
        fd, self._tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
        os.close(fd)
        try:
            self._container = av.open(self._tmp, mode="w", format="mp4", options={"movflags": "+faststart"})
            self._stream = self._container.add_stream("libx264", rate=self._rate)
        except BaseException:
            self._remove_tmp()
            raise
        self._done = False

    def write(self, image: np.ndarray, *, pts: int | None = None) -> None:
        """Encode one BGR ``(H, W, 3) uint8`` image; ``pts`` in units of ``time_base`` (needs ``time_base``)."""
        import av
        import cv2

        if self._done:
            raise ValueError(f"{self.path}: the writer is closed")
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected a BGR (H, W, 3) uint8 image, got {image.shape} {image.dtype}")
        if self._size is None:
            self._start(image.shape[1], image.shape[0])
        elif (image.shape[1], image.shape[0]) != self._size:
            image = cv2.resize(image, self._size, interpolation=cv2.INTER_AREA)
        stream = self._stream
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image[: stream.height, : stream.width]),
                                           format="bgr24")
        if pts is None:
            frame.pts = self.written
        else:
            if self._time_base is None:
                raise ValueError("explicit pts needs the writer's time_base")
            if pts <= self._last_pts:
                raise ValueError(f"pts must increase: {pts} after {self._last_pts}")
            frame.pts = self._last_pts = int(pts)
            frame.time_base = self._time_base
        self._container.mux(stream.encode(frame))
        self.written += 1

    def _start(self, width: int, height: int) -> None:
        if width < 2 or height < 2:
            raise ValueError(f"an image of {width}x{height} pixels is too small to encode")
        self._size = (width, height)
        stream = self._stream
        stream.width, stream.height = width - width % 2, height - height % 2
        stream.pix_fmt = "yuv420p"
        stream.options = dict(self._options)
        if self._time_base is not None:
            stream.codec_context.time_base = self._time_base
            stream.time_base = self._time_base

    def close(self) -> int:
        """Flush the encoder, finish the file and move it into place; returns the frames written.

        Raises ValueError when no frame was written (nothing is left behind), OSError / ``av.error.FFmpegError``
        when finishing fails (the temporary file is removed).
        """
        if self._done:
            return self.written
        self._done = True
        try:
            if not self.written:
                raise ValueError(f"no frame to write; {self.path} not written")
            self._container.mux(self._stream.encode(None))
            self._container.close()
            os.replace(self._tmp, self.path)
        except BaseException:
            self._close_quietly()
            self._remove_tmp()
            raise
        return self.written

    def abort(self) -> None:
        """Drop the file being written (idempotent)."""
        if not self._done:
            self._done = True
            self._close_quietly()
            self._remove_tmp()

    def _close_quietly(self) -> None:
        try:
            self._container.close()
        except Exception:  # noqa: BLE001 - the file is being dropped; the first error is the one raised
            log.debug("video_io: closing %s after an error failed", self._tmp, exc_info=True)

    def _remove_tmp(self) -> None:
        try:
            os.unlink(self._tmp)
        except OSError:
            pass

    def __enter__(self) -> Mp4Writer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


@dataclass(frozen=True, slots=True)
class DecodedFrame:
    """One decoded frame: ``index`` in presentation order from 0, ``time`` in seconds of the file's clock
    (None when the frame has no timestamp), ``image`` BGR ``(H, W, 3) uint8``."""

    index: int
    time: float | None
    image: np.ndarray = field(repr=False)


def read_frames(path: Path, *, threads: int | None = None) -> Iterator[DecodedFrame]:
    """Decode the first video stream of ``path`` frame by frame (memory: one frame at a time).

    ``threads``: decoder threads (None: FFmpeg's choice). Raises OSError / ``av.error.FFmpegError`` for a file
    that cannot be opened or decoded, ValueError for a file without a video stream.
    """
    import av

    with av.open(str(path)) as container:
        if not container.streams.video:
            raise ValueError(f"{path} has no video stream")
        stream = container.streams.video[0]
        if threads is not None:
            stream.thread_count = threads
        for i, frame in enumerate(container.decode(stream)):
            yield DecodedFrame(i, None if frame.pts is None else float(frame.time),
                               frame.to_ndarray(format="bgr24"))


def probe(path: Path) -> dict[str, Any]:
    """``{"width", "height", "frames", "duration", "codec"}`` of the first video stream of ``path`` (duration in
    seconds, None if unknown; frames as the container states it, 0 if it does not)."""
    import av

    with av.open(str(path)) as container:
        if not container.streams.video:
            raise ValueError(f"{path} has no video stream")
        stream = container.streams.video[0]
        duration = None
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        return {"width": stream.codec_context.width, "height": stream.codec_context.height,
                "frames": int(stream.frames or 0), "duration": duration, "codec": stream.codec_context.name}
