"""The CI benchmark subset for real: ``benchmarks/suite.py --subset ci --check`` runs the pipeline on the first
150 frames of PETS09-S2L1 and on the labelled one-by-one clip, writes the report, the plots and an MLflow run,
and passes the check against the committed ``benchmarks/reference.yaml``; the same run made worse on purpose
(detector confidence threshold raised to 0.9) fails the check, naming the metrics that dropped."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]


def _suite(*args: str, timeout: float = 1200) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    return subprocess.run([sys.executable, str(ROOT / "benchmarks" / "suite.py"), "--subset", "ci", "--check",
                           "--no-progress", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def ci_run(shared: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess, Path, str]:
    tmp = tmp_path_factory.mktemp("bench-ci")
    uri = f"sqlite:///{tmp / 'mlruns' / 'mlflow.db'}"
    proc = _suite("--out", str(tmp / "report"), "--work", str(tmp / "work"), "--mlflow-uri", uri)
    return proc, tmp / "report", uri


def test_the_ci_subset_passes_the_check_against_the_committed_reference(ci_run) -> None:
    proc, out, _ = ci_run
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    assert "regression check passed" in proc.stdout
    results = json.loads((out / "results.json").read_text())
    assert results["check"]["passed"] and all(o["status"] in ("ok", "better") for o in results["check"]["outcomes"])
    m = results["metrics"]
    assert m["pets09/openvino-448x576/HOTA"] > 0.5 and m["one-by-one/openvino-640/labels_recall"] > 0.8
    run = {r["sequence"]: r for r in results["runs"]}
    assert run["pets09"]["frames"] == 150 and run["pets09"]["tracking"]["frames"] == 150
    for stage in ("decode", "detect", "track", "rules"):
        assert run["pets09"]["stages"][stage]["count"] == 150, stage
    assert run["pets09"]["cpu_percent"] > 0 and run["pets09"]["peak_rss_mb"] > 50


def test_the_ci_subset_writes_the_report_plots_and_an_mlflow_run(ci_run) -> None:
    from mlflow.tracking import MlflowClient

    proc, out, uri = ci_run
    assert proc.returncode == 0, proc.stderr[-5000:]
    md = (out / "report.md").read_text()
    assert "## Tracking quality" in md and "## Events" in md and "Regression check" in md
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert {"accuracy.png", "speed_fps.png", "stage_latency.png"} <= set(pngs)
    results = json.loads((out / "results.json").read_text())
    client = MlflowClient(tracking_uri=uri)
    run = client.get_run(results["mlflow"]["run_id"])
    assert run.info.status == "FINISHED" and run.data.tags["check"] == "passed"
    assert run.data.params["detector.openvino-448x576.backend"] == "openvino"
    assert run.data.params["git_commit"] == results["suite"]["git"]["commit"]
    assert run.data.metrics["pets09/openvino-448x576/HOTA"] == pytest.approx(
        results["metrics"]["pets09/openvino-448x576/HOTA"])
    assert {"report.md", "results.json", *pngs} <= {a.path for a in client.list_artifacts(run.info.run_id)}


def test_a_run_made_worse_on_purpose_fails_the_check(shared: Path, tmp_path: Path) -> None:
    """Only the PETS09 run, with the detector keeping boxes of confidence >= 0.9 only: tracking collapses."""
    proc = _suite("--sequences", "pets09", "--set", "detection.confidence=0.9", "--no-mlflow",
                  "--out", str(tmp_path / "report"), "--work", str(tmp_path / "work"))
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "FAIL pets09/openvino-448x576/HOTA: measured" in proc.stderr
    assert "worse than the reference beyond the tolerance" in proc.stderr
    assert "regression check FAILED" in proc.stderr
    outcomes = {o["metric"]: o for o in json.loads((tmp_path / "report" / "results.json").read_text())["check"]
                ["outcomes"]}
    hota = outcomes["pets09/openvino-448x576/HOTA"]
    assert hota["status"] == "worse" and hota["measured"] < hota["reference"] - hota["tolerance"]
    assert outcomes["one-by-one/openvino-640/labels_recall"]["status"] == "missing"  # not run: fails too
