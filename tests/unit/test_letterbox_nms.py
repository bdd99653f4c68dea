"""Letterbox geometry, tensor layout, head decoding and per-class NMS (numpy only, no models)."""

from __future__ import annotations

import numpy as np
import pytest

from analytics.detectors.postprocess import cxcywh_to_xyxy, decode, iou_one_to_many, nms
from analytics.detectors.preprocess import (
    PAD_VALUE,
    Letterbox,
    input_hw,
    letterbox,
    letterbox_params,
    preprocess,
    to_tensor,
)


@pytest.mark.parametrize(
    ("frame_wh", "input_hw_", "scale", "pad", "resized"),
    [
        ((768, 576), (640, 640), 640 / 768, (0, 80), (640, 480)),
        ((810, 1080), (640, 640), 640 / 1080, (80, 0), (480, 640)),
        ((640, 640), (640, 640), 1.0, (0, 0), (640, 640)),
        ((1920, 1080), (640, 640), 1 / 3, (0, 140), (640, 360)),
        ((768, 576), (480, 640), 640 / 768, (0, 0), (640, 480)),
        ((320, 240), (640, 640), 2.0, (0, 80), (640, 480)),
    ],
)
def test_letterbox_params(frame_wh, input_hw_, scale, pad, resized):
    box, size = letterbox_params(frame_wh, input_hw_)
    assert box.scale == pytest.approx(scale)
    assert (box.pad_x, box.pad_y) == pad
    assert size == resized
    assert box.frame_size == frame_wh


def test_letterbox_image_pads_with_114_and_keeps_content():
    frame = np.zeros((576, 768, 3), np.uint8)
    frame[:, :, 2] = 200  # red in BGR
    image, box = letterbox(frame, input_hw=(640, 640))
    assert image.shape == (640, 640, 3) and image.dtype == np.uint8
    assert (image[: box.pad_y] == PAD_VALUE).all() and (image[-box.pad_y:] == PAD_VALUE).all()
    assert (image[box.pad_y:-box.pad_y, :, 2] == 200).all()


def test_letterbox_does_not_mutate_input():
    frame = np.full((100, 200, 3), 7, np.uint8)
    before = frame.copy()
    letterbox(frame, input_hw=(64, 64))
    np.testing.assert_array_equal(frame, before)


@pytest.mark.parametrize(
    "bad",
    [np.zeros((10, 10), np.uint8), np.zeros((10, 10, 3), np.float32), np.zeros((10, 10, 4), np.uint8), "img"],
)
def test_letterbox_rejects_bad_frames(bad):
    with pytest.raises(ValueError, match="uint8 BGR"):
        letterbox(bad, input_hw=(64, 64))


def test_to_tensor_is_rgb_nchw_unit_range():
    img = np.zeros((4, 6, 3), np.uint8)
    img[..., 0], img[..., 1], img[..., 2] = 10, 20, 255  # B, G, R
    t = to_tensor([img, img])
    assert t.shape == (2, 3, 4, 6) and t.dtype == np.float32
    np.testing.assert_allclose(t[:, 0], 1.0)  # R first
    np.testing.assert_allclose(t[:, 2], 10 / 255)


def test_preprocess_mixed_sizes():
    frames = [np.zeros((576, 768, 3), np.uint8), np.zeros((1080, 1920, 3), np.uint8)]
    tensor, boxes = preprocess(frames, input_hw=(640, 640))
    assert tensor.shape == (2, 3, 640, 640)
    assert [b.frame_size for b in boxes] == [(768, 576), (1920, 1080)]


def test_to_frame_inverts_letterbox_and_clips():
    box, _ = letterbox_params((768, 576), (640, 640))
    frame_xyxy = np.array([[100, 50, 300, 500], [-10, -10, 900, 700]], np.float32)
    net = frame_xyxy * box.scale + np.array([box.pad_x, box.pad_y] * 2, np.float32)
    back = box.to_frame(net)
    np.testing.assert_allclose(back[0], frame_xyxy[0], atol=1e-3)
    np.testing.assert_allclose(back[1], [0, 0, 768, 576])


@pytest.mark.parametrize(
    ("model_hw", "requested", "expected"),
    [((640, 640), None, (640, 640)), ((None, None), None, (640, 640)), ((None, None), (480, 640), (480, 640)),
     ((480, 640), (480, 640), (480, 640))],
)
def test_input_hw(model_hw, requested, expected):
    assert input_hw(model_hw, requested) == expected


@pytest.mark.parametrize(("model_hw", "requested", "match"),
                         [((640, 640), (480, 640), "fixed at 640"), ((None, None), (500, 640), "multiples of 32")])
def test_input_hw_errors(model_hw, requested, match):
    with pytest.raises(ValueError, match=match):
        input_hw(model_hw, requested)


def test_cxcywh_to_xyxy():
    np.testing.assert_allclose(cxcywh_to_xyxy(np.array([[10, 20, 4, 6]])), [[8, 17, 12, 23]])


