"""The benchmark manifest: strict validation with the key named, subsets filtered, inputs checked; camera
overrides; ``import analytics.bench`` stays light."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from analytics.bench.manifest import ManifestError, load_manifest, parse_manifest
from analytics.bench.suite import SuiteError, apply_overrides, parse_override
from analytics.config import CameraConfig

ROOT = Path(__file__).resolve().parents[2]

GOOD = """
detectors:
  - {id: ov-small, backend: openvino, model: small_model, imgsz: [448, 576]}
  - {id: ov-640, backend: openvino, model: big_model, imgsz: 640}
  - {id: ort, backend: onnxruntime, model: onnx_model, imgsz: 640}
baseline: {model: big_model, compare_to: ov-640}
sequences:
  - {id: seq-a, source: "${SHARED}/footage/a", gt: a/gt.txt}
  - {id: seq-b, source: clips/b.mp4, config: b.yaml, labels: b.labels.yaml}
subsets:
  ci:
    runs: [{sequence: seq-a, detectors: [ov-small], max_frames: 10}]
  full:
    runs:
      - {sequence: seq-a, detectors: [ov-small, ov-640, ort], baseline: true}
      - {sequence: seq-b, detectors: [ov-640]}
    capacity: {detector: ov-640, sequences: [seq-a, seq-b]}
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "manifest.yaml"
    path.write_text(text)
    return path


def test_a_good_manifest_loads_with_paths_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANALYTICS_SHARED", str(tmp_path / "shared"))
    m = load_manifest(_write(tmp_path, GOOD))
    a, b = m.sequences
    assert a.source == str(tmp_path / "shared" / "footage" / "a")
    assert a.gt == str(tmp_path / "a" / "gt.txt")  # relative to the manifest's folder
    assert b.source == str(tmp_path / "clips" / "b.mp4") and b.labels == str(tmp_path / "b.labels.yaml")
    assert m.baseline.compare_to == "ov-640"


@pytest.mark.parametrize("edit, expected", [
    (("source: clips/b.mp4", "sourse: clips/b.mp4"), r"sequences\.1\.sourse: Extra inputs are not permitted"),
    (("detectors: [ov-640]}", "detectors: [ov-999]}"),
     r"subsets\.full\.runs\.1\.detectors: unknown id\(s\) \['ov-999'\]"),
    (("sequence: seq-b,", "sequence: seq-z,"), r"subsets\.full\.runs\.1\.sequence: unknown id\(s\) \['seq-z'\]"),
    (("id: seq-b,", "id: seq-a,"), r"sequence ids must be unique, repeated: \['seq-a'\]"),
    (("backend: onnxruntime", "backend: tensorrt"), r"detectors\.2\.backend: Input should be 'openvino', "),
    (("max_frames: 10", "max_frames: 0"), r"subsets\.ci\.runs\.0\.max_frames: Input should be greater than or equal"),
    (("config: b.yaml, ", ""), r"labels need a config whose camera has rules"),
    (("compare_to: ov-640", "compare_to: nope"), r"baseline\.compare_to: unknown detector 'nope'"),
    (("capacity: {detector: ov-640,", "capacity: {detector: ov-640, fps: -1,"),
     r"subsets\.full\.capacity\.fps: Input should be greater than 0"),
])
def test_bad_manifests_name_the_file_and_the_key(tmp_path: Path, edit: tuple[str, str], expected: str) -> None:
    assert edit[0] in GOOD
    path = _write(tmp_path, GOOD.replace(edit[0], edit[1], 1))
    with pytest.raises(ManifestError, match=expected) as info:
        load_manifest(path)
    assert str(path) in str(info.value)


def test_unreadable_and_non_mapping_manifests_are_named(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match=r"cannot read benchmark manifest .*missing\.yaml"):
        load_manifest(tmp_path / "missing.yaml")
    with pytest.raises(ManifestError, match="not valid YAML"):
        load_manifest(_write(tmp_path, "detectors: [unclosed"))
    with pytest.raises(ManifestError, match="must be a YAML mapping .* got list"):
        load_manifest(_write(tmp_path, "- 1\n- 2\n"))


