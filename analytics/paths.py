"""Where the engine finds shared material (footage, models) and how config paths are expanded."""

from __future__ import annotations

import os
import re
from pathlib import Path

#: Environment variable that points at the shared material folder (footage/, models/).
SHARED_ENV = "ANALYTICS_SHARED"

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def shared_dir() -> Path:
    """The shared material folder: ``$ANALYTICS_SHARED``, else ``../shared`` beside the project root."""
    env = os.environ.get(SHARED_ENV)
    if env:
        return Path(env).expanduser().resolve()
    return (PROJECT_ROOT.parent / "shared").resolve()


def footage_dir() -> Path:
    return shared_dir() / "footage"


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def expand(value: str, *, base: Path | None = None) -> str:
    """Expand ``${SHARED}`` and ``${ENV_VAR}`` in a path or URL; make a relative file path absolute
    against ``base`` (the config file's folder). URLs (``scheme://``) are returned expanded only.

    Raises:
        ValueError: a ``${VAR}`` names an unset environment variable.
    """

    def sub(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "SHARED":
            return str(shared_dir())
        if name not in os.environ:
            raise ValueError(f"environment variable ${{{name}}} used in {value!r} is not set")
        return os.environ[name]

    out = _VAR.sub(sub, value)
    if "://" in out or base is None:
        return out
    path = Path(out).expanduser()
    return str(path if path.is_absolute() else (base / path).resolve())
