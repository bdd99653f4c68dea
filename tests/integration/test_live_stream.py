"""Live sources against a real ffmpeg stream server on loopback: drop, OFFLINE, reconnect, ONLINE again.

The server is ``ffmpeg -listen 1`` serving MPEG-TS over HTTP; it serves one client per process, so killing it
and starting a fresh process on the same port is the "server goes away and comes back" scenario. The RTSP test
does the same against GStreamer's RTSP server (``tests/rtsp_server.py``, run by Debian's ``/usr/bin/python3``
because GStreamer's Python bindings are Debian packages); it is skipped where those are not installed.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

from analytics import paths
from analytics.config import CameraConfig, parse_config
from analytics.detectors import create_detector
from analytics.pipeline import Runner
from analytics.sources import open_source
from analytics.sources import live as live_module
from analytics.types import Health
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
    """A real HTTP (MPEG-TS) camera dies and comes back on the same port."""
    monkeypatch.setattr(live_module, "RECENT_RECONNECT_S", 2.0)
    consumer = assert_recovers_after_restart(server, consumers, camera_id="live1", stall_timeout=3.0)
    consumer.stop()  # counters are final once the source is closed
    status = consumer.source.status()
    assert status.frames == len(consumer.frames) and status.dropped > 0  # the stream runs faster than 5 fps


SYSTEM_PYTHON = Path("/usr/bin/python3")
RTSP_SERVER_SCRIPT = Path(__file__).resolve().parents[1] / "rtsp_server.py"


def rtsp_server_unavailable() -> str | None:
    """Why GStreamer's RTSP server cannot run here (a skip reason), or None when it can."""
    if not SYSTEM_PYTHON.exists():
        return f"{SYSTEM_PYTHON} is not installed"
    check = subprocess.run([str(SYSTEM_PYTHON), str(RTSP_SERVER_SCRIPT), "--check"], stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=60)
    if check.returncode != 0:
        reason = (check.stderr.strip().splitlines() or ["no output"])[-1]
        return (f"{SYSTEM_PYTHON} cannot run GStreamer's RTSP server ({reason}); install the Debian packages "
                "gstreamer1.0-rtsp gir1.2-gst-rtsp-server-1.0 python3-gst-1.0 gstreamer1.0-plugins-base "
                "gstreamer1.0-plugins-good")
    return None


