"""The visible watermark of exported footage: a few lines of white text on a darkened box in one corner.

Coordinates are pixels of the frame, origin top-left; boxes are ``(x0, y0, x1, y1)`` with ``x1``/``y1``
exclusive. OpenCV draws only ASCII, so other characters are shown as ``?``. OpenCV is imported on first use.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

CORNERS = ("bottom-left", "bottom-right", "top-left", "top-right")
_FONT = 0  # cv2.FONT_HERSHEY_SIMPLEX
#: The box keeps this share of the footage's brightness under the text.
_DIM = 0.3


def utc_iso(t: float) -> str:
    """Unix seconds as UTC ISO-8601 with milliseconds: ``2026-03-01T12:00:00.040Z``."""
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class WatermarkStyle:
    """Font scale and thickness, and spacing in pixels, for one frame size."""

    scale: float
    thickness: int
    margin: int
    padding: int
    line_gap: int


def style_for(width: int, height: int, lines: Sequence[str]) -> WatermarkStyle:
    """A legible style for a ``width`` x ``height`` frame: text about 1/36 of the height (Hershey scale 0.35 at
    least), shrunk when the widest of ``lines`` would not fit in 90 % of the width."""
    import cv2

    scale = float(np.clip(height / 720.0 * 0.8, 0.35, 1.6))
    widest = max((cv2.getTextSize(_ascii(t), _FONT, scale, 1)[0][0] for t in lines), default=0)
    if widest > 0.9 * width:
        scale *= 0.9 * width / widest
    thickness = 2 if scale >= 0.8 else 1
    pad = max(2, round(6 * scale))
    return WatermarkStyle(scale, thickness, margin=pad, padding=pad, line_gap=max(2, round(8 * scale)))


def watermark_box(width: int, height: int, lines: Sequence[str], *, corner: str = "bottom-left",
                  style: WatermarkStyle | None = None) -> tuple[int, int, int, int]:
    """The ``(x0, y0, x1, y1)`` pixel box the watermark of ``lines`` covers on a ``width`` x ``height`` frame."""
    import cv2

    if corner not in CORNERS:
        raise ValueError(f"unknown watermark corner {corner!r}; expected one of {', '.join(CORNERS)}")
    style = style or style_for(width, height, lines)
    sizes = [cv2.getTextSize(_ascii(t), _FONT, style.scale, style.thickness) for t in lines]
    text_w = max((w for (w, _), _ in sizes), default=0)
    text_h = sum(h + base for (_, h), base in sizes) + style.line_gap * max(len(lines) - 1, 0)
    box_w, box_h = text_w + 2 * style.padding, text_h + 2 * style.padding
    x0 = style.margin if corner.endswith("left") else width - style.margin - box_w
    y0 = style.margin if corner.startswith("top") else height - style.margin - box_h
    x0, y0 = max(0, x0), max(0, y0)
    return x0, y0, min(width, x0 + box_w), min(height, y0 + box_h)


def draw_watermark(image: np.ndarray, lines: Sequence[str], *, corner: str = "bottom-left",
                   style: WatermarkStyle | None = None) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """A copy of the BGR ``(H, W, 3) uint8`` ``image`` with ``lines`` drawn in ``corner``, and the box drawn on.

    The box is darkened to 30 % of the footage's brightness and the text is white, so it reads on any scene.
    """
    import cv2

    height, width = image.shape[:2]
    style = style or style_for(width, height, lines)
    x0, y0, x1, y1 = box = watermark_box(width, height, lines, corner=corner, style=style)
    out = image.copy()
    out[y0:y1, x0:x1] = (out[y0:y1, x0:x1] * _DIM).astype(np.uint8)
    y = y0 + style.padding
    for text in lines:
        (_, h), base = cv2.getTextSize(_ascii(text), _FONT, style.scale, style.thickness)
        cv2.putText(out, _ascii(text), (x0 + style.padding, y + h), _FONT, style.scale, (255, 255, 255),
                    style.thickness, cv2.LINE_AA)
        y += h + base + style.line_gap
    return out, box


def _ascii(text: str) -> str:
    return text.encode("ascii", "replace").decode("ascii")
