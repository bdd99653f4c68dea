"""Notebook parameters: defaults, typed overrides from ANALYTICS_NB_* variables, paths from the repository root."""

from __future__ import annotations

from pathlib import Path

import pytest

from analytics import paths
from analytics.analysis.params import ParamsError, notebook_params, parse_value, repo_root, resolve

DEFAULTS = {"CONFIG": "configs/default.yaml", "N": 3, "CAP": 0.0, "DRAW": True, "LABELS": [], "GRID": {"a": [1]}}


def test_defaults_without_overrides() -> None:
    p = notebook_params(environ={}, **DEFAULTS)
    assert dict(p) == DEFAULTS and p.overridden == ()
    assert p.CONFIG == "configs/default.yaml" and p["N"] == 3


@pytest.mark.parametrize(("name", "text", "expected"), [
    ("CONFIG", "configs/pets09.yaml", "configs/pets09.yaml"),
    ("N", "7", 7),
    ("CAP", "inf", float("inf")),
    ("CAP", "12.5", 12.5),
    ("DRAW", "no", False),
    ("DRAW", "ON", True),
    ("LABELS", '["a.yaml", "b.yaml"]', ["a.yaml", "b.yaml"]),
    ("GRID", '{"gathering": {"min_people": [2, 3]}}', {"gathering": {"min_people": [2, 3]}}),
])
def test_overrides_parse_as_the_default_type(name: str, text: str, expected: object) -> None:
    p = notebook_params(environ={f"ANALYTICS_NB_{name}": text, "ANALYTICS_NB_OTHER": "x"}, **DEFAULTS)
    assert p[name] == expected and p.overridden == (name,)
    assert f"(from ANALYTICS_NB_{name})" in repr(p)


@pytest.mark.parametrize(("name", "text"), [("N", "three"), ("CAP", "nan"), ("DRAW", "maybe"),
                                            ("LABELS", '{"a": 1}'), ("GRID", "not json")])
def test_a_bad_override_names_the_variable(name: str, text: str) -> None:
    with pytest.raises(ParamsError, match=f"ANALYTICS_NB_{name}"):
        notebook_params(environ={f"ANALYTICS_NB_{name}": text}, **DEFAULTS)


def test_defaults_must_be_plain_types() -> None:
    with pytest.raises(ParamsError, match="PATH"):
        notebook_params(environ={}, PATH=Path("x"))
    assert parse_value("x", "") == "x"


def test_unknown_attribute_lists_the_parameters() -> None:
    with pytest.raises(AttributeError, match="CONFIG"):
        _ = notebook_params(environ={}, CONFIG="c").MISSING


def test_paths_resolve_from_the_repository_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = repo_root(paths.PROJECT_ROOT / "notebooks")
    assert root == paths.PROJECT_ROOT
    monkeypatch.chdir(paths.PROJECT_ROOT / "analytics")
    assert resolve("configs/pets09.yaml") == paths.PROJECT_ROOT / "configs" / "pets09.yaml"
    assert resolve(tmp_path / "x") == tmp_path / "x"
    assert resolve("${SHARED}/footage") == paths.shared_dir() / "footage"
    assert repo_root(tmp_path) == paths.PROJECT_ROOT  # no repository above: the installed one
