"""File sources: video files (OpenCV/FFmpeg) and image sequences (MOTChallenge folders, plain image folders).

Timestamps are media time, ``seq / source_fps`` seconds from the start of the file. ``seq`` counts every
frame of the file (skipped frames leave gaps) and keeps counting across loops, so time never goes back.

Analysis rate (:class:`~analytics.config.CameraConfig`):

* ``benchmark``: every frame, as fast as possible (``fps`` and ``realtime`` are ignored).
* ``fps`` set: only the first frame at or after each analysis tick (``k / fps`` s of media time) is decoded
  and yielded; the others are skipped without a full decode where the decoder allows (``grab()``) and
  counted as ``dropped``.
* ``fps`` null: every frame.
* ``realtime``: frames are paced to media time as a live camera would deliver them; a consumer that falls
  more than one source frame behind loses the stale frames (latest-frame policy, counted as ``dropped``).
* ``loop``: start again at the end (the file is reopened).
"""

from __future__ import annotations

import configparser
import logging
import re
import threading
import time
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from analytics.config import CameraConfig
from analytics.sources.base import SourceError
from analytics.sources.privacy import PrivacyMasker
from analytics.types import Frame, Health, SourceStatus

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp"})
DEFAULT_IMAGE_FPS = 25.0
#: Longest single sleep while pacing, so close() is honoured promptly.
_SLEEP_SLICE = 0.1


class FrameReader(Protocol):
    """One pass over a file's frames, in decode order."""

    fps: float
    description: str

    def skip(self) -> bool:
        """Advance one frame, decoding as little as possible. False at the end."""

    def read(self) -> np.ndarray | None:
        """Decode the next frame: (H, W, 3) uint8 BGR, or None at the end."""

    def close(self) -> None: ...


class VideoReader:
    """A video file through ``cv2.VideoCapture`` (FFmpeg backend); ``skip`` uses ``grab()`` only."""

    def __init__(self, path: Path, *, camera_id: str) -> None:
        self.description = f"video file {path}"
        self._cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
        if not self._cap.isOpened():
            self._cap.release()
            raise SourceError(f"camera {camera_id}: cannot decode {path}: not a readable video file "
                              f"(OpenCV/FFmpeg could not open it)")
        ok, first = self._cap.read()
        if not ok or first is None:
            self._cap.release()
            raise SourceError(f"camera {camera_id}: cannot decode {path}: the file opens but no frame decodes "
                              f"(corrupt or truncated)")
        self._first: np.ndarray | None = first
        fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        if not np.isfinite(fps) or fps <= 0.0 or fps > 1000.0:
            logger.warning("camera %s: %s reports no usable frame rate (%r); assuming %.0f fps",
                           camera_id, path, fps, DEFAULT_IMAGE_FPS)
            fps = DEFAULT_IMAGE_FPS
        self.fps = fps

    def skip(self) -> bool:
        if self._first is not None:
            self._first = None
            return True
        return bool(self._cap.grab())

    def read(self) -> np.ndarray | None:
        if self._first is not None:
            image, self._first = self._first, None
            return image
        ok, image = self._cap.read()
        return image if ok else None

    def close(self) -> None:
        self._cap.release()


def _natural_key(path: Path) -> list[int | str]:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


class ImageSequenceReader:
    """Sorted image files; ``skip`` does not read the file at all. Unreadable images are skipped with a warning."""

    def __init__(self, files: list[Path], fps: float, *, camera_id: str, description: str) -> None:
        self.fps = fps
        self.description = description
        self._files = files
        self._camera_id = camera_id
        self._next = 0
        first = cv2.imread(str(files[0]), cv2.IMREAD_COLOR)
        if first is None:
            raise SourceError(f"camera {camera_id}: cannot decode {files[0]}: not a readable image "
                              f"(first image of {description})")
        self._first: np.ndarray | None = first

    def skip(self) -> bool:
        if self._next >= len(self._files):
            return False
        self._next += 1
        self._first = None
        return True

    def read(self) -> np.ndarray | None:
        while self._next < len(self._files):
            path = self._files[self._next]
            self._next += 1
            image = self._first if self._first is not None else cv2.imread(str(path), cv2.IMREAD_COLOR)
            self._first = None
            if image is not None:
                return image
            logger.warning("camera %s: cannot decode image %s; skipping it", self._camera_id, path)
        return None

    def close(self) -> None:
        self._first = None


