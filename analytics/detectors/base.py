"""The detector contract: a batched ``detect(frames) -> list[Detections]``.

Every backend (one per file in this package) implements :class:`Detector`. Backends are created through
:func:`analytics.detectors.create_detector`, which imports a backend module only when it is asked for, so
``import analytics`` never loads OpenVINO, ONNX Runtime or torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from analytics.types import Detections


@runtime_checkable
class Detector(Protocol):
    """A COCO object detector.

    ``detect`` takes a batch of (H, W, 3) uint8 BGR frames (sizes may differ) and returns one
    :class:`Detections` per frame, in frame pixels, already filtered to the detector's classes and
    minimum confidence and de-duplicated by per-class NMS.
    """

    name: str

    def detect(self, frames: Sequence[np.ndarray]) -> list[Detections]: ...

    def close(self) -> None: ...
