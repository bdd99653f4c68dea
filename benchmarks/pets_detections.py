"""Run a detector over PETS09-S2L1 once and cache its low-confidence person detections.

Two ways to produce the detections:

- default (``model=None``): the shipped 640x640 INT8 model through ultralytics ``predict`` (what the tracker
  comparison in ``benchmarks/results/tracker_choice.md`` was tuned on); cache
  ``PETS09-S2L1_yolo11n_int8_openvino_model_640_c0.05.npz`` (name kept so existing caches stay valid);
- ``model=NAME``: a registry model (see :func:`analytics.models.resolve_model`) through the project's own
  backend (:func:`analytics.detectors.create_detector`, default ``openvino``), one frame per ``detect`` call,
  frames read with ``cv2.imread`` in sorted order; cache ``PETS09-S2L1_<backend>_<model>_c<conf>.npz``.

The cache is an ``.npz`` under the project's git-ignored ``.cache/`` folder with columnar arrays:
``frame`` (M,) int32 1-based MOT frame numbers, ``xyxy`` (M, 4) float32 pixels, ``confidence`` (M,) float32,
``class_id`` (M,) int16, plus ``n_frames`` and ``fps``. Reused when present.

Usage: ``python -m benchmarks.pets_detections [--model NAME] [--backend openvino]`` (about a minute on two
CPU cores).
"""

from __future__ import annotations

import configparser
import logging
import os
from pathlib import Path

import numpy as np

from analytics import paths
from analytics.types import Detections

log = logging.getLogger(__name__)

SEQUENCE = "PETS09-S2L1"
MODEL = "yolo11n_int8_openvino_model"
CACHE_DIR = paths.PROJECT_ROOT / ".cache"


def sequence_dir(name: str = SEQUENCE) -> Path:
    return paths.footage_dir() / "mot" / name


def sequence_info(seq_dir: Path) -> dict[str, float]:
    """``seqinfo.ini`` as numbers: ``fps``, ``length``, ``width``, ``height``."""
    ini = configparser.ConfigParser()
    if not ini.read(seq_dir / "seqinfo.ini"):
        raise FileNotFoundError(f"no seqinfo.ini in {seq_dir}")
    sec = ini["Sequence"]
    return {"fps": float(sec["frameRate"]), "length": int(sec["seqLength"]),
            "width": int(sec["imWidth"]), "height": int(sec["imHeight"])}


def load_yolo(model_path: Path):  # noqa: ANN201 - ultralytics type, imported lazily
    """An ultralytics YOLO on a local model file (never downloads)."""
    if not model_path.exists():
        raise FileNotFoundError(f"detector model not found: {model_path}")
    os.environ.setdefault("YOLO_CONFIG_DIR", "/tmp/yolo_cfg")
    from ultralytics import YOLO

    return YOLO(str(model_path), task="detect")


def detect_sequence(seq_dir: Path, *, conf: float = 0.05, imgsz: int = 640,
                    model_path: Path | None = None) -> list[Detections]:
    """Person detections for every frame of a MOT sequence folder, in frame order.

    # PIPELINE-HOOK: the project's own detector backend replaces ultralytics predict here.
    """
    model = load_yolo(model_path or paths.shared_dir() / "models" / MODEL)
    frames = sorted((seq_dir / "img1").glob("*.jpg"))
    if not frames:
        raise FileNotFoundError(f"no frames in {seq_dir / 'img1'}")
    out = []
    for path in frames:
        res = model.predict(str(path), imgsz=imgsz, conf=conf, classes=[0], verbose=False)[0]
        boxes = res.boxes
        out.append(Detections(boxes.xyxy.cpu().numpy(), boxes.conf.cpu().numpy(), boxes.cls.cpu().numpy()))
    return out


