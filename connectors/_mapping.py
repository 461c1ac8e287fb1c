"""The small declarative mapping language of connector configs (pure).

A *template* is any YAML value; rendering it against a *scope* (a dict of roots) gives the
value to send or the payload to answer with:

- ``"$payload.national_id"`` — a path: a root (``payload``, ``inquiry``, ``result`` …), then
  ``.field`` and ``[index]`` steps; a missing step gives ``None``;
- ``"$now"`` — the current UTC time (for ``verified_at``-style fields);
- ``{"$from": "result.Status", "$map": {"A": "VALID"}, "$default": "UNKNOWN", "$as": "date"}``
  — a path with a lookup table, a default for ``None`` and a conversion (``str``, ``int``,
  ``float``, ``bool``, ``date``, ``datetime``);
- any other dict or list — rendered item by item; any other scalar — itself (``"$$x"`` is the
  literal ``"$x"``).

:func:`fill` renders a string with ``{path}`` placeholders (a URL template), quoting each
value. A template that cannot be rendered raises :class:`MappingError` (a bug in the mapping:
the SDK dead-letters the request).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

__all__ = ["MappingError", "fill", "inquiry_scope", "jsonable", "render", "resolve"]

_STEP = re.compile(r"\.?([A-Za-z_][A-Za-z0-9_-]*)|\[(-?\d+)\]")
_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")
_KEYS = frozenset({"$from", "$map", "$default", "$as"})


class MappingError(ValueError):
    """A template that cannot be rendered against its scope (a path or a conversion)."""


def render(template: Any, scope: Mapping[str, Any]) -> Any:
    """The value ``template`` stands for in ``scope`` (see the module docstring)."""
    if isinstance(template, str):
        return _render_text(template, scope)
    if isinstance(template, Mapping):
        if "$from" in template:
            return _lookup(template, scope)
        return {key: render(value, scope) for key, value in template.items()}
    if isinstance(template, list):
        return [render(item, scope) for item in template]
    return template


def _render_text(template: str, scope: Mapping[str, Any]) -> Any:
    if template.startswith("$$"):
        return template[1:]
    if template == "$now":
        return dt.datetime.now(dt.UTC)
    if template.startswith("$"):
        return resolve(template[1:], scope)
    return template


def resolve(path: str, scope: Mapping[str, Any]) -> Any:
    """Follow ``root.field[0].name`` through dicts, lists and attributes; None if missing."""
    steps = list(_steps(path))
    root, rest = str(steps[0]), steps[1:]
    if root not in scope:
        raise MappingError(f"unknown root {root!r} in ${path} (known: {', '.join(scope)})")
    value = scope[root]
    for step in rest:
        value = _step(value, step)
        if value is None:
            return None
    return value


def fill(
    text: str, scope: Mapping[str, Any], *, quoting: Callable[[str], str] | None = None
) -> str:
    """``text`` with each ``{path}`` replaced by its value, URL-quoted by default."""
    quote_value = quoting or (lambda value: quote(value, safe=""))

    def one(match: re.Match[str]) -> str:
        value = resolve(match.group(1).strip(), scope)
        if value is None:
            raise MappingError(f"{{{match.group(1)}}} is empty")
        return quote_value(_text(value))

    return _PLACEHOLDER.sub(one, text)


def _steps(path: str) -> list[str | int]:
    steps: list[str | int] = []
    position = 0
    while position < len(path):
        match = _STEP.match(path, position)
        if match is None or match.end() == position:
            raise MappingError(f"bad path ${path} at {path[position:]!r}")
        name, index = match.groups()
        steps.append(name if name is not None else int(index))
        position = match.end()
    if not steps or not isinstance(steps[0], str):
        raise MappingError(f"bad path ${path}: it must start with a root name")
    return steps


def _step(value: Any, step: str | int) -> Any:
    if isinstance(step, int):
        if isinstance(value, list | tuple) and -len(value) <= step < len(value):
            return value[step]
        return None
    if isinstance(value, Mapping):
        return value.get(step)
    return getattr(value, step, None)


def _lookup(template: Mapping[str, Any], scope: Mapping[str, Any]) -> Any:
    unknown = set(template) - _KEYS
    if unknown:
        raise MappingError(f"unknown keys {sorted(unknown)} beside $from")
    value = resolve(str(template["$from"]).removeprefix("$"), scope)
    table = template.get("$map")
    if table is not None and value is not None:
        value = table.get(value, table.get(str(value), template.get("$default")))
    if value is None:
        return render(template.get("$default"), scope)
    kind = template.get("$as")
    return _convert(value, kind) if kind else value


def _convert(value: Any, kind: str) -> Any:
    try:
        return _CONVERSIONS[kind](value)
    except KeyError:
        raise MappingError(f"unknown $as {kind!r} (one of {sorted(_CONVERSIONS)})") from None
    except (TypeError, ValueError) as exc:
        raise MappingError(f"cannot convert {type(value).__name__} to {kind}: {exc}") from exc


def _text(value: Any) -> str:
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return str(value)


def _to_bool(value: Any) -> bool:
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "1", "yes", "y"):
            return True
        if lowered in ("false", "0", "no", "n", ""):
            return False
        raise ValueError(f"not a boolean: {value!r}")
    return bool(value)


def _to_date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


def _to_datetime(value: Any) -> dt.datetime:
    parsed = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=dt.UTC)


_CONVERSIONS: dict[str, Callable[[Any], Any]] = {
    "str": _text,
    "int": int,
    "float": float,
    "bool": _to_bool,
    "date": _to_date,
    "datetime": _to_datetime,
}


def jsonable(value: Any) -> Any:
    """``value`` with dates, datetimes and other non-JSON scalars as strings."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return _text(value)


def inquiry_scope(inquiry: Any) -> dict[str, Any]:
    """The roots every request template sees: ``payload`` and ``inquiry``."""
    subject = None
    if inquiry.subject is not None:
        subject = {"kind": inquiry.subject[0], "id": inquiry.subject[1]}
    return {
        "payload": inquiry.payload,
        "inquiry": {
            "id": str(inquiry.id),
            "requester": inquiry.requester,
            "requester_subsystem": inquiry.requester_subsystem,
            "service": inquiry.service,
            "purpose": inquiry.purpose,
            "case_reference": inquiry.case_reference,
            "end_user_id": inquiry.end_user_id,
            "subject": subject,
            "deadline": inquiry.deadline,
        },
    }
