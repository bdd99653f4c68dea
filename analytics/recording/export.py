"""Requisition exports: one watermarked H.264 clip per camera and a signed manifest (chain of custody).

An export of requisition ``REF`` is the folder ``<out_dir>/<REF with '/' etc. -> '_'>/`` holding:

* ``<camera>.mp4`` for each camera with footage in the requisition's time range: the frames of its held segments
  whose wall time lies in ``[start, end)``, decoded and re-encoded with a visible watermark on every frame
  (reference, camera, the frame's UTC time, ``EXPORT <user> <when>``; :mod:`analytics.recording.watermark`).
  Segments are recorded already privacy-masked, and re-encoding decoded frames keeps the private zones blank.
  A frame's wall time maps its media time linearly from the segment's ``[start, end]`` onto
  ``[wall_start, wall_end]`` (frames without a timestamp: by index). Timestamps in the file are the wall times
  (milliseconds after the first frame), so it plays at the recorded pace.
* ``manifest.json``: the requisition, the time range, every file with its SHA-256, size, frame count, first and
  last frame times and source segments (each with its own SHA-256), the cameras without footage, who exported
  and when, the software version and the signing public key (raw, base64) with its fingerprint. The bytes are
  canonical JSON (:func:`~analytics.recording.signing.canonical_json`).
* ``manifest.sig``: the Ed25519 signature of the exact bytes of ``manifest.json``, base64, one line.

The folder is built under a temporary name and renamed when complete; the export is audited
(``requisition.export``, with the manifest's SHA-256). :mod:`analytics.recording.verify` checks an export.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from analytics import __version__
from analytics.recording.index import RecordingIndex, Requisition, Segment
from analytics.recording.signing import (  # load_or_create_key: re-exported for the callers of exports
    canonical_json,
    load_or_create_key,
    public_key_fingerprint,
    public_key_raw,
)
from analytics.recording.watermark import CORNERS, draw_watermark, style_for, utc_iso

__all__ = ["FORMAT", "MANIFEST", "SIGNATURE", "export_folder", "export_name", "export_requisition",
           "load_or_create_key", "public_key_fingerprint", "segment_frames", "sha256_file"]

log = logging.getLogger(__name__)

FORMAT = "analytics-requisition-export/1"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
#: Timestamps in exported clips: milliseconds.
_TIME_BASE = Fraction(1, 1000)
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
_FALLBACK_FPS = 25.0


def export_name(text: str) -> str:
    """``text`` made a safe file or folder name: characters other than letters, digits, ``_.-`` become ``_``."""
    name = _UNSAFE.sub("_", text)
    return name if name.strip(".") else name.replace(".", "_")


def export_folder(out_dir: Path, reference: str) -> Path:
    """The folder the export of requisition ``reference`` gets under ``out_dir``."""
    return Path(out_dir) / export_name(reference)


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def export_requisition(index: RecordingIndex, reference: str, out_dir: Path, *, key: Ed25519PrivateKey,
                       user: str, clock: Callable[[], float] = time.time, corner: str = "bottom-left",
                       x264: Mapping[str, str] | None = None) -> Path:
    """Export requisition ``reference``'s held footage into ``out_dir`` (see the module docstring); returns the
    export folder.

    Args:
        index: the recordings' index (its store receives the audit entry).
        key: the export signing key (:func:`~analytics.recording.signing.load_or_create_key`).
        user: who exports (in the watermark, the manifest and the audit log).
        clock: Unix seconds of the export.
        corner: where the watermark goes (``bottom-left``, ``bottom-right``, ``top-left``, ``top-right``).
        x264: encoder options; None: ``crf`` 20, ``preset`` veryfast.

    Raises:
        KeyError: no such requisition.
        ValueError: the requisition was released, none of its cameras has footage in its time range, or an
            unknown corner.
        FileExistsError: the export folder already exists.
        OSError: writing failed (nothing is left behind).
    """
    if corner not in CORNERS:
        raise ValueError(f"unknown watermark corner {corner!r}; expected one of {', '.join(CORNERS)}")
    req = index.requisition(reference)
    if req is None:
        raise KeyError(f"no requisition {reference!r}")
    if not req.open:
        raise ValueError(f"requisition {reference!r} was released by {req.released_by!r} at "
                         f"{utc_iso(req.released_at or 0.0)}; its footage is no longer held, so it is not exported")
    exported_at = float(clock())
    out_dir = Path(out_dir)
    folder = export_folder(out_dir, reference)
    if folder.exists():
        raise FileExistsError(f"export folder {folder} already exists; remove it or export elsewhere")
    out_dir.mkdir(parents=True, exist_ok=True)
    segments = index.requisition_segments(reference)
    tmp = Path(tempfile.mkdtemp(dir=out_dir, prefix=f".{folder.name}.", suffix=".partial"))
    try:
        manifest = _write_files(req, segments, tmp, user=user, exported_at=exported_at, corner=corner,
                                x264=x264 or {"crf": "20", "preset": "veryfast"}, key=key)
        data = canonical_json(manifest)
        (tmp / MANIFEST).write_bytes(data)
        (tmp / SIGNATURE).write_bytes(base64.b64encode(key.sign(data)) + b"\n")
        os.rename(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    try:
        index.store.audit(user, "requisition.export", reference, {
            "manifest_sha256": hashlib.sha256(data).hexdigest(), "folder": str(folder),
            "files": [f["name"] for f in manifest["files"]],
            "missing_cameras": [m["camera"] for m in manifest["missing"]],
            "key_fingerprint": manifest["signing_key"]["fingerprint"]}, at=exported_at)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)  # no export without its audit entry
        raise
    log.info("requisition %s exported to %s by %s (%d files)", reference, folder, user, len(manifest["files"]))
    return folder


def _write_files(req: Requisition, segments: Sequence[Segment], folder: Path, *, user: str, exported_at: float,
                 corner: str, x264: Mapping[str, str], key: Ed25519PrivateKey) -> dict[str, Any]:
    """Encode each camera's clip into ``folder``; returns the manifest (not yet written)."""
    files: list[dict[str, Any]] = []
    missing: list[dict[str, Any]] = []
    names = _file_names(req.cameras)
    for camera in req.cameras:
        own = sorted((s for s in segments if s.camera_id == camera), key=lambda s: (s.wall_start, s.id))
        clip = _CameraClip(req, camera, folder / names[camera], user=user, exported_at=exported_at, corner=corner)
        entry = clip.encode(own, x264)
        if entry is None:
            reason = "no recorded footage in the time range"
            if clip.unreadable:
                reason += f" ({len(clip.unreadable)} held segment(s) could not be read)"
            missing.append({"camera": camera, "reason": reason, "unreadable_segments": clip.unreadable})
        else:
            files.append(entry)
    if not files:
        raise ValueError(f"requisition {req.id!r} has no recorded footage of {', '.join(req.cameras)} between "
                         f"{utc_iso(req.start)} and {utc_iso(req.end)}; nothing to export")
    return {
        "format": FORMAT,
        "requisition": {"reference": req.id, "authority": req.authority, "officer": req.officer,
                        "reason": req.reason, "cameras": list(req.cameras), "created_by": req.created_by,
                        "created_at": req.created_at, "created_at_utc": utc_iso(req.created_at)},
        "time_range": {"start": req.start, "end": req.end, "start_utc": utc_iso(req.start),
                       "end_utc": utc_iso(req.end)},
        "cameras": list(req.cameras),
        "files": files,
        "missing": missing,
        "exported_by": user,
        "exported_at": exported_at,
        "exported_at_utc": utc_iso(exported_at),
        "software": {"name": "analytics", "version": __version__},
        "signing_key": {"algorithm": "Ed25519", "public_key": base64.b64encode(public_key_raw(key)).decode(),
                        "fingerprint": public_key_fingerprint(key)},
    }


