"""Live sources against a real ffmpeg stream server on loopback: drop, OFFLINE, reconnect, ONLINE again.

The server is ``ffmpeg -listen 1`` serving MPEG-TS over HTTP; it serves one client per process, so killing it
and starting a fresh process on the same port is the "server goes away and comes back" scenario.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from analytics import paths
from analytics.config import CameraConfig
from analytics.sources import Source, open_source
from analytics.sources import live as live_module
from analytics.types import Frame, Health
from support import Consumer, free_port, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.live]

FFMPEG = shutil.which("ffmpeg")
CLIP_SOURCE = paths.footage_dir() / "street" / "vtest_PETS09-S2L1_480x360.mp4"


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 10 s 320x240 H.264 clip cut from the shared footage."""
    if FFMPEG is None:
        pytest.skip("ffmpeg is not installed")
    if not CLIP_SOURCE.exists():
        pytest.skip(f"footage {CLIP_SOURCE} is not available")
    out = tmp_path_factory.mktemp("live") / "clip.mp4"
    subprocess.run([FFMPEG, "-loglevel", "error", "-y", "-i", str(CLIP_SOURCE), "-t", "10", "-vf", "scale=320:240",
                    "-c:v", "libx264", "-preset", "ultrafast", "-g", "10", "-an", str(out)], check=True, timeout=60)
    return out




class StreamServer:
    """Starts and kills ``ffmpeg -listen 1`` processes serving ``clip`` in a loop at real-time speed."""

    def __init__(self, clip: Path, port: int) -> None:
        self.clip = clip
        self.url = f"http://127.0.0.1:{port}/stream.ts"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert FFMPEG is not None
        self.proc = subprocess.Popen(
            [FFMPEG, "-loglevel", "error", "-re", "-stream_loop", "-1", "-i", str(self.clip), "-c:v", "libx264",
             "-preset", "ultrafast", "-tune", "zerolatency", "-g", "10", "-f", "mpegts", "-listen", "1", self.url],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait(timeout=10)
        self.proc = None


@pytest.fixture
def server(clip: Path) -> Iterator[StreamServer]:
    srv = StreamServer(clip, free_port())
    yield srv
    srv.kill()




@pytest.fixture
def consumers() -> Iterator[list[Consumer]]:
    made: list[Consumer] = []
    yield made
    for consumer in made:
        consumer.stop()


def test_stream_drop_goes_offline_and_recovers(server: StreamServer, consumers: list[Consumer],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(live_module, "RECENT_RECONNECT_S", 2.0)
    server.start()
    cam = CameraConfig(id="live1", source=server.url, fps=5.0, reconnect_initial=0.2, reconnect_max=1.0,
                       stall_timeout=3.0)
    consumer = Consumer(open_source(cam))
    consumers.append(consumer)
    source = consumer.source

    wait_for(lambda: len(consumer.frames) >= 5, 20, "the first frames")
    assert source.status().health in (Health.ONLINE, Health.DEGRADED)
    first = consumer.frames[0]
    assert first.camera_id == "live1" and first.size == (320, 240)
    assert abs(first.timestamp - time.time()) < 60  # wall time, not media time

    server.kill()
    wait_for(lambda: source.status().health is Health.OFFLINE, 10, "OFFLINE after the server died")
    wait_for(lambda: source.status().reconnects >= 1, 10, "a reconnect attempt")
    status = source.status()
    assert server.url in (status.error or "")
    n_offline = len(consumer.frames)
    assert consumer.thread.is_alive() and consumer.error is None

    server.start()
    wait_for(lambda: len(consumer.frames) >= n_offline + 5, 20, "frames after the server came back")
    wait_for(lambda: source.status().health is Health.ONLINE, 15, "ONLINE again")
    assert consumer.error is None
    seqs = [f.seq for f in consumer.frames]
    assert seqs == sorted(set(seqs))  # newest-first never goes back, across the reconnect
    status = source.status()
    assert status.frames == len(consumer.frames) and status.dropped > 0  # the stream runs faster than 5 fps


def test_unreachable_url_is_offline_while_a_file_camera_runs(consumers: list[Consumer], tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/nothing.ts"  # nobody listens there
    dead = Consumer(open_source(CameraConfig(id="dead", source=url, reconnect_initial=0.2, reconnect_max=0.5)))
    consumers.append(dead)
    video = paths.footage_dir() / "traffic" / "vdh_video1.avi"
    if not video.exists():
        pytest.skip(f"footage {video} is not available")
    alive = Consumer(open_source(CameraConfig(id="alive", source=str(video), benchmark=True)))
    consumers.append(alive)

    wait_for(lambda: dead.source.status().health is Health.OFFLINE, 10, "OFFLINE for the unreachable URL")
    wait_for(lambda: not alive.thread.is_alive(), 60, "the file camera to finish")
    assert alive.error is None and len(alive.frames) == 500
    status = dead.source.status()
    assert status.health is Health.OFFLINE and url in (status.error or "")
    assert status.frames == 0 and dead.error is None and dead.thread.is_alive()


def test_opencv_backend_reads_the_stream(server: StreamServer, consumers: list[Consumer]) -> None:
    server.start()
    cam = CameraConfig(id="cv", source=server.url, fps=None, reconnect_initial=0.2, reconnect_max=1.0)
    consumer = Consumer(open_source(cam, live_backend="opencv"))
    consumers.append(consumer)
    wait_for(lambda: len(consumer.frames) >= 5, 25, "frames through OpenCV")
    assert consumer.frames[0].size == (320, 240) and consumer.error is None