def list_images(folder: Path) -> list[Path]:
    """Image files (jpg, jpeg, png, bmp) directly in ``folder``, in natural order (``2.jpg`` before ``10.jpg``)."""
    return sorted((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()),
                  key=_natural_key)


def read_seqinfo(folder: Path, *, camera_id: str) -> tuple[Path, float]:
    """The image folder and frame rate of a MOTChallenge sequence (``seqinfo.ini`` keys imDir, frameRate)."""
    ini = folder / "seqinfo.ini"
    parser = configparser.ConfigParser()
    try:
        parser.read(ini, encoding="utf-8")
        section = parser["Sequence"]
        fps = float(section["frameRate"])
    except (configparser.Error, KeyError, ValueError) as err:
        raise SourceError(f"camera {camera_id}: {ini} is not a valid MOTChallenge seqinfo.ini: expected a "
                          f"[Sequence] section with a numeric frameRate ({type(err).__name__}: {err})") from None
    if fps <= 0:
        raise SourceError(f"camera {camera_id}: {ini}: frameRate must be positive, got {fps}")
    return folder / section.get("imDir", "img1"), fps


def image_folder_reader(folder: Path, *, camera_id: str, default_fps: float = DEFAULT_IMAGE_FPS,
                        ) -> ImageSequenceReader:
    """A reader for a MOTChallenge sequence folder (seqinfo.ini + img1/) or a plain image folder."""
    if (folder / "seqinfo.ini").is_file():
        image_dir, fps = read_seqinfo(folder, camera_id=camera_id)
        kind = "MOTChallenge sequence"
    else:
        image_dir, fps, kind = folder, default_fps, "image folder"
    if not image_dir.is_dir():
        raise SourceError(f"camera {camera_id}: {kind} {folder} has no image folder {image_dir}")
    files = list_images(image_dir)
    if not files:
        raise SourceError(f"camera {camera_id}: {kind} {image_dir} holds no images; expected "
                          f"{'/'.join(sorted(e[1:] for e in IMAGE_EXTENSIONS))} files")
    return ImageSequenceReader(files, fps, camera_id=camera_id, description=f"{kind} {folder}")


class FileSource:
    """Frames of a video file or image sequence for one camera (see the module docstring for rate modes).

    The reader factory is called once when the source is built (so a missing or corrupt input raises
    :class:`SourceError` immediately) and again for each loop. Iterate from one thread; ``close()`` may be
    called from any thread and stops the iteration at the next frame.
    """

    def __init__(self, cam: CameraConfig, open_reader: Callable[[], FrameReader]) -> None:
        self.camera_id = cam.id
        self._cam = cam
        self._open_reader = open_reader
        self._reader: FrameReader | None = open_reader()
        self.fps = self._reader.fps
        self._masker = PrivacyMasker(cam.privacy_masks, camera_id=cam.id)
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._started = False
        self._health = Health.STARTING
        self._frames = 0
        self._dropped = 0
        logger.info("camera %s: opened %s at %.3g fps", cam.id, self._reader.description, self.fps)

    def status(self) -> SourceStatus:
        with self._lock:
            return SourceStatus(self.camera_id, self._health, frames=self._frames, dropped=self._dropped)

    def close(self) -> None:
        """Stop the iteration (at the next frame) and release the decoder. Idempotent, any thread."""
        self._closed.set()
        with self._lock:
            if not self._started and self._reader is not None:
                self._reader.close()
                self._reader = None
            if self._health in (Health.STARTING, Health.ONLINE):
                self._health = Health.FINISHED

    def __iter__(self) -> Iterator[Frame]:
        with self._lock:
            if self._started:
                raise SourceError(f"camera {self.camera_id}: a file source can be iterated only once")
            self._started = True
        return self._frames_gen()

    def _frames_gen(self) -> Iterator[Frame]:
        seq = 0
        clock = _Pacer(self.fps) if self._cam.realtime and not self._cam.benchmark else None
        ticks = _Ticker(self.fps, None if self._cam.benchmark else self._cam.fps)
        while not self._closed.is_set():
            reader = self._reader if self._reader is not None else self._open_reader()
            self._reader = None
            try:
                start = seq
                seq = yield from self._one_pass(reader, seq, ticks, clock)
            finally:
                reader.close()
            if not self._cam.loop or seq == start:
                break
            logger.debug("camera %s: looping %s", self.camera_id, reader.description)
        with self._lock:
            self._health = Health.FINISHED
        logger.info("camera %s: finished after %d frames (%d dropped)", self.camera_id, self._frames, self._dropped)

    def _one_pass(self, reader: FrameReader, seq: int, ticks: _Ticker,
                  clock: _Pacer | None) -> Generator[Frame, None, int]:
        """Yield the analysed frames of one pass over ``reader``; ``seq`` is the global index of its first frame.

        Returns the global index after the pass's last frame.
        """
        while not self._closed.is_set():
            wanted = ticks.due(seq)
            if wanted and clock is not None and clock.is_stale(seq):
                wanted = False  # realtime consumer fell behind: a live camera would have dropped this frame
            if not wanted:
                if not reader.skip():
                    break
                self._count(dropped=1)
            else:
                image = reader.read()
                if image is None:
                    break
                ticks.taken(seq)
                if clock is not None and not clock.wait_until_due(seq, self._closed):
                    break
                image = self._masker.apply(image, inplace=True)  # a fresh array per decode, see PrivacyMasker
                self._count(frames=1)
                yield Frame(self.camera_id, seq, seq / self.fps, image)
            seq += 1
        return seq

    def _count(self, *, frames: int = 0, dropped: int = 0) -> None:
        with self._lock:
            self._frames += frames
            self._dropped += dropped
            if frames and self._health is Health.STARTING:
                self._health = Health.ONLINE


