"""Object detectors behind one contract, :class:`~analytics.detectors.base.Detector`.

Backends live one per module and are imported only when :func:`create_detector` asks for them, so
``import analytics.detectors`` loads neither OpenVINO, ONNX Runtime, torch nor OpenCV:

=============  =====================================  ==============================================
backend        module                                 models
=============  =====================================  ==============================================
openvino       ``analytics.detectors.openvino``       OpenVINO IR (default: INT8 yolo11n), ONNX
onnxruntime    ``analytics.detectors.onnxruntime``    ONNX
ultralytics    ``analytics.detectors.ultralytics``    ``.pt``, ONNX, OpenVINO IR folders (needs torch)
=============  =====================================  ==============================================

Example:
    >>> from analytics.config import DetectorConfig
    >>> det = create_detector(DetectorConfig(), classes=(0, 2), confidence=0.25)  # doctest: +SKIP
    >>> dets = det.detect([frame_bgr])[0]  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from analytics.detectors.base import Detector

if TYPE_CHECKING:
    from analytics.config import DetectorConfig

__all__ = ["BACKENDS", "Detector", "create_detector"]

#: backend name -> "module:class", imported on use only.
BACKENDS: dict[str, str] = {
    "openvino": "analytics.detectors.openvino:OpenVINODetector",
    "onnxruntime": "analytics.detectors.onnxruntime:OnnxRuntimeDetector",
    "ultralytics": "analytics.detectors.ultralytics:UltralyticsDetector",
}


def _backend_class(backend: str) -> type:
    if backend not in BACKENDS:
        raise ValueError(f"unknown detector backend {backend!r}; expected one of {sorted(BACKENDS)}")
    module_name, class_name = BACKENDS[backend].split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ImportError(f"detector backend {backend!r} needs a package that is not installed ({err}); "
                          f"install the matching extra, e.g. pip install 'analytics[{backend}]'") from err
    return getattr(module, class_name)


def create_detector(cfg: DetectorConfig, *, classes: tuple[int, ...], confidence: float) -> Detector:
    """Build the detector described by ``cfg``.

    Args:
        cfg: backend, model (registry name or path), device, input size, batch, NMS IoU, threads.
        classes: COCO ids the detector reports (the union over cameras).
        confidence: lowest score the detector reports (the minimum over cameras), in [0, 1].

    Raises:
        ValueError: unknown backend, empty classes, confidence outside [0, 1], or a model the backend
            cannot run.
        analytics.models.ModelError: the model is missing or corrupt.
    """
    from analytics.models import resolve_model

    if not classes or any(not 0 <= int(c) < 80 for c in classes):
        raise ValueError(f"classes must be a non-empty tuple of COCO ids in [0, 80), got {classes!r}")
    if not 0.0 <= confidence <= 1.0:
        raise ValueError(f"confidence must be in [0, 1], got {confidence}")
    cls = _backend_class(cfg.backend)
    model = resolve_model(cfg.model)
    if cfg.backend not in model.backends:
        raise ValueError(f"model {model.name!r} ({model.format}) cannot run on backend {cfg.backend!r}; "
                         f"it runs on {list(model.backends)}")
    imgsz = (cfg.imgsz, cfg.imgsz) if isinstance(cfg.imgsz, int) else cfg.imgsz
    return cls(model, classes=tuple(int(c) for c in classes), confidence=confidence, iou=cfg.nms_iou,
               device=cfg.device, imgsz=imgsz, batch=cfg.batch, threads=cfg.threads)
