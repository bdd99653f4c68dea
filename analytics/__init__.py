"""Computer-vision analytics for urban video-supervision centres.

Importing the package is light: it loads numpy-only core types. Detector backends (OpenVINO, ONNX Runtime,
ultralytics/torch) and OpenCV are imported only by the stages that use them.
"""

from analytics.types import CLASS_NAMES, Detections, Frame, Health, Tracks, TrackState

__all__ = ["CLASS_NAMES", "Detections", "Frame", "Health", "Tracks", "TrackState"]
__version__ = "0.1.0"
