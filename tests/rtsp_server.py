"""A tiny RTSP server for the live tests: serves an H.264 mp4 clip, looping, at real-time speed.

Run with Debian's ``/usr/bin/python3`` (GStreamer's Python bindings are Debian packages, not in the venv)::

    /usr/bin/python3 tests/rtsp_server.py CLIP.mp4 PORT

It serves ``rtsp://127.0.0.1:PORT/cam`` and prints ``ready`` once it listens. Needs the Debian packages
``gstreamer1.0-rtsp gir1.2-gst-rtsp-server-1.0 python3-gst-1.0 gstreamer1.0-plugins-base
gstreamer1.0-plugins-good``. With ``--check`` it only checks that those import and exits 0.

The clip is not re-encoded: a feeder pipeline (``filesrc ! qtdemux ! appsink sync=true``) paces the
H.264 access units at the clip's frame rate and seeks back to the start at end of stream; every client's
media pipeline (``appsrc ! rtph264pay``) gets them live, starting at a keyframe, with fresh timestamps.
"""

from __future__ import annotations

import argparse
import sys
import threading

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

MOUNT = "/cam"
MEDIA_LAUNCH = ("( appsrc name=src is-live=true do-timestamp=true format=time max-bytes=0 "
                "! rtph264pay name=pay0 pt=96 config-interval=-1 )")


class ClipFeeder:
    """Decodes nothing: demuxes the clip in a loop and fans its H.264 buffers out to the live appsrcs."""

    def __init__(self, clip: str, loop: GLib.MainLoop) -> None:
        self._loop = loop
        self._lock = threading.Lock()
        self._caps: Gst.Caps | None = None
        self._ready = threading.Event()
        self._targets: dict[Gst.Element, bool] = {}  # appsrc -> a keyframe was sent to it
        self.pipeline = Gst.parse_launch(
            f'filesrc location="{clip}" ! qtdemux ! video/x-h264 ! appsink name=sink sync=true emit-signals=true')
        sink = self.pipeline.get_by_name("sink")
        sink.connect("new-sample", self._on_sample)
        bus = self.pipeline.get_bus()
        bus.add_signal_watch()
        bus.connect("message", self._on_message)

    def start(self) -> None:
        self.pipeline.set_state(Gst.State.PLAYING)

    def wait_ready(self, timeout: float) -> bool:
        return self._ready.wait(timeout)

    def attach(self, appsrc: Gst.Element) -> None:
        with self._lock:
            appsrc.set_property("caps", self._caps)
            self._targets[appsrc] = False

    def detach(self, appsrc: Gst.Element) -> None:
        with self._lock:
            self._targets.pop(appsrc, None)

    def _on_sample(self, sink: Gst.Element) -> Gst.FlowReturn:
        sample = sink.emit("pull-sample")
        if sample is None:
            return Gst.FlowReturn.OK
        buffer = sample.get_buffer()
        keyframe = not buffer.has_flags(Gst.BufferFlags.DELTA_UNIT)
        with self._lock:
            if self._caps is None:
                self._caps = sample.get_caps()
                self._ready.set()
            targets = [src for src, started in self._targets.items() if started or keyframe]
            for src in targets:
                self._targets[src] = True
        for src in targets:
            out = buffer.copy()  # shares the memory; only the metadata is the copy's own
            out.pts = out.dts = Gst.CLOCK_TIME_NONE  # appsrc stamps it with its own pipeline's running time
            if src.emit("push-buffer", out) != Gst.FlowReturn.OK:
                self.detach(src)
        return Gst.FlowReturn.OK

    def _on_message(self, _bus: Gst.Bus, message: Gst.Message) -> None:
        if message.type == Gst.MessageType.EOS:
            self.pipeline.seek_simple(Gst.Format.TIME, Gst.SeekFlags.FLUSH | Gst.SeekFlags.KEY_UNIT, 0)
        elif message.type == Gst.MessageType.ERROR:
            err, debug = message.parse_error()
            print(f"feeder error: {err.message} ({debug})", file=sys.stderr, flush=True)
            self._loop.quit()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clip", nargs="?", help="H.264 mp4 clip to serve in a loop")
    parser.add_argument("port", nargs="?", type=int, help="TCP port on 127.0.0.1")
    parser.add_argument("--check", action="store_true", help="only check that GStreamer and its elements load")
    args = parser.parse_args()

    Gst.init(None)
    missing = [name for name in ("filesrc", "qtdemux", "appsink", "appsrc", "rtph264pay")
               if Gst.ElementFactory.find(name) is None]
    if missing:
        print(f"missing GStreamer elements: {', '.join(missing)}", file=sys.stderr)
        return 2
    if args.check:
        return 0
    if args.clip is None or args.port is None:
        parser.error("clip and port are required")

    loop = GLib.MainLoop()
    feeder = ClipFeeder(args.clip, loop)
    feeder.start()
    if not feeder.wait_ready(30):
        print(f"no H.264 video came out of {args.clip}", file=sys.stderr)
        return 1

    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(MEDIA_LAUNCH)
    factory.set_shared(True)

    def on_configure(_factory: GstRtspServer.RTSPMediaFactory, media: GstRtspServer.RTSPMedia) -> None:
        appsrc = media.get_element().get_by_name("src")
        feeder.attach(appsrc)
        media.connect("unprepared", lambda _media: feeder.detach(appsrc))

    factory.connect("media-configure", on_configure)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    server.get_mount_points().add_factory(MOUNT, factory)
    if server.attach(None) == 0:
        print(f"cannot listen on 127.0.0.1:{args.port}", file=sys.stderr)
        return 1
    print("ready", flush=True)
    try:
        loop.run()
    finally:
        feeder.pipeline.set_state(Gst.State.NULL)
    return 1  # the loop only ends on a feeder error


if __name__ == "__main__":
    sys.exit(main())