class RtspServer:
    """Starts and kills ``tests/rtsp_server.py`` (GStreamer, run by Debian's python3) serving ``clip`` in a loop."""

    def __init__(self, clip: Path, port: int, log: Path) -> None:
        self.clip = clip
        self.port = port
        self.url = f"rtsp://127.0.0.1:{port}/cam"
        self.log = log
        self.proc: subprocess.Popen[str] | None = None

    def start(self, timeout: float = 30.0) -> None:
        """Start the server and wait until it prints ``ready`` (it listens then)."""
        with self.log.open("a") as log:
            self.proc = subprocess.Popen([str(SYSTEM_PYTHON), str(RTSP_SERVER_SCRIPT), str(self.clip), str(self.port)],
                                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log, text=True)
        stdout = self.proc.stdout
        assert stdout is not None
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.append(stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout)
        if not lines or lines[0].strip() != "ready":
            self.kill()
            raise AssertionError(f"the RTSP server did not start within {timeout} s: {self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait(timeout=10)
            if self.proc.stdout is not None:
                self.proc.stdout.close()
        self.proc = None


@pytest.fixture
def rtsp_server(clip: Path, tmp_path: Path) -> Iterator[RtspServer]:
    reason = rtsp_server_unavailable()
    if reason is not None:
        pytest.skip(reason)
    srv = RtspServer(clip, free_port(), tmp_path / "rtsp_server.log")
    try:
        yield srv
    finally:
        srv.kill()


def test_rtsp_drop_goes_offline_and_recovers(rtsp_server: RtspServer, consumers: list[Consumer],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A real RTSP camera (GStreamer, RTP over the RTSP TCP connection) dies and comes back on the same port."""
    monkeypatch.setattr(live_module, "RECENT_RECONNECT_S", 2.0)
    consumer = assert_recovers_after_restart(rtsp_server, consumers, camera_id="rtsp1", stall_timeout=2.0)
    consumer.stop()  # counters are final once the source is closed
    status = consumer.source.status()
    assert status.reconnects >= 1 and status.frames == len(consumer.frames)


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


def test_pipeline_recovers_when_the_stream_server_comes_back(server: StreamServer, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole pipeline (live source -> real detector -> tracker -> track log) on a stream that drops:
    analysis stops while the server is gone, resumes by itself when it is back, and the log spans both."""
    monkeypatch.setattr(live_module, "RECENT_RECONNECT_S", 2.0)
    server.start()
    data = {"detector": {"batch": 1}, "output": {"dir": str(tmp_path / "out")},
            "cameras": [{"id": "live", "source": server.url, "fps": 5, "reconnect_initial": 0.2,
                         "reconnect_max": 1.0, "stall_timeout": 2.0, "detection": {"classes": ["person"]}}]}
    cfg = parse_config(data, path=tmp_path / "live.yaml")
    runner = Runner(cfg, create_detector(cfg.detector, classes=(0,), confidence=0.25), open_source=open_source)
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    cam = lambda: runner.snapshot()[0]  # noqa: E731
    try:
        wait_for(lambda: cam().frames >= 10, 60, "10 analysed frames")
        server.kill()
        wait_for(lambda: cam().health is Health.OFFLINE, 20, "the camera to go OFFLINE")
        outage_start = time.time()
        before = cam().frames
        server.start()
        wait_for(lambda: cam().frames >= before + 10, 60, "analysis to resume after the server came back")
        wait_for(lambda: cam().health is Health.ONLINE, 20, "the camera to be ONLINE again")
        assert cam().reconnects >= 1
    finally:
        runner.stop()
        thread.join(timeout=30)
    assert not thread.is_alive()
    log = pl.read_parquet(tmp_path / "out" / "live.tracks.parquet")
    persons = log.filter(pl.col("class_name") == "person")
    assert persons.height > 0
    assert persons["timestamp"].min() < outage_start < persons["timestamp"].max()


def assert_recovers_after_restart(server: StreamServer | RtspServer, consumers: list[Consumer], *,
                                  camera_id: str, stall_timeout: float) -> Consumer:
    """Frames flow; the server dies (OFFLINE, a reconnect counted, the URL named, the consumer unharmed);
    a new server process on the same port brings frames back and the camera ONLINE, in order.
    Returns the consumer, still running."""
    server.start()
    cam = CameraConfig(id=camera_id, source=server.url, fps=5.0, reconnect_initial=0.2, reconnect_max=1.0,
                       stall_timeout=stall_timeout)
    consumer = Consumer(open_source(cam))
    consumers.append(consumer)
    source = consumer.source

    wait_for(lambda: len(consumer.frames) >= 5, 20, f"the first frames of {server.url}")
    assert source.status().health in (Health.ONLINE, Health.DEGRADED)
    first = consumer.frames[0]
    assert first.camera_id == camera_id and first.size == (320, 240)
    assert abs(first.timestamp - time.time()) < 60  # wall time, not media time

    server.kill()
    wait_for(lambda: source.status().health is Health.OFFLINE, 10, "OFFLINE after the server died")
    wait_for(lambda: source.status().reconnects >= 1, 10, "a reconnect attempt")
    assert server.url in (source.status().error or "")
    n_offline = len(consumer.frames)
    assert consumer.thread.is_alive() and consumer.error is None

    server.start()
    wait_for(lambda: len(consumer.frames) >= n_offline + 5, 20, "frames after the server came back")
    wait_for(lambda: source.status().health is Health.ONLINE, 15, "ONLINE again")
    assert consumer.error is None and consumer.thread.is_alive()
    seqs = [f.seq for f in consumer.frames]
    assert seqs == sorted(set(seqs))  # newest-first never goes back, across the reconnect
    return consumer
