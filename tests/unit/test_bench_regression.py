"""The regression check both ways: within tolerance passes, worse beyond tolerance (or not measured) fails and
names the metric, the reference, the measured value and the tolerance; through the command line, a results file
with one accuracy metric made worse exits 1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from analytics.bench.command import main
from analytics.bench.regression import (ReferenceFileError, check, format_check, load_reference,
                                        reference_from_metrics)

ROOT = Path(__file__).resolve().parents[2]

REFERENCE = """
subset: ci
metrics:
  seq/det/HOTA: {value: 0.60, tolerance: 0.02}
  seq/det/IDSW: {value: 10, tolerance: 2, higher_is_better: false}
  seq/det/labels_recall: {value: 1.0, tolerance: 0.1}
"""


def _reference(tmp_path: Path, text: str = REFERENCE):
    path = tmp_path / "reference.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("hota, idsw, recall, statuses", [
    (0.60, 10, 1.0, ["ok", "ok", "ok"]),
    (0.581, 12, 0.91, ["ok", "ok", "ok"]),           # worse, but within every tolerance
    (0.579, 10, 1.0, ["worse", "ok", "ok"]),         # HOTA 0.021 below: beyond 0.02
    (0.60, 13, 1.0, ["ok", "worse", "ok"]),          # lower is better: 3 more switches than 10 + 2
    (0.65, 5, 1.0, ["better", "better", "ok"]),      # better beyond tolerance passes, flagged
    (0.60, 10, 0.83, ["ok", "ok", "worse"]),         # one labelled event of six missed
])
def test_check_both_ways(tmp_path: Path, hota: float, idsw: float, recall: float, statuses: list[str]) -> None:
    ref = load_reference(_reference(tmp_path))
    outcomes = check({"seq/det/HOTA": hota, "seq/det/IDSW": idsw, "seq/det/labels_recall": recall}, ref)
    assert [o.status for o in outcomes] == statuses
    assert any(o.failed for o in outcomes) == ("worse" in statuses)


def test_a_failure_names_metric_reference_measured_and_tolerance(tmp_path: Path) -> None:
    ref = load_reference(_reference(tmp_path))
    text = format_check(check({"seq/det/HOTA": 0.41, "seq/det/IDSW": 10.0}, ref), source="reference.yaml")
    assert ("FAIL seq/det/HOTA: measured 0.4100, reference 0.6000, tolerance 0.0200 (higher is better, "
            "delta -0.1900): worse than the reference beyond the tolerance") in text
    assert "FAIL seq/det/labels_recall: not measured (reference 1.0000, tolerance 0.1000)" in text
    assert text.splitlines()[-1] == ("regression check FAILED: 2 of 3 metric(s) worse than reference.yaml beyond "
                                     "tolerance or not measured: seq/det/HOTA, seq/det/labels_recall")


def test_a_missing_or_nan_metric_fails(tmp_path: Path) -> None:
    ref = load_reference(_reference(tmp_path))
    outcomes = check({"seq/det/HOTA": float("nan"), "seq/det/IDSW": 10.0, "seq/det/labels_recall": 1.0}, ref)
    assert [o.status for o in outcomes] == ["missing", "ok", "ok"]


@pytest.mark.parametrize("text, expected", [
    ("metrics: {seq/det/fps: {value: 10, tolerance: 1}}", r"speed metrics are not checked .*seq/det/fps"),
    ("metrics: {seq/det/HOTA: {value: 0.6}}", r"metrics\.seq/det/HOTA\.tolerance: Field required"),
    ("metrics: {seq/det/HOTA: {value: 0.6, tolerance: -1}}", r"tolerance: Input should be greater than or equal"),
    ("metrics: {seq/det/HOTA: {value: 0.6, tolerance: 0.1, tol: 2}}", r"tol: Extra inputs are not permitted"),
    ("metrics: {}", r"metrics: Dictionary should have at least 1 item"),
    ("metrics: [unclosed", "not valid YAML"),
])
def test_bad_reference_files_are_named(tmp_path: Path, text: str, expected: str) -> None:
    path = _reference(tmp_path, text)
    with pytest.raises(ReferenceFileError, match=expected) as info:
        load_reference(path)
    assert str(path) in str(info.value)


def test_reference_from_metrics_keeps_accuracy_only() -> None:
    doc = reference_from_metrics({"s/d/HOTA": 0.61234, "s/d/fps": 12.0, "s/d/labels_recall": 1.0,
                                  "s/d/detect_p50_ms": 40.0, "capacity/streams": 3.0}, subset="ci")
    assert doc == {"subset": "ci", "metrics": {"s/d/HOTA": {"value": 0.6123, "tolerance": 0.02},
                                               "s/d/labels_recall": {"value": 1.0, "tolerance": 0.1}}}


def test_the_committed_reference_is_valid_and_accuracy_only() -> None:
    ref = load_reference(ROOT / "benchmarks" / "reference.yaml")
    assert ref.subset == "ci"
    assert any(name.endswith("/HOTA") for name in ref.metrics)
    assert any(name.endswith("labels_recall") for name in ref.metrics)


# ----------------------------------------------------------------------------------- the command line


def _results(tmp_path: Path, hota: float) -> Path:
    """A minimal results.json as the suite writes it: one run with tracking and label scores."""
    results = {
        "suite": {"subset": "ci", "manifest": "benchmarks/manifest.yaml", "command": "test", "date": "2026-01-01",
                  "git": {"commit": "abc", "dirty": False}, "overrides": [], "machine": {"cpus": 2}, "seconds": 1.0,
                  "errors": []},
        "detectors": {"det": {"backend": "openvino", "model": "m", "input_size": [640, 640]}},
        "runs": [{"sequence": "seq", "detector": "det", "frames": 10, "fps": 5.0, "cpu_percent": 90.0,
                  "peak_rss_mb": 300.0, "stages": {},
                  "tracking": {"HOTA": hota, "MOTA": 0.7, "IDF1": 0.8, "IDSW": 10.0, "FP": 1.0, "FN": 2.0,
                               "frames": 10.0},
                  "events": {"labels": {"tp": 6, "fp": 0, "fn": 0, "precision": 1.0, "recall": 1.0}}}],
        "baselines": [], "capacity": None,
    }
    path = tmp_path / f"results-{hota}.json"
    path.write_text(json.dumps(results))
    return path


def test_the_command_passes_a_good_run_and_fails_a_worse_one(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    ref = _reference(tmp_path)
    args = ["--check", "--reference", str(ref), "--no-mlflow", "--out", str(tmp_path / "out"), "--no-progress"]
    assert main(["--from-results", str(_results(tmp_path, 0.60)), *args]) == 0
    assert "regression check passed: 3 metric(s)" in capsys.readouterr().out
    report = json.loads((tmp_path / "out" / "results.json").read_text())
    assert report["check"]["passed"] is True and report["metrics"]["seq/det/HOTA"] == 0.60

    assert main(["--from-results", str(_results(tmp_path, 0.45)), *args]) == 1
    err = capsys.readouterr().err
    assert "FAIL seq/det/HOTA: measured 0.4500, reference 0.6000, tolerance 0.0200" in err
    assert "regression check FAILED: 1 of 3 metric(s)" in err
    report = json.loads((tmp_path / "out" / "results.json").read_text())
    assert report["check"]["passed"] is False
    assert "**FAILED**" in (tmp_path / "out" / "report.md").read_text()


def test_the_command_refuses_bad_input_with_status_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["--check", "--reference", str(tmp_path / "nope.yaml"), "--no-mlflow", "--from-results",
                 str(_results(tmp_path, 0.6))]) == 2
    assert "cannot read reference numbers" in capsys.readouterr().err
    bad = tmp_path / "manifest.yaml"
    bad.write_text(yaml.safe_dump({"detectors": []}))
    assert main(["--manifest", str(bad), "--no-mlflow"]) == 2
    assert f"invalid benchmark manifest {bad}" in capsys.readouterr().err
    assert main(["--subset", "nightly", "--no-mlflow"]) == 2
    assert "unknown subset 'nightly'" in capsys.readouterr().err
