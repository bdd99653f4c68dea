"""Model registry and offline loader: search order, sha256 verification, precise errors, plain paths."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from analytics import models
from analytics.models import ModelError, load_registry, resolve_model
from analytics.paths import shared_dir

GOOD = b"fake weights\n"
GOOD_SHA = hashlib.sha256(GOOD).hexdigest()
REGISTRY = f"""
models:
  tiny_onnx:
    format: onnx
    path: tiny.onnx
    files:
      tiny.onnx: {GOOD_SHA}
    input_size: [480, 640]
    backends: [onnxruntime]
    licence: AGPL-3.0
    source: test
  tiny_ir:
    format: openvino
    path: tiny_ir
    files:
      tiny_ir/tiny.xml: {GOOD_SHA}
      tiny_ir/tiny.bin: {GOOD_SHA}
"""


@pytest.fixture()
def dirs(tmp_path, monkeypatch):
    """Three empty search folders (env, project, shared) and a registry naming two test models."""
    env, project, shared = tmp_path / "env", tmp_path / "project", tmp_path / "shared"
    for d in (env, project, shared / "models"):
        d.mkdir(parents=True)
    (project / "registry.yaml").write_text(REGISTRY)
    monkeypatch.setenv(models.MODELS_ENV, str(env))
    monkeypatch.setenv("ANALYTICS_SHARED", str(shared))
    monkeypatch.setattr(models, "PROJECT_MODELS_DIR", project)
    return {"env": env, "project": project, "shared": shared / "models"}


def _write(path: Path, data: bytes = GOOD) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("where", ["env", "project", "shared"])
def test_found_in_each_search_dir(dirs, where):
    _write(dirs[where] / "tiny.onnx")
    m = resolve_model("tiny_onnx")
    assert m.path == dirs[where] / "tiny.onnx"
    assert (m.format, m.input_size, m.backends, m.verified) == ("onnx", (480, 640), ("onnxruntime",), True)


def test_search_order_env_first(dirs):
    for where in ("shared", "project", "env"):
        _write(dirs[where] / "tiny.onnx")
    assert resolve_model("tiny_onnx").path == dirs["env"] / "tiny.onnx"


def test_folder_model_needs_every_file(dirs):
    _write(dirs["env"] / "tiny_ir" / "tiny.xml")  # .bin missing here: skip to the next complete copy
    _write(dirs["shared"] / "tiny_ir" / "tiny.xml")
    _write(dirs["shared"] / "tiny_ir" / "tiny.bin")
    m = resolve_model("tiny_ir")
    assert m.path == dirs["shared"] / "tiny_ir"
    assert {p.name for p in m.files} == {"tiny.xml", "tiny.bin"}


def test_missing_names_file_checksum_and_every_place(dirs):
    with pytest.raises(ModelError) as err:
        resolve_model("tiny_onnx")
    msg = str(err.value)
    assert "tiny.onnx" in msg and GOOD_SHA in msg and "never downloaded" in msg
    for d in dirs.values():
        assert str(d) in msg


def test_partial_copy_names_the_missing_file(dirs):
    _write(dirs["project"] / "tiny_ir" / "tiny.xml")
    with pytest.raises(ModelError, match=r"tiny_ir/tiny\.bin"):
        resolve_model("tiny_ir")


def test_corrupt_names_expected_and_got(dirs):
    bad = b"truncated"
    path = _write(dirs["project"] / "tiny.onnx", bad)
    with pytest.raises(ModelError) as err:
        resolve_model("tiny_onnx")
    msg = str(err.value)
    assert str(path) in msg and GOOD_SHA in msg and hashlib.sha256(bad).hexdigest() in msg
    assert str(dirs["shared"]) in msg


def test_rewritten_file_is_rehashed(dirs):
    path = _write(dirs["env"] / "tiny.onnx")
    resolve_model("tiny_onnx")
    _write(path, b"tampered!!!!!")  # size changes, so the cache key changes
    os.utime(path, ns=(1, 1))
    with pytest.raises(ModelError, match="corrupt"):
        resolve_model("tiny_onnx")


def test_verification_is_cached(dirs, monkeypatch):
    _write(dirs["env"] / "tiny.onnx")
    resolve_model("tiny_onnx")
    calls = []
    monkeypatch.setattr(models.hashlib, "file_digest", lambda *a, **k: calls.append(a))
    resolve_model("tiny_onnx")
    assert calls == []


@pytest.mark.parametrize(
    ("files", "target", "fmt"),
    [(["m.onnx"], "m.onnx", "onnx"), (["m.pt"], "m.pt", "pt"), (["ir/m.xml", "ir/m.bin"], "ir", "openvino"),
     (["m.xml", "m.bin"], "m.xml", "openvino")],
)
def test_plain_path_accepted_without_checksum(tmp_path, dirs, files, target, fmt):
    for f in files:
        _write(tmp_path / "own" / f, b"anything")
    m = resolve_model(tmp_path / "own" / target)
    assert (m.format, m.verified, m.input_size) == (fmt, False, None)


@pytest.mark.parametrize(
    ("files", "target", "match"),
    [([], "nope.onnx", "neither a registered name.*tiny_ir.*nope.onnx"),
     (["m.tflite"], "m.tflite", "unknown format '.tflite'"),
     (["ir/readme.txt"], "ir", "no OpenVINO .xml"),
     (["m.xml"], "m.xml", r"m\.bin.*not found")],
)
def test_plain_path_errors(tmp_path, dirs, files, target, match):
    for f in files:
        _write(tmp_path / f)
    with pytest.raises(ModelError, match=match):
        resolve_model(tmp_path / target)


def test_list_models_sorted(dirs):
    assert [e.name for e in models.list_models()] == ["tiny_ir", "tiny_onnx"]


@pytest.mark.parametrize(
    ("text", "match"),
    [("models: [1, 2]", "'models' mapping"), ("models: {x: 3}", "must be a mapping"),
     ("models: {x: {format: tflite, path: a, files: {}}}", "format must be one of"),
     ("models: {x: {format: onnx}}", "malformed"), ("models: {x: [", "not valid YAML")],
)
def test_bad_registry(tmp_path, text, match):
    path = tmp_path / "registry.yaml"
    path.write_text(text)
    with pytest.raises(ModelError, match=match):
        load_registry((path,))


def test_shipped_registry_matches_shared_sha256sums():
    """Every registered file's sha256 equals the one in ../shared/models/SHA256SUMS (no weights read)."""
    sums_file = shared_dir() / "models" / "SHA256SUMS"
    if not sums_file.is_file():
        pytest.skip(f"{sums_file} not available")
    sums = {line.split()[1].removeprefix("./"): line.split()[0] for line in sums_file.read_text().splitlines()}
    registry = load_registry((models.PROJECT_MODELS_DIR / "registry.yaml",))
    assert models.DEFAULT_MODEL in registry
    shipped = ("yolo11n_int8_openvino", "yolov8n_int8_openvino", "yolo11n_w8dq_pt", "yolov8n_w8dq_pt",
               "yolo11n_w8dq_onnx")
    for name in shipped:
        entry = registry[name]
        assert entry.licence == "AGPL-3.0" and entry.source
        assert entry.files == {rel: sums[rel] for rel in entry.files}, name
