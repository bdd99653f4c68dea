"""Letterbox pre-processing shared by the native backends (OpenVINO, ONNX Runtime).

A frame is resized keeping its aspect ratio so that it fits the network input, then padded with grey
(114) to exactly the input size, centred, as Ultralytics does. :class:`Letterbox` records the scale and
padding, so boxes in network pixels map back to frame pixels with :meth:`Letterbox.to_frame`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

PAD_VALUE = 114


@dataclass(frozen=True)
class Letterbox:
    """How one frame was placed in the network input.

    Attributes:
        scale: network pixels per frame pixel (same on both axes).
        pad_x: left padding, network pixels.
        pad_y: top padding, network pixels.
        frame_size: (width, height) of the original frame, pixels.
    """

    scale: float
    pad_x: int
    pad_y: int
    frame_size: tuple[int, int]

    def to_frame(self, xyxy: np.ndarray) -> np.ndarray:
        """Map (N, 4) float xyxy boxes from network pixels to frame pixels, clipped to the frame.

        Returns a new (N, 4) float32 array; the input is not modified.
        """
        offset = np.array([self.pad_x, self.pad_y, self.pad_x, self.pad_y], dtype=np.float32)
        out = (np.asarray(xyxy, dtype=np.float32) - offset) / np.float32(self.scale)
        w, h = self.frame_size
        upper = np.array([w, h, w, h], dtype=np.float32)
        return np.clip(out, 0.0, upper)


def letterbox_params(frame_size: tuple[int, int], input_hw: tuple[int, int]) -> tuple[Letterbox, tuple[int, int]]:
    """Letterbox geometry for a frame of (width, height) into a network input of (height, width).

    Returns the :class:`Letterbox` and the resized (width, height) before padding.
    Rounding follows Ultralytics (``round(d - 0.1)`` for the top/left padding).
    """
    fw, fh = frame_size
    ih, iw = input_hw
    if fw <= 0 or fh <= 0:
        raise ValueError(f"frame size must be positive, got (w, h) = {frame_size}")
    scale = min(ih / fh, iw / fw)
    new_w, new_h = int(round(fw * scale)), int(round(fh * scale))
    pad_x = int(round((iw - new_w) / 2 - 0.1))
    pad_y = int(round((ih - new_h) / 2 - 0.1))
    return Letterbox(scale=scale, pad_x=pad_x, pad_y=pad_y, frame_size=(fw, fh)), (new_w, new_h)


def check_frame(frame: np.ndarray, index: int) -> None:
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        desc = f"{frame.dtype} {frame.shape}" if isinstance(frame, np.ndarray) else type(frame).__name__
        raise ValueError(f"frame {index} must be an (H, W, 3) uint8 BGR array, got {desc}")


def letterbox(frame: np.ndarray, *, input_hw: tuple[int, int]) -> tuple[np.ndarray, Letterbox]:
    """Resize and pad one BGR frame to the network input.

    Args:
        frame: (H, W, 3) uint8 BGR.
        input_hw: network input (height, width), pixels.

    Returns:
        ``(image, box)``: (h, w, 3) uint8 BGR padded with 114, and its :class:`Letterbox`.
    """
    import cv2

    check_frame(frame, 0)
    box, (new_w, new_h) = letterbox_params((frame.shape[1], frame.shape[0]), input_hw)
    resized = frame if (new_w, new_h) == (frame.shape[1], frame.shape[0]) else cv2.resize(
        frame, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    out = np.full((*input_hw, 3), PAD_VALUE, dtype=np.uint8)
    out[box.pad_y:box.pad_y + new_h, box.pad_x:box.pad_x + new_w] = resized
    return out, box


def to_tensor(images: Sequence[np.ndarray], *, out: np.ndarray | None = None) -> np.ndarray:
    """Stack letterboxed (h, w, 3) uint8 BGR images into a (B, 3, h, w) float32 RGB tensor in [0, 1].

    ``out`` may be a preallocated (B, 3, h, w) float32 array to fill (it is returned).
    """
    batch = np.stack(images)  # (B, h, w, 3) BGR
    chw = batch[..., ::-1].transpose(0, 3, 1, 2)  # view: (B, 3, h, w) RGB
    if out is None:
        out = np.empty(chw.shape, dtype=np.float32)
    np.multiply(chw, np.float32(1.0 / 255.0), out=out, dtype=np.float32)
    return out


def preprocess(frames: Sequence[np.ndarray], *, input_hw: tuple[int, int]) -> tuple[np.ndarray, list[Letterbox]]:
    """Letterbox a batch of BGR frames (sizes may differ) into one network tensor.

    Args:
        frames: B arrays (H_i, W_i, 3) uint8 BGR.
        input_hw: network input (height, width), pixels.

    Returns:
        ``(tensor, boxes)``: (B, 3, h, w) float32 RGB in [0, 1] and one :class:`Letterbox` per frame.
    """
    if len(frames) == 0:
        raise ValueError("preprocess needs at least one frame, got an empty batch")
    images, boxes = [], []
    for i, frame in enumerate(frames):
        check_frame(frame, i)
        image, box = letterbox(frame, input_hw=input_hw)
        images.append(image)
        boxes.append(box)
    return to_tensor(images), boxes


def input_hw(model_hw: tuple[int | None, int | None], requested: tuple[int, int] | None) -> tuple[int, int]:
    """The network input (height, width) to use.

    Args:
        model_hw: the model's input (height, width); None for a dynamic dimension.
        requested: the configured input size, or None for the model's own (640 when dynamic).

    Raises:
        ValueError: ``requested`` differs from a static model's input, or is not a positive multiple of 32.
    """
    if requested is not None:
        if len(requested) != 2 or any(int(v) <= 0 or int(v) % 32 for v in requested):
            raise ValueError(f"input size must be (height, width), positive multiples of 32, got {requested}")
        for axis, fixed, want in zip(("height", "width"), model_hw, requested):
            if fixed is not None and fixed != want:
                raise ValueError(f"the model's input {axis} is fixed at {fixed} but imgsz asks for {want}; "
                                 f"leave imgsz unset or export the model at {tuple(requested)}")
        return int(requested[0]), int(requested[1])
    return tuple(640 if v is None else int(v) for v in model_hw)  # type: ignore[return-value]