def detect_sequence_native(seq_dir: Path, *, model: str, backend: str = "openvino",
                           conf: float = 0.05) -> list[Detections]:
    """Person detections for every frame of a MOT sequence folder, in frame order, from the project's own
    detector backend on a registry model name (or path)."""
    import cv2

    from analytics.config import DetectorConfig
    from analytics.detectors import create_detector

    frames = sorted((seq_dir / "img1").glob("*.jpg"))
    if not frames:
        raise FileNotFoundError(f"no frames in {seq_dir / 'img1'}")
    detector = create_detector(DetectorConfig(backend=backend, model=model), classes=(0,), confidence=conf)
    out = []
    try:
        for path in frames:
            image = cv2.imread(str(path))
            if image is None:
                raise OSError(f"cannot read {path}")
            out.append(detector.detect([image])[0])
    finally:
        close = getattr(detector, "close", None)
        if close is not None:
            close()
    return out


def cache_path(*, conf: float = 0.05, imgsz: int = 640, model: str | None = None,
               backend: str = "openvino") -> Path:
    """The cache file for the default ultralytics run (``model=None``) or a registry model on a backend."""
    if model is None:
        return CACHE_DIR / f"{SEQUENCE}_{MODEL}_{imgsz}_c{conf:g}.npz"
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in Path(model).name or model)
    return CACHE_DIR / f"{SEQUENCE}_{backend}_{safe}_c{conf:g}.npz"


def save_cache(path: Path, dets: list[Detections], *, fps: float) -> None:
    frame = np.concatenate([np.full(len(d), i + 1, np.int32) for i, d in enumerate(dets)])
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        path, frame=frame, n_frames=len(dets), fps=fps,
        xyxy=np.concatenate([d.xyxy for d in dets]).reshape(-1, 4),
        confidence=np.concatenate([d.confidence for d in dets]),
        class_id=np.concatenate([d.class_id for d in dets]),
    )


def load_cache(path: Path) -> tuple[list[Detections], float]:
    """The cached detections per frame (index 0 = MOT frame 1) and the sequence fps."""
    with np.load(path) as z:
        frame, xyxy, conf, cls = z["frame"], z["xyxy"], z["confidence"], z["class_id"]
        n, fps = int(z["n_frames"]), float(z["fps"])
    return [Detections(xyxy[frame == i + 1], conf[frame == i + 1], cls[frame == i + 1]) for i in range(n)], fps


def cached_detections(*, conf: float = 0.05, imgsz: int = 640, model: str | None = None,
                      backend: str = "openvino") -> tuple[list[Detections], float]:
    """PETS09-S2L1 detections from the cache, running the detector first if the cache is missing.

    ``model=None`` is the default ultralytics run of the shipped 640 model (``imgsz`` applies); a name runs
    that registry model on the project's ``backend`` at the model's own input size (``imgsz`` is ignored).
    """
    path = cache_path(conf=conf, imgsz=imgsz, model=model, backend=backend)
    if not path.exists():
        seq = sequence_dir()
        if model is None:
            log.info("running %s over %s with ultralytics (cache %s)", MODEL, seq, path)
            dets = detect_sequence(seq, conf=conf, imgsz=imgsz)
        else:
            log.info("running %s over %s on backend %s (cache %s)", model, seq, backend, path)
            dets = detect_sequence_native(seq, model=model, backend=backend, conf=conf)
        save_cache(path, dets, fps=sequence_info(seq)["fps"])
    return load_cache(path)


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="registry model name (default: ultralytics on the 640 model)")
    ap.add_argument("--backend", default="openvino", help="project backend for --model (default openvino)")
    ap.add_argument("--conf", type=float, default=0.05)
    a = ap.parse_args()
    logging.basicConfig(level=logging.INFO)
    d, f = cached_detections(conf=a.conf, model=a.model, backend=a.backend)
    print(f"{len(d)} frames at {f} fps, {sum(len(x) for x in d)} detections "
          f"({cache_path(conf=a.conf, model=a.model, backend=a.backend)})")
