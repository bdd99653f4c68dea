"""Native OpenVINO backend: ``openvino.Core`` + own letterbox and decoding, no ultralytics at run time.

Frames of a batch are letterboxed one by one and started on a pool of asynchronous infer requests as soon
as each is ready, so pre-processing of frame *i+1* overlaps inference of frame *i* and, with the THROUGHPUT
hint, several frames run at once on separate CPU streams. Static models (the shipped INT8 is
1x3x640x640; frame-aspect exports such as 1x3x480x640) are run at their own input size, read from the
model; dynamic models are reshaped to ``imgsz`` (default 640x640).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import openvino as ov

from analytics.detectors.postprocess import decode
from analytics.detectors.preprocess import check_frame, input_hw, letterbox
from analytics.models import ModelError, ResolvedModel
from analytics.types import Detections

log = logging.getLogger(__name__)

Hint = Literal["auto", "latency", "throughput"]


def xml_path(path: Path) -> Path:
    """The model file OpenVINO reads: the single ``.xml`` of an IR folder, or ``path`` itself."""
    if not path.is_dir():
        return path
    xmls = sorted(path.glob("*.xml"))
    if len(xmls) != 1:
        raise ModelError(f"OpenVINO model folder {path} must hold exactly one .xml, found {[x.name for x in xmls]}")
    return xmls[0]


def _prepare(model: ov.Model, imgsz: tuple[int, int] | None) -> tuple[ov.Model, tuple[int, int]]:
    """Check the input is (1|?, 3, H, W), fix dynamic dims (batch 1, ``imgsz``), return (model, (h, w))."""
    if len(model.inputs) != 1:
        raise ValueError(f"expected a detector with one input, got {len(model.inputs)}")
    shape = model.input(0).get_partial_shape()
    if shape.rank.is_dynamic or shape.rank.get_length() != 4:
        raise ValueError(f"expected an NCHW input, got shape {shape}")
    dims = [d.get_length() if d.is_static else None for d in shape]
    if dims[1] not in (3, None) or dims[0] not in (1, None):
        raise ValueError(f"expected input shape (1, 3, H, W), got {shape}")
    hw = input_hw((dims[2], dims[3]), imgsz)
    if None in dims:
        model.reshape([1, 3, *hw])
    return model, hw


def _choose_hint(hint: Hint, batch: int) -> str:
    if hint == "auto":
        # Measured on a 2-core AVX2 CPU, yolo11n INT8, PETS09 768x576 (min of 4 interleaved rounds):
        # LATENCY b1 119 ms/frame, b2 124, b4 123; THROUGHPUT b1 215 (one 1-thread stream), b2 122, b4 121.
        # THROUGHPUT only pays off when several frames are in flight.
        hint = "throughput" if batch > 1 else "latency"
    if hint not in ("latency", "throughput"):
        raise ValueError(f"hint must be 'auto', 'latency' or 'throughput', got {hint!r}")
    return hint.upper()


def _embed_preprocessing(model: ov.Model) -> ov.Model:
    """Move the colour swap, layout change and scaling into the graph: the request then takes the
    letterboxed (1, h, w, 3) uint8 BGR image as is and OpenVINO converts it on its own threads, instead of
    the Python thread building a float32 NCHW tensor with numpy. End-to-end speed on PETS09 with two cores
    was the same either way (10.0 vs 10.0-10.2 fps): inference dominates; it frees the Python thread."""
    from openvino.preprocess import ColorFormat, PrePostProcessor

    ppp = PrePostProcessor(model)
    ppp.input().tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC")).set_color_format(
        ColorFormat.BGR)
    ppp.input().model().set_layout(ov.Layout("NCHW"))
    ppp.input().preprocess().convert_element_type(ov.Type.f32).convert_color(ColorFormat.RGB).scale(255.0)
    return ppp.build()


class OpenVINODetector:
    """YOLOv8/YOLO11 detector on OpenVINO.

    ``detect`` is not re-entrant: call it from one thread at a time (one detector per process stage).
    """

    def __init__(self, model: ResolvedModel, *, classes: tuple[int, ...], confidence: float, iou: float = 0.7,
                 device: str = "CPU", imgsz: tuple[int, int] | None = None, batch: int = 1,
                 threads: int | None = None, hint: Hint = "auto") -> None:
        core = ov.Core()
        net, self.input_hw = _prepare(core.read_model(xml_path(model.path)), imgsz)
        net = _embed_preprocessing(net)
        config: dict[str, object] = {"PERFORMANCE_HINT": _choose_hint(hint, batch)}
        if threads is not None:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        self._compiled = core.compile_model(net, device, config)
        n_requests = int(self._compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
        # At least 2 requests so letterboxing the next frame overlaps inference of the current one.
        # Plain requests waited on from this thread, no Python callbacks: a callback needs the GIL on an
        # OpenVINO thread and was seen to deadlock intermittently (queue teardown / wait).
        self._requests = [self._compiled.create_infer_request() for _ in range(max(2, n_requests))]
        self.name = f"openvino:{model.name}"
        self.classes, self.confidence, self.iou = classes, confidence, iou
        log.info("%s on %s: input %s, %s, %d infer requests", self.name, device, self.input_hw,
                 config["PERFORMANCE_HINT"], len(self._requests))

    def detect(self, frames: Sequence[np.ndarray]) -> list[Detections]:
        """Detect objects in a batch of (H, W, 3) uint8 BGR frames; one :class:`Detections` per frame,
        xyxy in frame pixels."""
        if len(frames) == 0:
            return []
        outputs: list[np.ndarray | None] = [None] * len(frames)
        pending: dict[int, int] = {}  # request slot -> frame index
        boxes = []
        for i, frame in enumerate(frames):
            check_frame(frame, i)
            image, box = letterbox(frame, input_hw=self.input_hw)
            boxes.append(box)
            slot = i % len(self._requests)
            if slot in pending:
                outputs[pending.pop(slot)] = self._collect(slot)
            self._requests[slot].start_async({0: image[np.newaxis]})
            pending[slot] = i
        for slot, i in pending.items():
            outputs[i] = self._collect(slot)
        return decode(np.concatenate(outputs, axis=0), boxes, classes=self.classes, confidence=self.confidence,
                      iou=self.iou)

    def _collect(self, slot: int) -> np.ndarray:
        """Wait for request ``slot`` (GIL released) and copy out its (1, 84, A) output."""
        request = self._requests[slot]
        request.wait()
        return request.get_output_tensor(0).data.copy()

    def close(self) -> None:
        """Wait for running requests and release the compiled model."""
        for request in self._requests:
            request.wait()
        self._requests = []
        self._compiled = None  # type: ignore[assignment]