def test_plan_filters_variants_by_backend_and_input_size(tmp_path: Path) -> None:
    m = load_manifest(_write(tmp_path, GOOD))
    full = m.plan("full")
    assert [r.detectors for r in full.runs] == [("ov-small", "ov-640", "ort"), ("ov-640",)]
    assert full.capacity is not None and full.capacity.detector == "ov-640"
    assert [r.detectors for r in m.plan("full", backends=("onnxruntime",)).runs] == [("ort",)]
    assert m.plan("full", backends=("onnxruntime",)).capacity is None  # its detector was filtered out
    assert [r.detectors for r in m.plan("full", imgsz=("448x576",)).runs] == [("ov-small",)]
    assert [r.detectors for r in m.plan("full", imgsz=("640",)).runs] == [("ov-640", "ort"), ("ov-640",)]
    with pytest.raises(ManifestError, match=r"unknown subset 'nightly'; the manifest has \['ci', 'full'\]"):
        m.plan("nightly")
    with pytest.raises(ManifestError, match=r"subset 'ci' has no run left with backends=\['ultralytics'\]"):
        m.plan("ci", backends=("ultralytics",))
    with pytest.raises(ManifestError, match="input size '64O'"):
        m.plan("ci", imgsz=("64O",))


def test_check_inputs_names_the_missing_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANALYTICS_SHARED", str(tmp_path / "shared"))
    (tmp_path / "shared" / "footage" / "a").mkdir(parents=True)
    plan = load_manifest(_write(tmp_path, GOOD)).plan("ci")
    with pytest.raises(ManifestError, match=r"sequence seq-a: gt .*a/gt\.txt does not exist"):
        plan.check_inputs()
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "gt.txt").write_text("1,1,0,0,10,10,1,-1,-1,-1\n")
    plan.check_inputs()


def test_the_committed_manifest_is_valid() -> None:
    m = load_manifest(ROOT / "benchmarks" / "manifest.yaml")
    assert {"ci", "full"} <= set(m.subsets)
    ci = m.plan("ci")
    assert all(m.detector(d).backend == "openvino" for r in ci.runs for d in r.detectors)
    assert ci.capacity is None and not any(r.baseline for r in ci.runs)


def test_parse_manifest_accepts_a_parsed_document(tmp_path: Path) -> None:
    import yaml

    m = parse_manifest(yaml.safe_load(GOOD), path=tmp_path / "x.yaml")
    assert [d.id for d in m.detectors] == ["ov-small", "ov-640", "ort"]


# ------------------------------------------------------------------------------------------- overrides


def _camera() -> CameraConfig:
    return CameraConfig(id="cam", source="/x.mp4", detection={"classes": ["person"], "confidence": 0.2})


def test_overrides_apply_to_all_or_one_sequence() -> None:
    cam = apply_overrides(_camera(), "pets09", ["detection.confidence=0.9", "pets09:tracker.min_hits=5",
                                                "other:tracker.min_hits=7"])
    assert cam.detection.confidence == 0.9 and cam.tracker.min_hits == 5
    assert parse_override("a:b.c=[1, 2]") == ("a", ["b", "c"], [1, 2])


@pytest.mark.parametrize("text, expected", [
    ("detection.confidence", r"expected \[SEQUENCE:\]KEY=VALUE"),
    ("detection.confidense=0.5", r"camera settings have no key detection\.confidense"),
    ("tracker.min_hits=99", r"tracker\.min_hits: Input should be less than or equal to 10"),
    ("detection.confidence=[oops", "not valid YAML"),
])
def test_bad_overrides_are_named(text: str, expected: str) -> None:
    with pytest.raises(SuiteError, match=expected):
        apply_overrides(_camera(), "cam", [text])


def test_importing_the_bench_package_loads_no_heavy_backend() -> None:
    heavy = ("torch", "openvino", "onnxruntime", "cv2", "ultralytics", "mlflow", "matplotlib")
    code = ("import json, sys, analytics.bench, analytics.bench.manifest, analytics.bench.regression, "
            "analytics.bench.suite, analytics.bench.command, analytics.bench.report, analytics.bench.tracking; "
            f"print(json.dumps([m for m in {heavy!r} if m in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert json.loads(out.stdout) == []
