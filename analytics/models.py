"""Registry of detector weights and the offline loader that finds and verifies them.

Weights are never downloaded. A registry name (``yolo11n_int8_openvino``) is looked up in
``models/registry.yaml`` (plus ``models/cache/registry.yaml`` written by ``models/build_aspect_model.py``,
when present), then its files are searched in, in order:

1. ``$ANALYTICS_MODELS_DIR``
2. ``<project>/models/``
3. ``<shared>/models/`` (:func:`analytics.paths.shared_dir`)

and every file's sha256 is checked (results cached in-process by ``(path, size, mtime)``). A plain path
(the user's own model) is accepted without a checksum but must exist. Anything wrong raises one
:class:`ModelError` naming the file, the expected (and actual) checksum and every place searched.

Only the standard library and PyYAML (imported on first use) are needed: importing this module is cheap.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

from analytics import paths

log = logging.getLogger(__name__)

#: Environment variable naming a folder searched first for registered weights.
MODELS_ENV = "ANALYTICS_MODELS_DIR"
#: ``<project>/models``: holds ``registry.yaml`` and is the second folder searched.
PROJECT_MODELS_DIR = paths.PROJECT_ROOT / "models"
#: The default model of the engine.
DEFAULT_MODEL = "yolo11n_int8_openvino"

ModelFormat = Literal["openvino", "onnx", "pt"]
_FORMATS = ("openvino", "onnx", "pt")
_BACKENDS_BY_FORMAT: dict[str, tuple[str, ...]] = {
    "openvino": ("openvino", "ultralytics"),
    "onnx": ("onnxruntime", "openvino", "ultralytics"),
    "pt": ("ultralytics",),
}


class ModelError(RuntimeError):
    """A model that cannot be used: unknown name, missing file or checksum mismatch."""


@dataclass(frozen=True)
class ModelEntry:
    """One registry entry (see ``models/registry.yaml``). Paths are relative to a model folder."""

    name: str
    format: ModelFormat
    path: str
    files: dict[str, str]  # relative path -> sha256 hex
    input_size: tuple[int, int] | None  # (height, width) pixels
    precision: str
    backends: tuple[str, ...]
    licence: str
    source: str


@dataclass(frozen=True)
class ResolvedModel:
    """A model found on disk and verified.

    Attributes:
        name: registry name, or the file/folder name for a plain path.
        path: what a backend loads: an OpenVINO IR folder (or ``.xml``), an ``.onnx`` or a ``.pt`` file.
        files: every file of the model (absolute paths).
        format: ``openvino``, ``onnx`` or ``pt``.
        input_size: network input (height, width) in pixels when known from the registry, else None
            (backends read it from the model).
        backends: detector backends able to run it.
        verified: True when every file matched the registry's sha256 (False for a plain path).
    """

    name: str
    path: Path
    files: tuple[Path, ...]
    format: ModelFormat
    input_size: tuple[int, int] | None
    backends: tuple[str, ...]
    verified: bool


def registry_files() -> tuple[Path, ...]:
    """The registry YAML files read, in order (later files may add entries, not replace them)."""
    return (PROJECT_MODELS_DIR / "registry.yaml", PROJECT_MODELS_DIR / "cache" / "registry.yaml")


def search_dirs() -> tuple[Path, ...]:
    """Folders searched for registered weights, in order."""
    dirs = []
    env = os.environ.get(MODELS_ENV)
    if env:
        dirs.append(Path(env).expanduser())
    dirs += [PROJECT_MODELS_DIR, paths.shared_dir() / "models"]
    return tuple(dirs)


def _parse_entry(name: str, raw: object, source: Path) -> ModelEntry:
    if not isinstance(raw, dict):
        raise ModelError(f"registry {source}: entry {name!r} must be a mapping, got {type(raw).__name__}")
    try:
        fmt = raw["format"]
        if fmt not in _FORMATS:
            raise ModelError(f"registry {source}: {name}.format must be one of {_FORMATS}, got {fmt!r}")
        size = raw.get("input_size")
        return ModelEntry(
            name=name,
            format=fmt,
            path=str(raw["path"]),
            files={str(k): str(v).lower() for k, v in dict(raw["files"]).items()},
            input_size=(int(size[0]), int(size[1])) if size else None,
            precision=str(raw.get("precision", "")),
            backends=tuple(raw.get("backends") or _BACKENDS_BY_FORMAT[fmt]),
            licence=str(raw.get("licence", "")),
            source=str(raw.get("source", "")),
        )
    except (KeyError, TypeError, ValueError, IndexError) as err:
        raise ModelError(f"registry {source}: entry {name!r} is malformed ({type(err).__name__}: {err})") from None


def load_registry(files: tuple[Path, ...] | None = None) -> dict[str, ModelEntry]:
    """Read the registry files (missing ones are skipped) into ``{name: ModelEntry}``.

    Parsed files are cached in-process by (path, size, mtime).

    Raises:
        ModelError: a registry file is not valid YAML, an entry is malformed, or a name is repeated.
    """
    entries: dict[str, ModelEntry] = {}
    for source in files if files is not None else registry_files():
        if not source.is_file():
            continue
        st = source.stat()
        for name, entry in _parse_registry(source, st.st_size, st.st_mtime_ns).items():
            if name in entries:
                raise ModelError(f"registry {source}: model {name!r} is already defined in another registry file")
            entries[name] = entry
    return dict(entries)


def list_models() -> list[ModelEntry]:
    """Every registered model, sorted by name (nothing is checked on disk)."""
    return [entry for _, entry in sorted(load_registry().items())]


@lru_cache(maxsize=16)
def _parse_registry(source: Path, size: int, mtime_ns: int) -> dict[str, ModelEntry]:
    import yaml

    try:
        doc = yaml.safe_load(source.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise ModelError(f"registry {source} is not valid YAML: {err}") from None
    models = doc.get("models") if isinstance(doc, dict) else None
    if not isinstance(models, dict):
        raise ModelError(f"registry {source} must be a mapping with a 'models' mapping")
    return {str(name): _parse_entry(str(name), raw, source) for name, raw in models.items()}


@lru_cache(maxsize=256)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def file_sha256(path: Path) -> str:
    """sha256 hex digest of a file, cached in-process by (path, size, mtime)."""
    st = path.stat()
    return _sha256_cached(str(path.resolve()), st.st_size, st.st_mtime_ns)


def _searched(dirs: tuple[Path, ...]) -> str:
    return "searched: " + ", ".join(str(d) for d in dirs) + f" (set ${MODELS_ENV} to add a folder)"


def _find_dir(entry: ModelEntry, dirs: tuple[Path, ...]) -> Path:
    """The first folder holding every file of ``entry``."""
    for d in dirs:
        if all((d / rel).is_file() for rel in entry.files):
            return d
    first_missing = next(iter(entry.files))
    partial = [d for d in dirs if any((d / rel).is_file() for rel in entry.files)]
    if partial:
        d = partial[0]
        first_missing = next(rel for rel in entry.files if not (d / rel).is_file())
    raise ModelError(
        f"model {entry.name!r}: file {first_missing!r} not found (sha256 {entry.files[first_missing]}); "
        f"{_searched(dirs)}. Weights are never downloaded: copy them into one of these folders"
    )


def _verify(entry: ModelEntry, root: Path, dirs: tuple[Path, ...]) -> None:
    for rel, expected in entry.files.items():
        got = file_sha256(root / rel)
        if got != expected:
            raise ModelError(
                f"model {entry.name!r}: file {root / rel} is corrupt: sha256 expected {expected}, got {got}; "
                f"{_searched(dirs)}"
            )


def _from_entry(entry: ModelEntry) -> ResolvedModel:
    dirs = search_dirs()
    root = _find_dir(entry, dirs)
    _verify(entry, root, dirs)
    log.debug("model %s verified in %s", entry.name, root)
    return ResolvedModel(
        name=entry.name,
        path=root / entry.path,
        files=tuple(root / rel for rel in entry.files),
        format=entry.format,
        input_size=entry.input_size,
        backends=entry.backends,
        verified=True,
    )


def guess_format(path: Path) -> ModelFormat:
    """Model format from a path: an IR folder or ``.xml`` -> openvino, ``.onnx``, ``.pt``.

    Raises:
        ModelError: the suffix is not one of these, or a folder holds no ``.xml``.
    """
    if path.is_dir():
        if not any(path.glob("*.xml")):
            raise ModelError(f"model folder {path} holds no OpenVINO .xml file")
        return "openvino"
    suffix = path.suffix.lower()
    fmt = {".xml": "openvino", ".onnx": "onnx", ".pt": "pt"}.get(suffix)
    if fmt is None:
        raise ModelError(f"model file {path}: unknown format {suffix!r}; expected an OpenVINO folder or .xml, "
                         ".onnx or .pt")
    return fmt  # type: ignore[return-value]


def _from_path(path: Path) -> ResolvedModel:
    fmt = guess_format(path)
    if path.is_dir():
        files = tuple(sorted(p for p in path.iterdir() if p.is_file()))
    elif fmt == "openvino":
        files = (path, path.with_suffix(".bin"))
    else:
        files = (path,)
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise ModelError(f"model {path}: file(s) {missing} not found")
    return ResolvedModel(name=path.stem if path.is_file() else path.name, path=path, files=files, format=fmt,
                         input_size=None, backends=_BACKENDS_BY_FORMAT[fmt], verified=False)


def resolve_model(name_or_path: str | os.PathLike[str]) -> ResolvedModel:
    """Find a model by registry name (verified by sha256) or by path (the user's own, unverified).

    Raises:
        ModelError: unknown name and no such path; a registered file missing everywhere searched; a
            checksum mismatch; an unknown file format.
    """
    text = os.fspath(name_or_path)
    registry = load_registry()
    if text in registry:
        return _from_entry(registry[text])
    path = Path(text).expanduser()
    if path.exists():
        return _from_path(path.resolve())
    raise ModelError(
        f"model {text!r} is neither a registered name ({', '.join(sorted(registry))}) nor an existing path "
        f"(looked for {path.resolve()}); frame-aspect INT8 models such as yolo11n_int8_448x576_openvino are "
        f"built on this machine by `python models/build_aspect_model.py` (scripts/install.sh runs it)"
    )