class _Ticker:
    """Analysis ticks every ``1 / rate`` s of media time; a frame is due when its media time reaches the next tick.

    Integer arithmetic on frame indices avoids float drift over long files: frame ``seq`` is at
    ``seq / source_fps`` s and tick ``k`` at ``k / rate`` s.
    """

    def __init__(self, source_fps: float, rate: float | None) -> None:
        self._source_fps = source_fps
        self._rate = rate if rate is not None and rate < source_fps else None
        self._next_tick = 0

    def due(self, seq: int) -> bool:
        if self._rate is None:
            return True
        return seq * self._rate >= self._next_tick * self._source_fps - 1e-6

    def taken(self, seq: int) -> None:
        if self._rate is not None:
            self._next_tick = int(np.floor(seq * self._rate / self._source_fps + 1e-6)) + 1


class _Pacer:
    """Paces frames to media time against the wall clock, started at the first frame."""

    def __init__(self, source_fps: float) -> None:
        self._source_fps = source_fps
        self._origin: tuple[float, int] | None = None  # (monotonic time, seq) of the first paced frame

    def _due(self, seq: int) -> float:
        if self._origin is None:
            self._origin = (time.monotonic(), seq)
        t0, seq0 = self._origin
        return t0 + (seq - seq0) / self._source_fps

    def is_stale(self, seq: int) -> bool:
        """True when the frame after ``seq`` is already due: the consumer is more than a frame behind."""
        return time.monotonic() >= self._due(seq) + 1.0 / self._source_fps

    def wait_until_due(self, seq: int, stop: threading.Event) -> bool:
        """Sleep (in short slices) until frame ``seq`` is due. False if ``stop`` was set meanwhile."""
        due = self._due(seq)
        while (left := due - time.monotonic()) > 0:
            if stop.wait(min(left, _SLEEP_SLICE)):
                return False
        return not stop.is_set()


def open_file_source(cam: CameraConfig, *, default_fps: float = DEFAULT_IMAGE_FPS) -> FileSource:
    """Open a video file, MOTChallenge sequence folder or image folder for ``cam``.

    Raises:
        SourceError: the path is missing, holds no images, or cannot be decoded; the message names the
            camera and the path.
    """
    path = Path(cam.source).expanduser()
    if not path.exists():
        raise SourceError(f"camera {cam.id}: source {path} does not exist; expected a video file (mp4, avi, mkv, "
                          f"mov...), a MOTChallenge sequence folder (seqinfo.ini + img1/), an image folder, "
                          f"or an rtsp:// / http(s):// URL")
    if path.is_dir():
        return FileSource(cam, lambda: image_folder_reader(path, camera_id=cam.id, default_fps=default_fps))
    if path.suffix.lower() in IMAGE_EXTENSIONS:
        raise SourceError(f"camera {cam.id}: source {path} is a single image; expected a video file or a "
                          f"folder of images")
    return FileSource(cam, lambda: VideoReader(path, camera_id=cam.id))
