"""The three detector backends on ``../shared/images/bus.jpg`` against the reference and each other.

Reference (``../shared/models/README.md``, yolo11n INT8 OpenVINO at 640): bus 0.94 [12, 229, 798, 736],
persons 0.90 / 0.83 / 0.82 / 0.44.

Tolerances:

* same model, any backend (native OpenVINO vs ultralytics on the INT8 IR): boxes within 2 px of the
  reference, scores within 0.01 (the reference is rounded to 2 decimals);
* INT8 vs FP32 models (``yolo11n_int8_openvino`` vs ``yolo11n_w8dq_onnx`` / ``yolo11n_w8dq_pt``, same
  weights, activations quantized or not): the same number of detections, each matched one-to-one with
  IoU >= 0.9, the same class and ``|score difference| <= 0.05``;
* same model on two backends: matched IoU >= 0.99 and ``|score difference| <= 0.01``.
"""

from __future__ import annotations

import numpy as np
import pytest

from analytics.config import DetectorConfig
from analytics.detectors import create_detector
from analytics.paths import shared_dir
from analytics.types import CLASS_NAMES, Detections

pytestmark = pytest.mark.integration

CLASSES = tuple(CLASS_NAMES)
BUS, PERSON = 5, 0
REF_BUS_XYXY = np.array([12, 229, 798, 736], np.float32)
REF_PERSON_SCORES = [0.90, 0.83, 0.82, 0.44]
CROSS_MODEL = {"iou": 0.9, "score": 0.05}  # INT8 vs FP32
SAME_MODEL = {"iou": 0.99, "score": 0.01}  # one model, two backends

RUNS = {
    "openvino/int8": ("openvino", "yolo11n_int8_openvino"),
    "openvino/onnx": ("openvino", "yolo11n_w8dq_onnx"),
    "onnxruntime/onnx": ("onnxruntime", "yolo11n_w8dq_onnx"),
    "ultralytics/int8": ("ultralytics", "yolo11n_int8_openvino"),
    "ultralytics/pt": ("ultralytics", "yolo11n_w8dq_pt"),
}
INT8 = {"openvino/int8", "ultralytics/int8"}


@pytest.fixture(scope="module")
def bus_image() -> np.ndarray:
    cv2 = pytest.importorskip("cv2")
    path = shared_dir() / "images" / "bus.jpg"
    image = cv2.imread(str(path))
    if image is None:
        pytest.fail(f"cannot read {path}")
    return image


@pytest.fixture(scope="module")
def results(bus_image) -> dict[str, Detections]:
    """Detections of every backend/model pair on bus.jpg (ultralytics pairs only when torch is installed)."""
    out = {}
    for key, (backend, model) in RUNS.items():
        if backend == "ultralytics" and not _has("ultralytics"):
            continue
        det = create_detector(DetectorConfig(backend=backend, model=model), classes=CLASSES, confidence=0.25)
        try:
            out[key] = det.detect([bus_image])[0]
        finally:
            det.close()
    return out


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _get(results: dict[str, Detections], key: str) -> Detections:
    if key not in results:
        pytest.skip(f"{key}: backend not installed")
    return results[key]


def _iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    tl = np.maximum(a[:, None, :2], b[None, :, :2])
    br = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(br - tl, 0, None), axis=2)
    area = lambda x: np.prod(x[:, 2:] - x[:, :2], axis=1)  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None, :] - inter)


def assert_agree(a: Detections, b: Detections, *, iou: float, score: float) -> None:
    """Same count; greedy one-to-one matching by IoU; each pair: IoU >= iou, same class, scores within score."""
    assert len(a) == len(b), f"{len(a)} vs {len(b)} detections"
    ious = _iou_matrix(a.xyxy, b.xyxy)
    for _ in range(len(a)):
        i, j = np.unravel_index(np.argmax(ious), ious.shape)
        assert ious[i, j] >= iou, f"box {a.xyxy[i]} best match {b.xyxy[j]} has IoU {ious[i, j]:.3f} < {iou}"
        assert a.class_id[i] == b.class_id[j], f"class {a.class_id[i]} vs {b.class_id[j]} at {a.xyxy[i]}"
        diff = abs(float(a.confidence[i]) - float(b.confidence[j]))
        assert diff <= score, f"score {a.confidence[i]:.3f} vs {b.confidence[j]:.3f} at {a.xyxy[i]}"
        ious[i, :], ious[:, j] = -1, -1


@pytest.mark.parametrize("key", sorted(INT8))
def test_int8_matches_reference(results, key):
    dets = _get(results, key)
    bus = dets[dets.class_id == BUS]
    assert len(bus) == 1
    assert float(bus.confidence[0]) == pytest.approx(0.94, abs=0.01)
    np.testing.assert_allclose(bus.xyxy[0], REF_BUS_XYXY, atol=2.0)
    persons = np.sort(dets.confidence[dets.class_id == PERSON])[::-1]
    np.testing.assert_allclose(persons, REF_PERSON_SCORES, atol=0.01)
    assert set(dets.class_id.tolist()) == {BUS, PERSON}


@pytest.mark.parametrize("key", sorted(set(RUNS) - INT8))
def test_fp32_models_agree_with_int8_reference(results, key):
    assert_agree(_get(results, key), _get(results, "openvino/int8"), **CROSS_MODEL)


@pytest.mark.parametrize(("a", "b"), [("openvino/int8", "ultralytics/int8"), ("onnxruntime/onnx", "openvino/onnx"),
                                      ("onnxruntime/onnx", "ultralytics/pt")])
def test_same_model_agrees_across_backends(results, a, b):
    assert_agree(_get(results, a), _get(results, b), **SAME_MODEL)


def test_batch_of_mixed_sizes_equals_single_frames(bus_image):
    """A batch returns, per frame, what single-frame calls return (native OpenVINO, async queue)."""
    det = create_detector(DetectorConfig(), classes=CLASSES, confidence=0.25)
    try:
        small = bus_image[::2, ::2].copy()
        batch = det.detect([bus_image, small, bus_image])
        singles = [det.detect([f])[0] for f in (bus_image, small, bus_image)]
    finally:
        det.close()
    for got, want in zip(batch, singles):
        np.testing.assert_array_equal(got.xyxy, want.xyxy)
        np.testing.assert_array_equal(got.class_id, want.class_id)
