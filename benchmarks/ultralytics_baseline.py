"""The reference run: plain ultralytics ``model.track(..., tracker="bytetrack.yaml")`` on a source,
writing MOTChallenge rows, and printing its timing as one JSON line.

    python benchmarks/ultralytics_baseline.py SOURCE --model PATH --out FILE.txt [--classes 0]

Timing covers decode + detect + track + write, after one warm-up prediction on the first frame (so model
compilation is excluded, as it is from ``analytics track``'s own timing).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path


def frames_of(source: Path) -> list[str] | str:
    """An image folder (or MOT sequence folder) as a sorted file list; a video path as is."""
    if source.is_dir():
        img = source / "img1" if (source / "img1").is_dir() else source
        return sorted(str(p) for p in img.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    return str(source)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("source", type=Path)
    p.add_argument("--model", required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--classes", type=int, nargs="+", default=[0])
    p.add_argument("--imgsz", type=int, default=640)
    args = p.parse_args()
    os.environ.setdefault("YOLO_CONFIG_DIR", "/tmp/analytics-yolo-config")
    from ultralytics import YOLO

    model = YOLO(args.model, task="detect")
    frames = frames_of(args.source)
    first = frames[0] if isinstance(frames, list) else None
    if first:
        model.predict(first, imgsz=args.imgsz, verbose=False)  # warm-up / compile
    rows, n = [], 0
    t0 = time.perf_counter()
    for i, res in enumerate(model.track(frames, stream=True, tracker="bytetrack.yaml", classes=args.classes,
                                        imgsz=args.imgsz, verbose=False, persist=True)):
        n += 1
        boxes = res.boxes
        if boxes is None or boxes.id is None:
            continue
        for (x1, y1, x2, y2), tid, conf in zip(boxes.xyxy.tolist(), boxes.id.int().tolist(), boxes.conf.tolist()):
            rows.append(f"{i + 1},{tid},{x1:.2f},{y1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},{conf:.4f},-1,-1,-1\n")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("".join(rows))
    seconds = time.perf_counter() - t0
    print(json.dumps({"frames": n, "seconds": seconds, "fps": n / seconds}))


if __name__ == "__main__":
    main()
