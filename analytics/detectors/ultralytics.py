"""Ultralytics backend: any YOLO ``.pt``, ``.onnx`` or OpenVINO folder through ``ultralytics.YOLO``.

Needs torch. Ultralytics is always given a local path (never a bare name it could try to download), and
``YOLO_CONFIG_DIR`` defaults to a temporary folder so it does not write settings into the home folder;
``YOLO_AUTOINSTALL=false`` and ``YOLO_OFFLINE=true`` (unless set) stop it from trying to pip-install extras.
Frames are letterboxed to the full input size (``rect=False``) as the native backends do, so all
backends see the same network input and agree closely.
The conversion of its ``Results`` into :class:`~analytics.types.Detections` lives here, at the edge.

Class selection differs slightly from the native backends: Ultralytics picks each anchor's best class
among all 80, then drops the classes not asked for; the native decoder picks the best among the
requested classes only.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Sequence
from typing import Any

import numpy as np

from analytics.detectors.preprocess import check_frame
from analytics.models import ResolvedModel
from analytics.types import Detections

os.environ.setdefault("YOLO_CONFIG_DIR", os.path.join(tempfile.gettempdir(), "yolo_cfg"))
os.environ.setdefault("YOLO_AUTOINSTALL", "false")  # never pip-install missing extras at run time
os.environ.setdefault("YOLO_OFFLINE", "true")

from ultralytics import YOLO  # noqa: E402  (YOLO_CONFIG_DIR must be set first)

log = logging.getLogger(__name__)


def detections_from_ultralytics(result: Any) -> Detections:
    """Convert one ``ultralytics.engine.results.Results`` into :class:`Detections` (frame pixels)."""
    boxes = result.boxes
    if boxes is None or len(boxes) == 0:
        return Detections.empty()
    return Detections(
        xyxy=boxes.xyxy.cpu().numpy(),
        confidence=boxes.conf.cpu().numpy(),
        class_id=boxes.cls.cpu().numpy().astype(np.int16),
    )


def _device(device: str) -> str:
    return "cpu" if device.upper() == "CPU" else device


class UltralyticsDetector:
    """A YOLO detector run by ``ultralytics.YOLO(...).predict``."""

    def __init__(self, model: ResolvedModel, *, classes: tuple[int, ...], confidence: float, iou: float = 0.7,
                 device: str = "CPU", imgsz: tuple[int, int] | None = None, batch: int = 1,
                 threads: int | None = None) -> None:
        if threads is not None:
            import torch

            torch.set_num_threads(int(threads))
        self._model = YOLO(str(model.path), task="detect")
        self._args = dict(conf=confidence, iou=iou, classes=list(classes), device=_device(device),
                          imgsz=list(imgsz or model.input_size or (640, 640)), batch=batch, rect=False, verbose=False)
        self.name = f"ultralytics:{model.name}"
        log.info("%s: %s", self.name, self._args)

    def detect(self, frames: Sequence[np.ndarray]) -> list[Detections]:
        """Detect objects in a batch of (H, W, 3) uint8 BGR frames; one :class:`Detections` per frame,
        xyxy in frame pixels."""
        if len(frames) == 0:
            return []
        for i, frame in enumerate(frames):
            check_frame(frame, i)
        results = self._model.predict(list(frames), **self._args)
        return [detections_from_ultralytics(r) for r in results]

    def close(self) -> None:
        """Drop the model."""
        self._model = None  # type: ignore[assignment]
