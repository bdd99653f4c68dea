"""Privacy masks: private zones are blanked (filled black) right after decoding, before any other stage.

Polygons are given in normalised image coordinates (``x`` and ``y`` in ``[0, 1]``, origin top-left), so one
config holds for any decoded size. The rasterised mask is built once per frame size and cached.

Every source calls :meth:`PrivacyMasker.apply` on each frame before yielding it, so no detector, tracker,
sink or recording ever sees the private pixels.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import cv2
import numpy as np

from analytics.config import PrivacyMask

logger = logging.getLogger(__name__)

#: Sub-pixel bits used when rasterising polygons (cv2.fillPoly ``shift``).
_SHIFT = 4


def rasterise(masks: Sequence[PrivacyMask], width: int, height: int) -> np.ndarray:
    """Rasterise normalised polygons for a frame of ``width`` x ``height`` pixels.

    A normalised point ``(x, y)`` maps to pixel coordinates ``(x * width, y * height)`` measured from the
    frame's top-left *edge*, so ``(0, 0)-(1, 1)`` covers every pixel. Edge pixels touched by a polygon are
    included (privacy errs on the side of blanking more).

    Returns:
        (height, width) uint8 mask, 255 inside a private zone, 0 elsewhere.
    """
    if width <= 0 or height <= 0:
        raise ValueError(f"frame size must be positive, got {width}x{height}")
    mask = np.zeros((height, width), np.uint8)
    scale = np.array([width, height], np.float64)
    # cv2 puts integer coordinates at pixel centres; shift by half a pixel so 0 and 1 are the frame edges.
    polys = [
        np.round((np.asarray(m.polygon, np.float64) * scale - 0.5) * (1 << _SHIFT)).astype(np.int32)
        for m in masks
    ]
    for poly in polys:  # one call per polygon: a single fillPoly call would XOR overlapping polygons
        cv2.fillPoly(mask, [poly], 255, lineType=cv2.LINE_8, shift=_SHIFT)
    return mask


class PrivacyMasker:
    """Blanks a camera's private zones in decoded frames.

    The mask for each frame size is rasterised on first use and cached, together with the bounding box of
    the private pixels so that blanking touches only that region.
    """

    def __init__(self, masks: Sequence[PrivacyMask], *, camera_id: str = "") -> None:
        self.masks = tuple(masks)
        self.camera_id = camera_id
        self._cache: dict[tuple[int, int], tuple[np.ndarray, tuple[slice, slice] | None]] = {}

    def __bool__(self) -> bool:
        return bool(self.masks)

    def mask_for(self, width: int, height: int) -> np.ndarray:
        """(height, width) uint8 mask of the private pixels (255 = private), cached per size. Read-only."""
        return self._entry(width, height)[0]

    def _entry(self, width: int, height: int) -> tuple[np.ndarray, tuple[slice, slice] | None]:
        key = (width, height)
        entry = self._cache.get(key)
        if entry is None:
            mask = rasterise(self.masks, width, height)
            ys, xs = np.nonzero(mask)
            box = (slice(int(ys.min()), int(ys.max()) + 1), slice(int(xs.min()), int(xs.max()) + 1)) \
                if len(ys) else None
            mask.setflags(write=False)
            entry = (mask, box)
            self._cache[key] = entry
            logger.debug("camera %s: privacy mask for %dx%d covers %d pixels",
                         self.camera_id, width, height, len(ys))
        return entry

    def apply(self, image: np.ndarray, *, inplace: bool = False) -> np.ndarray:
        """Blank (set to 0) the private pixels of ``image``.

        Args:
            image: (H, W, C) or (H, W) uint8, pixels of the decoded frame.
            inplace: write into ``image`` instead of a copy. The sources use ``inplace=True`` because
                OpenCV (``VideoCapture.read``, ``imread``) and PyAV (``to_ndarray``) hand back a freshly
                allocated array for every frame, never a buffer the decoder reuses, so blanking it in place
                mutates nothing anybody else holds and saves a full-frame copy.

        Returns:
            The masked image: ``image`` itself when ``inplace`` or when there are no masks, else a new array.
        """
        if not self.masks:
            return image
        if image.ndim not in (2, 3):
            raise ValueError(f"expected an (H, W) or (H, W, C) image, got shape {image.shape}")
        height, width = image.shape[:2]
        mask, box = self._entry(width, height)
        out = image if inplace else image.copy()
        if box is not None:
            region = out[box]
            region[mask[box] != 0] = 0
        return out