def _file_names(cameras: Sequence[str]) -> dict[str, str]:
    """``camera -> <safe name>.mp4``, unique (a suffix is added when two ids make the same name)."""
    names: dict[str, str] = {}
    taken = {MANIFEST, SIGNATURE}
    for camera in cameras:
        base = export_name(camera)
        name, n = f"{base}.mp4", 1
        while name in taken:
            n += 1
            name = f"{base}-{n}.mp4"
        taken.add(name)
        names[camera] = name
    return names


def segment_frames(segment: Segment, since: float, until: float) -> Iterator[tuple[float, np.ndarray]]:
    """``(wall time, BGR image)`` of the frames of ``segment``'s file whose wall time is in ``[since, until)``.

    Wall time: the frame's media time, relative to the file's first frame, mapped linearly from the segment's
    ``[start, end]`` onto ``[wall_start, wall_end]``; a frame without a timestamp goes by its index
    (``index * wall duration / frames``). Raises what :func:`analytics.video_io.read_frames` raises.
    """
    from analytics.video_io import read_frames

    wall_span = segment.wall_end - segment.wall_start
    scale = wall_span / (segment.end - segment.start) if segment.end > segment.start else 1.0
    per_frame = wall_span / segment.frames if segment.frames > 0 else 0.0
    first: float | None = None
    for frame in read_frames(Path(segment.path)):
        if frame.time is None:
            wall = segment.wall_start + frame.index * per_frame
        else:
            first = frame.time if first is None else first
            wall = segment.wall_start + (frame.time - first) * scale
        if wall >= until:
            return
        if wall >= since:
            yield wall, frame.image


