"""The reference run: plain ultralytics ``model.track(..., tracker="bytetrack.yaml")`` on a source,
writing MOTChallenge rows, and printing its timing as one JSON line.

    python benchmarks/ultralytics_baseline.py SOURCE --model PATH --out FILE.txt [--classes 0] [--imgsz 640]

SOURCE is a video, an image folder or a MOTChallenge sequence folder; its frames are decoded by the engine's
own source (every frame) and handed to ``model.track`` one by one (:func:`analytics.bench.baseline.ultralytics_track`,
shared with the benchmark suite). Timing covers decode + detect + track + collecting the rows, after one
warm-up prediction (so model compilation is excluded, as it is from ``analytics track``'s own timing).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analytics.bench.baseline import ultralytics_track  # noqa: E402
from analytics.config import CameraConfig  # noqa: E402
from analytics.sources import open_source  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("source", type=Path)
    p.add_argument("--model", required=True, help="registry name or path of a model ultralytics loads")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--classes", type=int, nargs="+", default=[0])
    p.add_argument("--imgsz", type=int, default=640)
    args = p.parse_args()
    cam = CameraConfig(id="baseline", source=str(args.source.resolve()), fps=None, benchmark=True)
    source = open_source(cam)
    try:
        result = ultralytics_track(source, model=args.model, out=args.out, classes=tuple(args.classes),
                                   imgsz=args.imgsz)
    finally:
        source.close()
    print(json.dumps({k: result[k] for k in ("frames", "seconds", "fps")}))


if __name__ == "__main__":
    main()
