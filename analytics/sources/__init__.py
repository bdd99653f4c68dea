"""Camera sources: decoded, privacy-masked frames from video files, image folders and live streams.

:func:`open_source` picks the implementation from the camera's ``source`` string. OpenCV and PyAV are
imported only when a source is opened, so importing this package stays light.
"""

from __future__ import annotations

from pathlib import Path

from analytics.config import CameraConfig
from analytics.sources.base import Source, SourceError

__all__ = ["LIVE_SCHEMES", "Source", "SourceError", "open_source"]

#: URL schemes read as live streams.
LIVE_SCHEMES = frozenset({"rtsp", "rtsps", "http", "https", "rtmp", "udp", "tcp"})


def open_source(cam: CameraConfig, *, image_fps: float = 25.0, live_backend: str | None = None) -> Source:
    """Open the camera's source.

    * ``rtsp://``, ``rtsps://``, ``http(s)://`` (and ``rtmp``, ``udp``, ``tcp``) URL: a
      :class:`~analytics.sources.live.LiveSource`; its reader thread starts now and it never raises on an
      unreachable or dropped stream (it reports OFFLINE health and reconnects).
    * a folder with ``seqinfo.ini`` and ``img1/``: a MOTChallenge sequence at its ``frameRate``.
    * another folder: its jpg/jpeg/png/bmp images in natural order at ``image_fps`` frames per second.
    * a file: a video (mp4, avi, mkv, mov... anything FFmpeg reads), at its own frame rate.

    Args:
        cam: the camera; ``source`` is already expanded (see :func:`analytics.paths.expand`).
        image_fps: source frame rate of plain image folders (media time = ``seq / image_fps``).
        live_backend: ``"pyav"`` or ``"opencv"`` for live streams; None picks PyAV when installed.

    Raises:
        SourceError: a missing path, an empty image folder, an undecodable file or an unsupported URL
            scheme; the message names the camera id and the input.
    """
    scheme, sep, _ = cam.source.partition("://")
    if sep and scheme.lower() in LIVE_SCHEMES:
        from analytics.sources.live import LiveSource

        return LiveSource(cam, backend=live_backend)
    if sep and len(scheme) > 1 and not Path(cam.source).exists():
        raise SourceError(f"camera {cam.id}: unsupported URL scheme {scheme!r} in {cam.source!r}; expected one "
                          f"of {sorted(LIVE_SCHEMES)} or a file path")
    from analytics.sources.files import open_file_source

    return open_file_source(cam, default_fps=image_fps)
