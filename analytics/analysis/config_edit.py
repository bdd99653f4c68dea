"""Write tuned thresholds back into a copy of a run config, as a minimal, reviewable change.

The copy is the original text with only the tuned values edited in place (found through PyYAML's node
positions), so its comments, order and flow style are kept and ``diff original tuned`` shows exactly the
changed thresholds. A field the rule did not set (it took the default) is added to that rule's mapping. A
header comment says where the copy comes from and what changed. When the copy is written to another folder,
the relative paths the config resolves against its own folder (camera ``source``, rule ``baseline``) are
rewritten so they still point at the same files. The copy is validated with
:func:`analytics.config.load_config` and checked to hold the new values before this returns.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

#: ``{camera id: {rule id: {field: value}}}``
Changes = Mapping[str, Mapping[str, Mapping[str, Any]]]
_PATH_FIELDS = ("source",)  # camera fields resolved against the config's folder
_RULE_PATH_FIELDS = ("baseline",)


class ConfigEditError(ValueError):
    """A change that cannot be written (unknown camera or rule, a config without cameras...)."""


def _get(node: MappingNode, key: str) -> tuple[ScalarNode, Node] | None:
    for k, v in node.value:
        if isinstance(k, ScalarNode) and k.value == key:
            return k, v
    return None


def _scalar_text(value: Any) -> str:
    """``value`` as inline YAML (``4``, ``0.5``, ``[person, car]``, ``null``)."""
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000, sort_keys=False)
    return text.split("\n...")[0].strip()


def _items(root: Node, key: str, what: str) -> list[MappingNode]:
    found = _get(root, key) if isinstance(root, MappingNode) else None
    if found is None or not isinstance(found[1], SequenceNode):
        raise ConfigEditError(f"the config has no '{key}' list ({what})")
    return [n for n in found[1].value if isinstance(n, MappingNode)]


def _by_id(nodes: list[MappingNode], wanted: str, what: str) -> MappingNode:
    ids = []
    for node in nodes:
        item = _get(node, "id")
        if item is not None:
            ids.append(item[1].value)
            if item[1].value == wanted:
                return node
    raise ConfigEditError(f"no {what} {wanted!r} in the config; {what}s: {ids}")


def _set_edit(text: str, mapping: MappingNode, key: str, value: Any) -> tuple[int, int, str]:
    """(start, end, replacement) that sets ``key`` to ``value`` in ``mapping``: the value replaced in place, or
    the key added at the end of the mapping (inside a ``{...}``, or as a new line of a block mapping)."""
    new = _scalar_text(value)
    found = _get(mapping, key)
    if found is not None:
        node = found[1]
        return node.start_mark.index, node.end_mark.index, new
    if mapping.flow_style:
        close = text.rindex("}", mapping.start_mark.index, mapping.end_mark.index)
        return close, close, f", {key}: {new}"
    indent = mapping.value[0][0].start_mark.column if mapping.value else mapping.start_mark.column
    last = mapping.value[-1][1].end_mark if mapping.value else mapping.end_mark
    at = last.index - 1 if last.column == 0 else text.find("\n", last.index)
    at = len(text) if at < 0 else at
    return at, at, "\n" + " " * indent + f"{key}: {new}"


def _rebase(value: str, old_base: Path, new_base: Path) -> str | None:
    """A relative path of the old folder, relative to the new one (absolute when the two folders share no
    parent but the file system root); None for what needs no change."""
    if "://" in value or value.startswith(("${", "/", "~")) or os.path.isabs(value):
        return None
    target, base = (old_base / value).resolve(), new_base.resolve()
    if os.path.commonpath([target, base]) == target.anchor:
        return str(target)
    return os.path.relpath(target, base)


def _path_edits(text: str, cameras: list[MappingNode], old_base: Path, new_base: Path) -> list[tuple[int, int, str]]:
    edits = []
    for cam in cameras:
        targets = [(cam, f) for f in _PATH_FIELDS]
        rules = _get(cam, "rules")
        if rules is not None and isinstance(rules[1], SequenceNode):
            targets += [(r, f) for r in rules[1].value if isinstance(r, MappingNode) for f in _RULE_PATH_FIELDS]
        for node, field in targets:
            found = _get(node, field)
            if found is None or not isinstance(found[1], ScalarNode) or found[1].tag.endswith(":null"):
                continue
            moved = _rebase(found[1].value, old_base, new_base)
            if moved is not None and moved != found[1].value:
                edits.append((found[1].start_mark.index, found[1].end_mark.index, _scalar_text(moved)))
    return edits


def tuned_text(text: str, changes: Changes, *, old_base: Path | None = None, new_base: Path | None = None,
               header: str = "") -> str:
    """The config text with ``changes`` applied (see the module docstring).

    Args:
        text: the original YAML.
        changes: ``{camera id: {rule id: {field: value}}}``.
        old_base, new_base: the original's folder and the copy's folder, to rebase relative paths (both or
            neither).
        header: comment lines put on top (``#`` added to each line).

    Raises:
        ConfigEditError: a camera or rule that is not in the config.
    """
    root = yaml.compose(text)
    cameras = _items(root, "cameras", "of cameras")
    edits: list[tuple[int, int, str]] = []
    for cam_id, rules in changes.items():
        cam = _by_id(cameras, cam_id, "camera")
        rule_nodes = _items(cam, "rules", f"rules of camera {cam_id!r}")
        for rule_id, fields in rules.items():
            rule = _by_id(rule_nodes, rule_id, f"rule of camera {cam_id!r}")
            edits += [_set_edit(text, rule, k, v) for k, v in fields.items()]
    if old_base is not None and new_base is not None and old_base.resolve() != new_base.resolve():
        edits += _path_edits(text, cameras, old_base, new_base)
    for start, end, new in sorted(edits, reverse=True):
        text = text[:start] + new + text[end:]
    lines = "".join(f"# {line}".rstrip() + "\n" for line in header.splitlines())
    return lines + text


def write_tuned_config(source: str | Path, out: str | Path, changes: Changes, *, header: str = "") -> Path:
    """Write a copy of the config ``source`` at ``out`` with ``changes`` (``{camera: {rule: {field: value}}}``)
    applied, validate it and check the values; returns ``out``.

    Raises:
        ConfigEditError: an unknown camera or rule, or a copy that does not read back with the new values.
        analytics.config.ConfigError: the copy is not a valid config (e.g. a value out of its range).
    """
    from analytics.config import load_config

    source, out = Path(source), Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    text = tuned_text(source.read_text(encoding="utf-8"), changes, old_base=source.parent, new_base=out.parent,
                      header=header)
    out.write_text(text, encoding="utf-8")
    _check_values(load_config(out), changes, out)
    return out


def _check_values(cfg: Any, changes: Changes, out: Path) -> None:
    """Each changed field of the loaded copy equals the value asked for (after the model's coercion)."""
    cams = {c.id: c for c in cfg.cameras}
    for cam_id, rules in changes.items():
        for rule in cams[cam_id].rules:
            for field, value in rules.get(rule.id, {}).items():
                wanted = getattr(type(rule).model_validate({**rule.model_dump(), field: value}), field)
                if getattr(rule, field) != wanted:
                    raise ConfigEditError(f"{out}: {cam_id}/{rule.id}.{field} reads back as "
                                          f"{getattr(rule, field)!r}, not {wanted!r}")


def unified_diff(before: str, after: str, *, names: tuple[str, str] = ("original", "tuned")) -> str:
    """``diff -u`` of two texts."""
    return "".join(difflib.unified_diff(before.splitlines(keepends=True), after.splitlines(keepends=True),
                                        fromfile=names[0], tofile=names[1]))
