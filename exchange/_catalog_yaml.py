"""Reading catalog YAML while keeping where each value came from.

PyYAML's ``compose`` gives a node tree whose nodes carry start marks (0-based line and
column); we construct plain values one entry at a time from it, so every problem can point at
the entry, or the very key, at fault. Problems are reported 1-based, as editors count.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from exchange._catalog_rules import FieldPath

# libyaml's parser when PyYAML was built with it: ten times faster on a national catalog, with
# the same node marks.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True, slots=True)
class Problem:
    """One catalog problem with its position: ``file:line:column: message``."""

    file: Path
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.message}"


def problem_at(file: Path, mark: yaml.Mark | None, message: str) -> Problem:
    """A problem at a PyYAML mark (0-based), or at the top of the file without one."""
    if mark is None:
        return Problem(file, 1, 1, message)
    return Problem(file, mark.line + 1, mark.column + 1, message)


def read_entries(file: Path, key: str) -> tuple[list[yaml.Node] | None, list[Problem]]:
    """The nodes of the list under top-level ``key``, and the problems found on the way.

    The nodes are None when the list cannot be read at all (missing file, broken YAML).
    """
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, [Problem(file, 1, 1, "file is missing")]
    except (OSError, UnicodeDecodeError) as exc:
        return None, [Problem(file, 1, 1, f"cannot read file: {exc}")]
    try:
        root = yaml.compose(text, Loader=_LOADER)
    except yaml.MarkedYAMLError as exc:
        return None, [problem_at(file, exc.problem_mark, f"malformed YAML: {_yaml_reason(exc)}")]
    except yaml.YAMLError as exc:
        return None, [Problem(file, 1, 1, f"malformed YAML: {exc}")]
    problems = [problem_at(file, m, msg) for m, msg in _duplicate_keys(root)]
    entries, shape = _top_level(root, key)
    return entries, problems + [problem_at(file, m, msg) for m, msg in shape]


def to_python(node: yaml.Node) -> Any:
    """Construct the plain value of one node (safe tags only)."""
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_document(node)
    finally:
        loader.dispose()


def node_at(node: yaml.Node, path: FieldPath, aliases: dict[str, str] | None = None) -> yaml.Node:
    """The deepest node along ``path`` (mapping keys, list indexes) that exists.

    ``aliases`` maps model field names to the YAML key that holds them (``provider_subsystem``
    is written inside ``provider``).
    """
    for part in path:
        child = _child(node, part, aliases or {})
        if child is None:
            break
        node = child
    return node


def _child(node: yaml.Node, part: str | int, aliases: dict[str, str]) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode) and isinstance(part, str):
        wanted = {part, aliases.get(part, part)}
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value in wanted:
                return value  # type: ignore[no-any-return]  # PyYAML's node values are untyped
        return None
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
        return node.value[part]  # type: ignore[no-any-return]  # as above
    return None


def _top_level(
    root: yaml.Node | None, key: str
) -> tuple[list[yaml.Node] | None, list[tuple[yaml.Mark | None, str]]]:
    """The list under ``key`` (None if there is none); every other top-level shape is a problem."""
    if root is None:
        return None, [(None, f"file is empty; expected a top-level '{key}:' list")]
    if not isinstance(root, yaml.MappingNode):
        return None, [(root.start_mark, f"expected a mapping with a top-level '{key}:' list")]
    entries: list[yaml.Node] | None = None
    problems: list[tuple[yaml.Mark | None, str]] = []
    found = False
    for key_node, value in root.value:
        if key_node.value != key:
            problems.append((key_node.start_mark, f"unknown top-level key {key_node.value!r}"))
            continue
        found = True
        if isinstance(value, yaml.SequenceNode):
            entries = list(value.value)
        elif isinstance(value, yaml.ScalarNode) and value.tag.endswith(":null"):
            entries = []
        else:
            problems.append((value.start_mark, f"'{key}' must be a list"))
    if not found:
        problems.append((root.start_mark, f"missing top-level key '{key}'"))
    return entries, problems


def _duplicate_keys(root: yaml.Node | None) -> list[tuple[yaml.Mark, str]]:
    """Keys given twice in one mapping: PyYAML would silently keep the last one."""
    found: list[tuple[yaml.Mark, str]] = []
    stack = [root] if root is not None else []
    seen: set[int] = set()
    while stack:
        node = stack.pop()
        if id(node) in seen:  # anchors and aliases share nodes
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            keys: set[str] = set()
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode):
                    if key.value in keys:
                        found.append((key.start_mark, f"key {key.value!r} is given twice"))
                    keys.add(key.value)
                stack.append(value)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
    return sorted(found, key=lambda item: (item[0].line, item[0].column))


def _yaml_reason(exc: yaml.MarkedYAMLError) -> str:
    parts = [exc.context, exc.problem]
    return ", ".join(part for part in parts if part) or str(exc)
