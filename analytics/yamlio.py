"""Reading YAML files and describing validation errors, the same way for every file the project reads
(run configs, labelled events, benchmark manifests and reference numbers)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


def read_yaml(path: Path, *, what: str, error: type[Exception], plural: bool = False) -> Any:
    """The parsed YAML of ``path``; ``error`` names ``what`` and the file when it cannot be read or parsed
    (``plural``: "labelled events ... are not valid YAML")."""
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise error(f"cannot read {what} {path}: {err.strerror or err}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise error(f"{what} {path} {'are' if plural else 'is'} not valid YAML: {err}") from None


def problems(err: ValidationError, *, top: str = "(top level)") -> str:
    """A validation error in one line: ``key.path: message; ...`` (``top`` names the object itself)."""
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or top}: {e['msg']}" for e in err.errors())


def load_model(path: str | Path, model: type[M], *, what: str, error: type[Exception], plural: bool = False) -> M:
    """Read ``path`` and validate it as ``model``; ``error`` names ``what``, the file and each bad key."""
    path = Path(path)
    data = read_yaml(path, what=what, error=error, plural=plural)
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise error(f"invalid {what} {path}: {problems(err)}") from None