@dataclass
class _CameraClip:
    """One camera's exported clip, encoded from its held segments."""

    req: Requisition
    camera: str
    path: Path
    user: str
    exported_at: float
    corner: str
    frames: int = 0
    first: float = 0.0  # wall time of the first frame written, Unix seconds
    last: float | None = None  # ... and of the last
    pts: int = 0  # of the last frame written, milliseconds after the first
    size: tuple[int, int] | None = None  # (width, height) of the clip, even
    box: list[int] | None = None  # union of the watermark boxes, (x0, y0, x1, y1) pixels
    sources: list[dict[str, Any]] = field(default_factory=list)
    unreadable: list[dict[str, Any]] = field(default_factory=list)

    def encode(self, segments: Sequence[Segment], x264: Mapping[str, str]) -> dict[str, Any] | None:
        """Encode the clip; its manifest entry, or None when no frame falls in the time range."""
        import av

        from analytics.video_io import Mp4Writer

        writer: Mp4Writer | None = None
        try:
            for seg in segments:
                before = self.frames
                try:
                    for wall, image in segment_frames(seg, self.req.start, self.req.end):
                        if self.last is not None and wall <= self.last:
                            continue  # overlapping segments: keep time strictly increasing
                        writer = writer or Mp4Writer(self.path, rate=_rate(seg), options=x264, time_base=_TIME_BASE)
                        self._write(writer, wall, image)
                except (OSError, ValueError, av.error.FFmpegError) as err:
                    log.error("export %s: camera %s: segment %d (%s) cannot be read: %s", self.req.id, self.camera,
                              seg.id, seg.path, err)
                    self.unreadable.append({"segment": seg.id, "wall_start": seg.wall_start,
                                            "wall_end": seg.wall_end, "error": str(err)})
                if self.frames > before:
                    self.sources.append(_source(seg))
            if writer is None:
                return None
            writer.close()
        except BaseException:
            if writer is not None:
                writer.abort()
            raise
        return self._entry()

    def _write(self, writer: Any, wall: float, image: np.ndarray) -> None:
        import cv2

        height, width = image.shape[:2]
        even = (width - width % 2, height - height % 2)
        if self.size is None:
            self.size, self.first = even, wall
        image = image[: self.size[1], : self.size[0]] if even == self.size else \
            cv2.resize(image, self.size, interpolation=cv2.INTER_AREA)
        lines = (f"{self.req.id}  camera {self.camera}", utc_iso(wall),
                 f"EXPORT {self.user} {utc_iso(self.exported_at)}")
        marked, box = draw_watermark(image, lines, corner=self.corner,
                                     style=style_for(self.size[0], self.size[1], lines))
        self.box = list(box) if self.box is None else [min(self.box[0], box[0]), min(self.box[1], box[1]),
                                                       max(self.box[2], box[2]), max(self.box[3], box[3])]
        pts = round((wall - self.first) * 1000)
        self.pts = pts if self.frames == 0 else max(pts, self.pts + 1)
        writer.write(marked, pts=self.pts)
        self.frames += 1
        self.last = wall

    def _entry(self) -> dict[str, Any]:
        last, size = self.last or self.first, self.size or (0, 0)
        return {"name": self.path.name, "camera": self.camera, "sha256": sha256_file(self.path),
                "bytes": self.path.stat().st_size, "frames": self.frames, "width": size[0],
                "height": size[1], "first_frame": self.first, "last_frame": last,
                "first_frame_utc": utc_iso(self.first), "last_frame_utc": utc_iso(last),
                "source_segments": self.sources, "unreadable_segments": self.unreadable,
                "watermark": {"corner": self.corner, "box": self.box}}


def _rate(segment: Segment) -> float:
    """Nominal frames per second of a segment (the encoder's rate control; timestamps are explicit)."""
    span = segment.wall_end - segment.wall_start
    fps = segment.frames / span if span > 0 and segment.frames > 0 else _FALLBACK_FPS
    return float(np.clip(fps, 0.1, 120.0))


def _source(segment: Segment) -> dict[str, Any]:
    """A source segment's manifest entry (its file's SHA-256 ties the export to the archived recording)."""
    return {"id": segment.id, "file": Path(segment.path).name, "sha256": sha256_file(Path(segment.path)),
            "start": segment.start, "end": segment.end, "wall_start": segment.wall_start,
            "wall_end": segment.wall_end}
