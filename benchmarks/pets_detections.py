"""Run the default detector over PETS09-S2L1 once and cache its low-confidence person detections.

The cache is an ``.npz`` under the project's git-ignored ``.cache/`` folder with columnar arrays:
``frame`` (M,) int32 1-based MOT frame numbers, ``xyxy`` (M, 4) float32 pixels, ``confidence`` (M,) float32,
``class_id`` (M,) int16, plus ``n_frames`` and ``fps``. Reused when present.

Usage: ``python -m benchmarks.pets_detections`` (about a minute on two CPU cores).
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


def cached_detections(*, conf: float = 0.05, imgsz: int = 640) -> tuple[list[Detections], float]:
    """PETS09-S2L1 detections from the cache, running the detector first if the cache is missing."""
    path = CACHE_DIR / f"{SEQUENCE}_{MODEL}_{imgsz}_c{conf:g}.npz"
    if not path.exists():
        seq = sequence_dir()
        log.info("running %s over %s (cache %s)", MODEL, seq, path)
        save_cache(path, detect_sequence(seq, conf=conf, imgsz=imgsz), fps=sequence_info(seq)["fps"])
    return load_cache(path)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    d, f = cached_detections()
    print(f"{len(d)} frames at {f} fps, {sum(len(x) for x in d)} detections")
