"""What the connector writes beside a batch file (pure: values in, bytes out).

- ``<file>.result.csv`` / ``<file>.result.xml`` — one entry per inquiry, by line: its id,
  case reference, outcome kind, status, reason (reject reason or error code), detail, and the
  response payload's fields (CSV: one column per top-level field of the service's response
  schema, records and arrays as JSON; XML: one element per field);
- ``<file>.errors`` — CSV ``line,reason``, one line per row not sent (line 0: the file);
- ``<file>.done`` — JSON: counts and the file's SHA-256; written last, it says "complete".
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from xml.etree import ElementTree as ET

from connectors._mapping import jsonable
from connectors.filedrop._parse import Problem

__all__ = ["Settled", "done_marker", "errors_csv", "result_csv", "result_xml"]

_FIXED = ("line", "inquiry_id", "case_reference", "kind", "status", "reason", "detail")


@dataclass(frozen=True, slots=True)
class Settled:
    """One line's inquiry and its outcome, as the result file shows it (JSON-safe values)."""

    line: int
    inquiry_id: uuid.UUID
    case_reference: str | None
    kind: str
    status: str | None
    reason: str | None
    detail: str | None
    payload: dict[str, Any] | None

    def to_json(self) -> dict[str, Any]:
        """The journal's form of this entry."""
        return {
            "line": self.line,
            "inquiry_id": str(self.inquiry_id),
            "case_reference": self.case_reference,
            "kind": self.kind,
            "status": self.status,
            "reason": self.reason,
            "detail": self.detail,
            "payload": jsonable(self.payload) if self.payload is not None else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Settled:
        """Read an entry back from the journal."""
        return cls(**{**data, "inquiry_id": uuid.UUID(data["inquiry_id"])})


def result_csv(entries: Iterable[Settled], payload_fields: Sequence[str]) -> bytes:
    """The CSV result file: fixed columns, then one per response field."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([*_FIXED, *payload_fields])
    for entry in sorted(entries, key=lambda e: e.line):
        payload = entry.payload or {}
        writer.writerow(
            [
                entry.line,
                entry.inquiry_id,
                entry.case_reference or "",
                entry.kind,
                entry.status or "",
                entry.reason or "",
                entry.detail or "",
                *(_text(payload.get(name)) for name in payload_fields),
            ]
        )
    return out.getvalue().encode("utf-8")


def result_xml(entries: Iterable[Settled], source: str) -> bytes:
    """The XML result file: ``<results file=…><result line=… …><payload>…`` per entry."""
    root = ET.Element("results", {"file": source})
    for entry in sorted(entries, key=lambda e: e.line):
        attrs = {"line": str(entry.line), "inquiry_id": str(entry.inquiry_id), "kind": entry.kind}
        for name in ("status", "reason"):
            value = getattr(entry, name)
            if value:
                attrs[name] = value
        result = ET.SubElement(root, "result", attrs)
        for name in ("case_reference", "detail"):
            value = getattr(entry, name)
            if value:
                ET.SubElement(result, name).text = value
        if entry.payload is not None:
            payload = ET.SubElement(result, "payload")
            for key, value in entry.payload.items():
                ET.SubElement(payload, key).text = _text(value)
    ET.indent(root)
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document + b"\n"


def errors_csv(problems: Iterable[Problem]) -> bytes:
    """``line,reason`` for each row that was not sent (0: the whole file)."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["line", "reason"])
    for problem in sorted(problems, key=lambda p: p.line):
        writer.writerow([problem.line, problem.reason])
    return out.getvalue().encode("utf-8")


def done_marker(
    *, source: str, sha256: str, rows: int, errors: int, entries: Iterable[Settled]
) -> bytes:
    """The completion marker: what the file held and how its inquiries ended."""
    kinds: dict[str, int] = {}
    for entry in entries:
        kinds[entry.kind] = kinds.get(entry.kind, 0) + 1
    summary = {
        "file": source,
        "sha256": sha256,
        "rows": rows,
        "inquiries": sum(kinds.values()),
        "errors": errors,
        "outcomes": dict(sorted(kinds.items())),
        "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    return (json.dumps(summary, indent=2) + "\n").encode("utf-8")


def _text(value: Any) -> str:
    """A payload value as a cell: empty for null, JSON for records and arrays."""
    value = jsonable(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)
