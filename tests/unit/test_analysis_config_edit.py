"""Tuned configs: values edited in place (comments and layout kept), missing fields added, paths rebased,
the copy validated."""

from __future__ import annotations

from pathlib import Path

import pytest

from analytics.analysis.config_edit import ConfigEditError, tuned_text, unified_diff, write_tuned_config
from analytics.config import ConfigError, load_config

CONFIG = """\
# the config's own comment
cameras:
  - id: cam          # a comment after the id
    source: clips/street.mp4
    rules:
      - {kind: gathering, id: group, min_people: 3, radius_m: 2.0}   # trailing comment
      - kind: loitering   # block style
        id: standing
        min_duration: 30
      - {kind: abnormal_flow, id: flow, line: west, window: 60, hop: 10, max_count: 40,
         baseline: ../baselines/flow.json}
    scene:
      lines:
        - {id: west, a: [0.3, 0.3], b: [0.3, 0.6]}
  - id: other
    source: ${SHARED}/footage/street/x.mp4
"""


def test_values_are_edited_in_place_and_missing_fields_added() -> None:
    text = tuned_text(CONFIG, {"cam": {"group": {"radius_m": 1.5, "min_duration": 6.0},
                                       "standing": {"min_duration": 20.0, "max_speed_mps": 0.4},
                                       "flow": {"max_count": 30}}}, header="tuned\nby a test")
    assert text.startswith("# tuned\n# by a test\n# the config's own comment\n")
    assert ("      - {kind: gathering, id: group, min_people: 3, radius_m: 1.5, min_duration: 6.0}   "
            "# trailing comment\n") in text
    assert "        min_duration: 20.0\n        max_speed_mps: 0.4\n      - {kind: abnormal_flow" in text
    assert "max_count: 30," in text and "  - id: cam          # a comment after the id\n" in text
    diff = unified_diff(CONFIG, text)
    assert diff.count("\n+") - diff.count("\n+++") == 6  # two header lines, the group line, two loitering, flow


def test_no_change_gives_the_same_text() -> None:
    assert tuned_text(CONFIG, {}) == CONFIG
    assert tuned_text(CONFIG, {"cam": {"group": {}}}) == CONFIG


@pytest.mark.parametrize(("changes", "match"), [
    ({"nope": {"group": {"radius_m": 1.0}}}, "no camera 'nope'"),
    ({"cam": {"nope": {"radius_m": 1.0}}}, "no rule of camera 'cam' 'nope'"),
    ({"other": {"group": {"radius_m": 1.0}}}, "rules of camera 'other'"),
])
def test_unknown_cameras_and_rules_are_refused(changes: dict, match: str) -> None:
    with pytest.raises(ConfigEditError, match=match):
        tuned_text(CONFIG, changes)


def _project(tmp_path: Path) -> Path:
    (tmp_path / "configs").mkdir()
    (tmp_path / "baselines").mkdir()
    (tmp_path / "baselines" / "flow.json").write_text("{}")
    path = tmp_path / "configs" / "cam.yaml"
    path.write_text(CONFIG)
    return path


def test_written_elsewhere_relative_paths_still_point_at_the_same_files(tmp_path: Path) -> None:
    source = _project(tmp_path)
    out = write_tuned_config(source, tmp_path / "runs" / "tuning" / "cam.tuned.yaml",
                             {"cam": {"group": {"radius_m": 1.5}}})
    text = out.read_text()
    assert "source: ../../configs/clips/street.mp4" in text and "baseline: ../../baselines/flow.json" in text
    assert "source: ${SHARED}/footage/street/x.mp4" in text
    before, after = load_config(source), load_config(out)
    assert [c.source for c in before.cameras] == [c.source for c in after.cameras]
    assert before.cameras[0].rules[2].baseline == after.cameras[0].rules[2].baseline
    assert after.cameras[0].rules[0].radius_m == 1.5 and before.cameras[0].rules[0].radius_m == 2.0


def test_paths_without_a_common_parent_become_absolute(tmp_path: Path) -> None:
    from analytics.analysis.config_edit import _rebase

    assert _rebase("a/b.mp4", Path("/work/x"), Path("/tmp/y")) == "/work/x/a/b.mp4"
    assert _rebase("rtsp://cam/1", Path("/work/x"), Path("/tmp/y")) is None
    assert _rebase("${SHARED}/f.mp4", Path("/work/x"), Path("/tmp/y")) is None


def test_an_invalid_value_fails_validation(tmp_path: Path) -> None:
    source = _project(tmp_path)
    with pytest.raises(ConfigError, match="radius_m"):
        write_tuned_config(source, tmp_path / "bad.yaml", {"cam": {"group": {"radius_m": -1.0}}})


def test_the_real_configs_take_a_change(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    out = write_tuned_config(root / "configs" / "default.yaml", tmp_path / "default.tuned.yaml",
                             {"pets09-junction": {"group": {"min_duration": 6.0}},
                              "freeway": {"flow": {"p_value": 0.01}}})
    cams = {c.id: c for c in load_config(out).cameras}
    assert cams["pets09-junction"].rules[0].min_duration == 6.0 and cams["freeway"].rules[-1].p_value == 0.01
    diff = unified_diff((root / "configs" / "default.yaml").read_text(), out.read_text())
    assert diff.count("\n-") - diff.count("\n---") == 2  # the two rule lines, and nothing else