@pytest.mark.parametrize(
    ("other", "expected"),
    [([0, 0, 10, 10], 1.0), ([5, 0, 15, 10], 50 / 150), ([20, 20, 30, 30], 0.0), ([0, 0, 5, 10], 0.5)],
)
def test_iou_one_to_many(other, expected):
    got = iou_one_to_many(np.array([0, 0, 10, 10], np.float32), np.array([other], np.float32))
    assert got[0] == pytest.approx(expected)


BOXES = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [0, 0, 10, 10], [50, 50, 60, 60], [2, 0, 12, 10]], np.float32)


@pytest.mark.parametrize(
    ("scores", "classes", "iou", "expected"),
    [
        # overlapping boxes of one class: only the best survives; the far box stays
        ([0.9, 0.8, 0.7, 0.6, 0.5], [0, 0, 0, 0, 0], 0.5, [0, 3]),
        # same boxes, another class for box 2: classes never suppress each other
        ([0.9, 0.8, 0.7, 0.6, 0.5], [0, 0, 2, 0, 0], 0.5, [0, 2, 3]),
        # threshold 1.0 keeps everything, ordered by score
        ([0.5, 0.8, 0.7, 0.6, 0.9], [0, 0, 0, 0, 0], 1.0, [4, 1, 2, 3, 0]),
        # IoU(box0, box4) = 0.667 and IoU(box1, box2) = 0.681: both kept when the threshold is above
        ([0.9, 0.1, 0.1, 0.1, 0.8], [0, 1, 1, 1, 0], 0.7, [0, 4, 1, 2, 3]),
        # ... and suppressed below
        ([0.9, 0.1, 0.1, 0.1, 0.8], [0, 1, 1, 1, 0], 0.6, [0, 1, 3]),
    ],
)
def test_nms_table(scores, classes, iou, expected):
    keep = nms(BOXES, np.array(scores, np.float32), np.array(classes), iou=iou)
    assert keep.tolist() == expected


def test_nms_empty_and_max_det():
    assert nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, int), iou=0.5).size == 0
    far = np.array([[i * 20, 0, i * 20 + 10, 10] for i in range(10)], np.float32)
    assert len(nms(far, np.linspace(1, 0.1, 10, dtype=np.float32), np.zeros(10, int), iou=0.5, max_det=3)) == 3


def test_nms_rejects_bad_iou():
    with pytest.raises(ValueError, match="got 0"):
        nms(BOXES, np.ones(5, np.float32), np.zeros(5, int), iou=0)


def _head(anchors: list[tuple[tuple[float, float, float, float], dict[int, float]]]) -> np.ndarray:
    """A (1, 84, A) head output from (cxcywh, {class: score}) per anchor."""
    out = np.zeros((1, 84, len(anchors)), np.float32)
    for a, (box, scores) in enumerate(anchors):
        out[0, :4, a] = box
        for c, s in scores.items():
            out[0, 4 + c, a] = s
    return out


IDENTITY = Letterbox(scale=1.0, pad_x=0, pad_y=0, frame_size=(640, 640))


@pytest.mark.parametrize(
    ("classes", "confidence", "expected"),
    [
        ((0, 2), 0.25, [(0, 0.9), (2, 0.6)]),  # anchor 1 (dog 0.95) has car 0.6 among requested classes
        ((0,), 0.25, [(0, 0.9)]),
        ((0, 2), 0.7, [(0, 0.9)]),
        ((5,), 0.25, []),
    ],
)
def test_decode_best_requested_class(classes, confidence, expected):
    out = _head([((100, 100, 20, 40), {0: 0.9, 2: 0.1}), ((300, 300, 50, 50), {16: 0.95, 2: 0.6}),
                 ((500, 500, 10, 10), {0: 0.1})])
    dets = decode(out, [IDENTITY], classes=classes, confidence=confidence, iou=0.7)[0]
    assert [(int(c), round(float(s), 2)) for c, s in zip(dets.class_id, dets.confidence)] == expected


def test_decode_maps_through_letterbox():
    box, _ = letterbox_params((768, 576), (640, 640))  # scale 5/6, pad_y 80
    out = _head([((320, 320, 100, 200), {0: 0.8})])
    dets = decode(out, [box], classes=(0,), confidence=0.25, iou=0.7)[0]
    np.testing.assert_allclose(dets.xyxy[0], [324, 168, 444, 408], atol=1e-3)


def test_decode_checks_shapes():
    with pytest.raises(ValueError, match=r"\(B, 84, A\)"):
        decode(np.zeros((1, 85, 10), np.float32), [IDENTITY], classes=(0,), confidence=0.5, iou=0.5)
    with pytest.raises(ValueError, match="2 images but 1"):
        decode(np.zeros((2, 84, 10), np.float32), [IDENTITY], classes=(0,), confidence=0.5, iou=0.5)
    with pytest.raises(ValueError, match="COCO ids"):
        decode(np.zeros((1, 84, 10), np.float32), [IDENTITY], classes=(80,), confidence=0.5, iou=0.5)
