"""Config validation: a bad config fails before anything starts, naming the file, key path and expectation."""

from __future__ import annotations

from pathlib import Path

import pytest

from analytics.config import ConfigError, load_config

GOOD = """
cameras:
  - id: cam1
    source: clip.mp4
    fps: 5
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(text)
    return path


def test_good_config_resolves_relative_source_against_config_dir(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, GOOD))
    assert cfg.cameras[0].source == str(tmp_path / "clip.mp4")
    assert cfg.detector.backend == "openvino"
    assert cfg.cameras[0].tracker.min_hits >= 1


def test_shared_variable_expands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANALYTICS_SHARED", str(tmp_path / "sh"))
    cfg = load_config(write(tmp_path, GOOD.replace("clip.mp4", "${SHARED}/footage/x.mp4")))
    assert cfg.cameras[0].source == str(tmp_path / "sh" / "footage" / "x.mp4")


def test_urls_are_kept(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, GOOD.replace("clip.mp4", "rtsp://10.0.0.5/stream1")))
    assert cfg.cameras[0].source == "rtsp://10.0.0.5/stream1"
    assert cfg.cameras[0].is_live


@pytest.mark.parametrize(
    ("text", "key", "expected"),
    [
        (GOOD.replace("fps: 5", "fps: -1"), "cameras.0.fps", "greater than 0"),
        (GOOD.replace("fps: 5", "fsp: 5"), "cameras.0.fsp", "Extra inputs are not permitted"),
        (GOOD + "    detection: {classes: [person, dragon]}\n", "cameras.0.detection.classes", "dragon"),
        (GOOD + "    detection: {confidence: 1.5}\n", "cameras.0.detection.confidence", "less than or equal to 1"),
        (GOOD + "    privacy_masks: [{polygon: [[0, 0], [1, 0]]}]\n", "cameras.0.privacy_masks.0.polygon",
         "at least 3 points"),
        (GOOD + "    privacy_masks: [{polygon: [[0, 0], [1.5, 0], [1, 1]]}]\n",
         "cameras.0.privacy_masks.0.polygon", "outside the frame"),
        (GOOD + "  - id: cam1\n    source: b.mp4\n", "(top level)", "camera ids must be unique"),
        ("cameras: []\n", "cameras", "at least 1 item"),
        ("detector: {backend: tensorrt}\ncameras: [{id: a, source: a.mp4}]\n", "detector.backend",
         "'openvino', 'onnxruntime' or 'ultralytics'"),
        (GOOD.replace("id: cam1", "id: 'cam 1!'"), "cameras.0.id", "should match pattern"),
    ],
)
def test_invalid_configs_name_file_key_and_expectation(tmp_path: Path, text: str, key: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert str(path) in message
    assert key in message
    assert expected in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [("cameras: [unclosed\n", "not valid YAML"), ("- just a list\n", "must be a YAML mapping")],
)
def test_unparseable_config(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        load_config(write(tmp_path, text))


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config .*nope.yaml"):
        load_config(tmp_path / "nope.yaml")


def test_unset_env_var_in_source_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_SUCH_VAR_XYZ", raising=False)
    with pytest.raises(ConfigError, match=r"cameras.0.source: environment variable \$\{NO_SUCH_VAR_XYZ\}"):
        load_config(write(tmp_path, GOOD.replace("clip.mp4", "${NO_SUCH_VAR_XYZ}/a.mp4")))


def test_shipped_configs_are_valid() -> None:
    configs = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.yaml"))
    assert configs, "configs/ has no YAML file"
    for path in configs:
        assert load_config(path).cameras
