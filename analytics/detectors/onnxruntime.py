"""ONNX Runtime backend (CPUExecutionProvider) with the same letterbox and decoding as OpenVINO.

A model with a static batch of 1 runs frame by frame (ONNX Runtime spreads one frame over the
intra-op threads); a model with a dynamic batch runs the whole batch in one call.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import onnxruntime as ort

from analytics.detectors.postprocess import decode
from analytics.detectors.preprocess import input_hw, preprocess
from analytics.models import ResolvedModel
from analytics.types import Detections

log = logging.getLogger(__name__)


def _static(dim: object) -> int | None:
    return dim if isinstance(dim, int) and dim > 0 else None


class OnnxRuntimeDetector:
    """YOLOv8/YOLO11 ONNX detector on ONNX Runtime's CPU provider."""

    def __init__(self, model: ResolvedModel, *, classes: tuple[int, ...], confidence: float, iou: float = 0.7,
                 device: str = "CPU", imgsz: tuple[int, int] | None = None, batch: int = 1,
                 threads: int | None = None) -> None:
        if device.upper() != "CPU":
            raise ValueError(f"the onnxruntime backend runs on CPU only, got device {device!r}")
        opts = ort.SessionOptions()
        if threads is not None:
            opts.intra_op_num_threads = int(threads)
        self._session = ort.InferenceSession(str(model.path), sess_options=opts, providers=["CPUExecutionProvider"])
        inp = self._session.get_inputs()[0]
        if len(inp.shape) != 4:
            raise ValueError(f"expected an NCHW input, got shape {inp.shape}")
        self._input_name = inp.name
        self._dynamic_batch = _static(inp.shape[0]) is None
        self.input_hw = input_hw((_static(inp.shape[2]), _static(inp.shape[3])), imgsz)
        self.name = f"onnxruntime:{model.name}"
        self.classes, self.confidence, self.iou = classes, confidence, iou
        log.info("%s: input %s, dynamic batch %s", self.name, self.input_hw, self._dynamic_batch)

    def detect(self, frames: Sequence[np.ndarray]) -> list[Detections]:
        """Detect objects in a batch of (H, W, 3) uint8 BGR frames; one :class:`Detections` per frame,
        xyxy in frame pixels."""
        if len(frames) == 0:
            return []
        tensor, boxes = preprocess(frames, input_hw=self.input_hw)
        if self._dynamic_batch:
            output = self._session.run(None, {self._input_name: tensor})[0]
        else:
            output = np.concatenate([self._session.run(None, {self._input_name: t[None]})[0] for t in tensor])
        return decode(output, boxes, classes=self.classes, confidence=self.confidence, iou=self.iou)

    def close(self) -> None:
        """Release the session."""
        self._session = None  # type: ignore[assignment]
