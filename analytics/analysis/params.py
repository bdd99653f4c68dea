"""Notebook parameters: defaults declared in the first cell, overridden by ``ANALYTICS_NB_<NAME>`` variables.

CI runs the notebooks on small data and an analyst on full data without editing them::

    P = notebook_params(CONFIG="configs/pets09.yaml", MAX_EVENTS_PER_HOUR=0.0, GRID={"gathering": {...}})
    P.CONFIG                   # "configs/pets09.yaml", or $ANALYTICS_NB_CONFIG when set

A variable's text is parsed after the type of the default: ``str`` as is; ``int`` and ``float`` as numbers
(``inf`` allowed for floats); ``bool`` from ``1/0``, ``true/false``, ``yes/no``, ``on/off``; ``list`` and
``dict`` as JSON. Relative paths are resolved by :func:`resolve` against the repository root (the folder
holding ``pyproject.toml`` above the working directory), so a notebook run from ``notebooks/`` (Jupyter's
default) and one run from the root read the same files.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

PREFIX = "ANALYTICS_NB_"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class ParamsError(ValueError):
    """An environment override that does not parse as its parameter's type (the message names the variable)."""


class NotebookParams(Mapping[str, Any]):
    """Read-only parameters, by attribute (``P.CONFIG``) or key (``P["CONFIG"]``); ``overridden`` names those
    taken from the environment."""

    def __init__(self, values: Mapping[str, Any], overridden: tuple[str, ...]) -> None:
        self._values = MappingProxyType(dict(values))
        self.overridden = overridden

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(f"no notebook parameter {name!r}; parameters: {sorted(self._values)}") from None

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def __iter__(self):
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        lines = [f"{k} = {v!r}{'   (from ' + PREFIX + k + ')' if k in self.overridden else ''}"
                 for k, v in self._values.items()]
        return "\n".join(lines)


def parse_value(text: str, default: Any, *, name: str = "value") -> Any:
    """``text`` parsed as the type of ``default`` (see the module docstring); :class:`ParamsError` if it cannot."""
    try:
        if isinstance(default, bool):
            low = text.strip().lower()
            if low not in _TRUE | _FALSE:
                raise ValueError(f"expected one of {sorted(_TRUE | _FALSE)}")
            return low in _TRUE
        if isinstance(default, int):
            return int(text)
        if isinstance(default, float):
            value = float(text)
            if math.isnan(value):
                raise ValueError("nan is not a usable parameter")
            return value
        if isinstance(default, list | dict):
            value = json.loads(text)
            if not isinstance(value, type(default)):
                raise ValueError(f"expected a JSON {type(default).__name__}, got {type(value).__name__}")
            return value
    except (ValueError, json.JSONDecodeError) as err:
        raise ParamsError(f"{name}={text!r}: not a {type(default).__name__}: {err}") from None
    return text


def notebook_params(*, environ: Mapping[str, str] | None = None, **defaults: Any) -> NotebookParams:
    """The parameters with their defaults, each overridden by ``ANALYTICS_NB_<NAME>`` when that is set.

    Args:
        environ: the variables to read (default ``os.environ``).
        defaults: parameter name -> default; the default's type is the parameter's type (str, int, float,
            bool, list, dict).

    Raises:
        ParamsError: an override that does not parse, or a default of another type.
    """
    env = os.environ if environ is None else environ
    values, overridden = {}, []
    for name, default in defaults.items():
        if not isinstance(default, str | int | float | bool | list | dict):
            raise ParamsError(f"parameter {name}: default {default!r} is not a str, number, bool, list or dict")
        key = PREFIX + name
        if key in env:
            values[name] = parse_value(env[key], default, name=key)
            overridden.append(name)
        else:
            values[name] = default
    return NotebookParams(values, tuple(overridden))


def repo_root(start: str | Path | None = None) -> Path:
    """The nearest folder at or above ``start`` (default: the working directory) holding ``pyproject.toml``
    and ``analytics/``; else the folder this package was installed from."""
    from analytics.paths import PROJECT_ROOT

    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").is_file() and (folder / "analytics").is_dir():
            return folder
    return PROJECT_ROOT


def resolve(path: str | Path, *, root: Path | None = None) -> Path:
    """``path`` with ``${SHARED}`` / ``${VAR}`` expanded and, when relative, taken from the repository root."""
    from analytics import paths

    text = paths.expand(str(path), base=root or repo_root())
    return Path(text)
