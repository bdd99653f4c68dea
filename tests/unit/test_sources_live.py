"""LiveSource logic against a fake stream: latest-frame policy, health, reconnects, close (no network)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator

import numpy as np
import pytest

from analytics.config import CameraConfig, PrivacyMask
from analytics.sources import live as live_module
from analytics.sources.live import LiveSource
from analytics.types import Frame, Health
from support import Consumer, wait_for

URL = "rtsp://camera.example/stream1"


class FakeCamera:
    """A camera that can be switched off: opening fails and an open stream ends while it is down."""

    def __init__(self, *, fps: float = 50.0, error: type[Exception] = ConnectionRefusedError) -> None:
        self.up = threading.Event()
        self.up.set()
        self.fps = fps
        self.error = error
        self.opens = 0

    def __call__(self, url: str, *, open_timeout: float, read_timeout: float) -> FakeStream:
        self.opens += 1
        if not self.up.is_set():
            raise self.error(f"Connection refused: '{url}'")
        return FakeStream(self)


class FakeStream:
    nominal_fps: float | None

    def __init__(self, camera: FakeCamera) -> None:
        self.camera = camera
        self.nominal_fps = camera.fps

    def read(self) -> np.ndarray | None:
        time.sleep(1.0 / self.camera.fps)
        return np.full((24, 32, 3), 200, np.uint8) if self.camera.up.is_set() else None

    def close(self) -> None:
        pass






@pytest.fixture
def make() -> Iterator[Callable[..., LiveSource]]:
    made: list[LiveSource] = []

    def _make(camera: FakeCamera, **kwargs: object) -> LiveSource:
        cam = CameraConfig(**{"id": "live", "source": URL, "reconnect_initial": 0.05, "reconnect_max": 0.2,
                              **kwargs})
        source = LiveSource(cam, stream_factory=camera)
        made.append(source)
        return source

    yield _make
    for source in made:
        source.close()


def test_latest_frame_policy_counts_drops_and_masks(make: Callable[..., LiveSource]) -> None:
    left = PrivacyMask(polygon=((0, 0), (0.5, 0), (0.5, 1), (0, 1)))
    source = make(FakeCamera(), fps=5.0, privacy_masks=(left,))
    assert source.status().health in (Health.STARTING, Health.ONLINE)
    consumer = Consumer(source)
    wait_for(lambda: len(consumer.frames) >= 4)
    frames = list(consumer.frames)
    assert [f.seq for f in frames] == sorted({f.seq for f in frames})
    assert all(abs(f.timestamp - time.time()) < 30 for f in frames)
    assert all(not f.image[:, :16].any() and (f.image[:, 17:] == 200).all() for f in frames)
    status = source.status()
    assert status.dropped > 0 and status.frames >= 4
    assert status.health in (Health.ONLINE, Health.DEGRADED)


def test_outage_goes_offline_and_recovers(make: Callable[..., LiveSource], caplog: pytest.LogCaptureFixture,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(live_module, "RECENT_RECONNECT_S", 0.5)
    camera = FakeCamera()
    source = make(camera, fps=None)
    consumer = Consumer(source)
    wait_for(lambda: len(consumer.frames) >= 3)

    with caplog.at_level(logging.WARNING, logger="analytics.sources.live"):
        camera.up.clear()
        wait_for(lambda: source.status().health is Health.OFFLINE)
        wait_for(lambda: camera.opens >= 4)  # several failed retries...
    assert caplog.text.count("stream lost") == 1  # ...but one warning per outage
    status = source.status()
    assert status.reconnects >= 3 and URL in (status.error or "") and "refused" in (status.error or "")
    n = len(consumer.frames)

    camera.up.set()
    wait_for(lambda: len(consumer.frames) >= n + 3)
    assert source.status().health in (Health.DEGRADED, Health.ONLINE)
    wait_for(lambda: source.status().health is Health.ONLINE)
    assert consumer.error is None and consumer.thread.is_alive()


def test_unreachable_from_the_start_is_offline_and_close_ends_iteration(make: Callable[..., LiveSource]) -> None:
    camera = FakeCamera()
    camera.up.clear()
    source = make(camera)
    consumer = Consumer(source)
    wait_for(lambda: source.status().health is Health.OFFLINE)
    assert URL in (source.status().error or "")
    source.close()
    consumer.thread.join(timeout=5)
    assert not consumer.thread.is_alive() and consumer.error is None and consumer.frames == []
    assert source.status().health is Health.FINISHED


def test_unexpected_decoder_error_does_not_kill_the_reader(make: Callable[..., LiveSource],
                                                           caplog: pytest.LogCaptureFixture) -> None:
    camera = FakeCamera(error=ValueError)
    camera.up.clear()
    with caplog.at_level(logging.ERROR, logger="analytics.sources.live"):
        source = make(camera)
        wait_for(lambda: camera.opens >= 3)
    assert caplog.text.count("unexpected error") == 1
    camera.up.set()
    consumer = Consumer(source)
    wait_for(lambda: len(consumer.frames) >= 2)


def test_unknown_backend_is_named() -> None:
    with pytest.raises(ValueError, match="'gstreamer'"):
        LiveSource(CameraConfig(id="x", source=URL), backend="gstreamer")
