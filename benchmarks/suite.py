"""The benchmark suite: one command for perception, speed, the ultralytics baseline, events and capacity.

    .venv/bin/python benchmarks/suite.py [--manifest benchmarks/manifest.yaml] [--subset ci|full]
        [--backends openvino onnxruntime ultralytics] [--imgsz 640 448x576] [--sequences ID ...]
        [--set [SEQUENCE:]KEY=VALUE ...] [--check [--reference benchmarks/reference.yaml]]
        [--mlflow-uri URI | --no-mlflow] [--out DIR] [--work DIR] [--skip-capacity] [--no-progress]
        [--from-results RESULTS.json] [--write-reference FILE]

Runs the subset (default ``full``) of the manifest (``benchmarks/manifest.yaml``: sequences with their
camera settings, optional MOTChallenge ground truth and labelled event files; detector variants; subsets),
each run in its own process, and measures:

* perception: HOTA, MOTA, IDF1 per sequence with ground truth (TrackEval, MOT15 convention);
* speed: end-to-end fps, per-stage latency p50 / p95 (decode, detect, track, rules, alerts...), CPU use and
  peak memory, per detector variant (backend x model x input size);
* the baseline: ultralytics ``model.track(..., tracker="bytetrack.yaml")`` on the same frames in the same
  run, and the speed ratio;
* events: precision and recall against the rules replayed on the ground-truth tracks, and against labelled
  event files;
* capacity: the largest number of cameras at 5 analysed fps kept up with in real time, and the
  event-to-alert latency at that load.

Writes ``results.json``, ``report.md`` and PNG plots to ``--out`` (default
``benchmarks/results/suite/<subset>/``), work files to ``--work`` (default ``.cache/bench/<subset>/``),
and one MLflow run (experiment ``analytics-bench``; URI ``--mlflow-uri``, else ``$MLFLOW_TRACKING_URI``, else
a SQLite store in ``benchmarks/mlruns/``) with the parameters (models, backends, input sizes, thresholds,
git commit), the metrics and the report files. ``--check`` compares the accuracy metrics with
``benchmarks/reference.yaml`` and exits 1 naming every metric worse than its reference beyond its tolerance;
CI runs ``--subset ci --check`` (tests/integration/test_bench_ci.py). ``--set`` overrides a camera setting of
every sequence (``KEY=VALUE``) or of one (``SEQ:KEY=VALUE``), e.g. ``--set detection.confidence=0.9``.
``--from-results`` re-reports, re-logs and re-checks an earlier ``results.json`` without running anything.

Examples:
    .venv/bin/python benchmarks/suite.py                              # everything (about 15 min on 2 cores)
    .venv/bin/python benchmarks/suite.py --subset ci --check          # what CI runs (about 2 min)
    .venv/bin/python benchmarks/suite.py --backends openvino --skip-capacity

Exit status: 0 done (and the check passed); 1 a run failed or the check failed; 2 bad input.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analytics.bench.command import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
