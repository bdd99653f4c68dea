"""Suite results: the flat metric names, and the written report (JSON, markdown with every section, PNG plots);
MLflow logging into a temporary local store, read back with MLflow's own client."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from analytics.bench.report import flat_metrics
from analytics.bench.suite import mlflow_params, write_outputs

PNG = b"\x89PNG\r\n\x1a\n"


def _stages(detect: float) -> dict:
    return {name: {"count": 10, "p50_ms": ms, "p95_ms": 2 * ms, "mean_ms": ms, "max_ms": 3 * ms}
            for name, ms in (("decode", 5.0), ("detect", detect), ("track", 1.0), ("rules", 0.5),
                             ("alerts", 3.0))}


def sample_results() -> dict:
    tracking = {"HOTA": 0.62, "DetA": 0.6, "AssA": 0.65, "MOTA": 0.78, "IDF1": 0.88, "IDSW": 2.0, "FP": 43.0,
                "FN": 146.0, "gt_ids": 8.0, "result_ids": 9.0, "frames": 150.0}
    probe = {"streams": 2, "target_fps": 10.0, "analysed_fps": 9.9, "fps_ratio": 0.99, "ticks_lost": 0,
             "drop_ratio": 0.0, "window_seconds": 25.0, "cpu_seconds": 40.0, "cpu_percent": 160.0,
             "failed_cameras": [], "keeps_up": True, "stages": {},
             "event_to_alert": {"count": 4, "p50_ms": 120.0, "p95_ms": 300.0, "mean_ms": 150.0, "max_ms": 310.0},
             "alert_stage": {"count": 9, "p50_ms": 3.0, "p95_ms": 8.0, "mean_ms": 4.0, "max_ms": 9.0}}
    behind = {**probe, "streams": 4, "target_fps": 20.0, "analysed_fps": 12.0, "fps_ratio": 0.6,
              "drop_ratio": 0.4, "keeps_up": False}
    return {
        "suite": {"subset": "full", "manifest": "benchmarks/manifest.yaml", "command": "benchmarks/suite.py",
                  "date": "2026-01-01 10:00", "git": {"commit": "0123456789abcdef", "dirty": False},
                  "overrides": [], "machine": {"cpus": 2, "processor": "test CPU"}, "seconds": 100.0, "errors": []},
        "detectors": {"ov": {"backend": "openvino", "model": "m1", "input_size": [448, 576]},
                      "ort": {"backend": "onnxruntime", "model": "m2", "input_size": [640, 640]}},
        "runs": [
            {"sequence": "pets09", "detector": "ov", "frames": 150, "fps": 12.0, "cpu_percent": 180.0,
             "peak_rss_mb": 330.0, "stages": _stages(40.0), "tracking": tracking, "max_frames": None,
             "camera_settings": {"detection.confidence": 0.1, "tracker.min_hits": 3},
             "events": {"reference": {"tp": 2, "fp": 0, "fn": 1, "precision": 1.0, "recall": 2 / 3}}},
            {"sequence": "pets09", "detector": "ort", "frames": 150, "fps": 6.0, "cpu_percent": 190.0,
             "peak_rss_mb": 400.0, "stages": _stages(90.0), "tracking": tracking, "max_frames": None},
            {"sequence": "desk", "detector": "ov", "frames": 697, "fps": 14.0, "cpu_percent": 170.0,
             "peak_rss_mb": 350.0, "stages": _stages(35.0), "tracking": None, "max_frames": None,
             "events": {"labels": {"tp": 5, "fp": 1, "fn": 1, "precision": 5 / 6, "recall": 5 / 6}}},
            {"sequence": "vct", "detector": "ov", "error": "worker vct exited with status 1"},
        ],
        "baselines": [{"sequence": "pets09", "model": "m3", "imgsz": 640, "tracker": "bytetrack.yaml",
                       "compare_to": "ort", "frames": 150, "fps": 4.0, "cpu_percent": 195.0, "peak_rss_mb": 900.0,
                       "stages": {"decode": {"count": 150, "p50_ms": 5.0, "p95_ms": 9.0},
                                  "detect_track": {"count": 150, "p50_ms": 240.0, "p95_ms": 300.0}},
                       "tracking": {**tracking, "HOTA": 0.55}, "speed_ratio": {"ov": 3.0, "ort": 1.5}}],
        "capacity": {"detector": "ov", "streams": 2, "fps_per_stream": 5.0, "max_streams": 16,
                     "criteria": {"min_fps_ratio": 0.95, "max_drop_ratio": 0.01}, "sequences": ["pets09", "desk"],
                     "at_capacity": probe, "probes": [probe, behind], "peak_rss_mb": 500.0},
    }


def test_flat_metric_names_and_values() -> None:
    m = flat_metrics(sample_results())
    assert m["pets09/ov/HOTA"] == 0.62 and m["pets09/ov/IDF1"] == 0.88 and m["pets09/ov/MOTA"] == 0.78
    assert m["pets09/ov/events_ref_recall"] == pytest.approx(2 / 3)
    assert m["desk/ov/labels_precision"] == pytest.approx(5 / 6)
    assert m["pets09/ov/fps"] == 12.0 and m["pets09/ov/detect_p50_ms"] == 40.0 and m["pets09/ov/alerts_p95_ms"] == 6.0
    assert m["pets09/baseline/HOTA"] == 0.55 and m["pets09/baseline/detect_track_p50_ms"] == 240.0
    assert m["pets09/ov/speed_ratio_vs_baseline"] == 3.0
    assert m["capacity/streams"] == 2.0 and m["capacity/event_to_alert_p95_ms"] == 300.0
    assert not any(k.startswith("vct/") for k in m)  # a failed run gives no metric
    assert "desk/ov/HOTA" not in m  # no ground truth, no tracking score


def test_write_outputs_writes_json_markdown_and_plots(tmp_path: Path) -> None:
    results = sample_results()
    results["metrics"] = flat_metrics(results)
    files = write_outputs(results, tmp_path)
    names = sorted(p.name for p in files)
    assert names == ["accuracy.png", "capacity.png", "report.md", "results.json", "speed_fps.png",
                     "stage_latency.png"]
    for png in tmp_path.glob("*.png"):
        assert png.read_bytes()[:8] == PNG and png.stat().st_size > 5000
    assert json.loads((tmp_path / "results.json").read_text())["metrics"]["pets09/ov/HOTA"] == 0.62
    md = (tmp_path / "report.md").read_text()
    for text in ("## Tracking quality", "| pets09 | ov | 150 | 0.620 | 0.780 | 0.880 | 2 | 43 | 146 |",
                 "## Speed", "| pets09 | ov | openvino | 448x576 | 150 | 12.0 | 180 | 330 | 5.0 / 10.0 | "
                 "40.0 / 80.0 |", "`ort` 1.50x (same weights and input size)", "## Events",
                 "| desk | ov | labelled events | 6 | 6 | 5 | 1 | 1 | 0.83 | 0.83 |", "## Capacity",
                 "**2 camera stream(s)** at 5 analysed fps", "| 4 | 20 | 12.00 | 0.600 | 40.0 % |",
                 "## Errors", "vct / ov: worker vct exited", "![capacity.png](capacity.png)", "What the numbers mean"):
        assert text in md, text


def test_mlflow_params_name_models_backends_sizes_thresholds_and_commit() -> None:
    params = mlflow_params(sample_results())
    assert params["git_commit"] == "0123456789abcdef" and params["subset"] == "full"
    assert params["detector.ov.backend"] == "openvino" and params["detector.ov.input_size"] == "448x576"
    assert params["detector.ort.model"] == "m2"
    assert params["baseline.pets09.model"] == "m3"
    assert params["sequence.pets09.detection.confidence"] == 0.1 and params["sequence.pets09.tracker.min_hits"] == 3


def test_logging_to_a_local_mlflow_store_and_reading_it_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlflow.tracking import MlflowClient

    from analytics.bench.tracking import default_uri, log_run

    uri = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    assert default_uri() == uri
    results = sample_results()
    results["metrics"] = flat_metrics(results)
    files = write_outputs(results, tmp_path / "report")
    run_id = log_run(uri=default_uri(), params=mlflow_params(results), metrics=results["metrics"], artifacts=files,
                     tags={"subset": "full"}, run_name="unit test", experiment="analytics-bench-test")

    client = MlflowClient(tracking_uri=uri)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == "unit test"
    assert run.data.params["detector.ov.model"] == "m1" and run.data.params["git_commit"] == "0123456789abcdef"
    assert run.data.metrics["pets09/ov/HOTA"] == pytest.approx(0.62)
    assert run.data.metrics["capacity/streams"] == 2.0
    assert run.data.tags["subset"] == "full"
    assert sorted(a.path for a in client.list_artifacts(run_id)) == sorted(p.name for p in files)
    exp = client.get_experiment_by_name("analytics-bench-test")
    assert exp.artifact_location == (tmp_path / "mlruns" / "artifacts").as_uri()  # beside the database
