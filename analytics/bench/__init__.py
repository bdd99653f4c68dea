"""The benchmark suite: one manifest of sequences, measured end to end, reported, logged and checked.

Modules (each imported on use only; ``import analytics.bench`` loads nothing heavy):

* :mod:`~analytics.bench.manifest`: the manifest (sequences, detector variants, subsets), strict pydantic.
* :mod:`~analytics.bench.worker`: one measured run in its own process (pipeline, ultralytics baseline, capacity
  search), so each detector's CPU use and peak memory are its own.
* :mod:`~analytics.bench.pipeline`: the pipeline run with per-stage timings, CPU use and peak memory.
* :mod:`~analytics.bench.baseline`: ultralytics ``model.track(..., tracker="bytetrack.yaml")`` on the same frames.
* :mod:`~analytics.bench.capacity`: the largest number of real-time camera streams the machine keeps up with.
* :mod:`~analytics.bench.scoring`: HOTA / MOTA / IDF1 and event precision and recall (reference events and
  labelled event files).
* :mod:`~analytics.bench.report`: JSON, markdown and PNG plots; :mod:`~analytics.bench.tracking`: MLflow.
* :mod:`~analytics.bench.regression`: the check against committed reference numbers.
* :mod:`~analytics.bench.suite`: the orchestration and the command line (``benchmarks/suite.py``).
"""
