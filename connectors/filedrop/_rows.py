"""Rows of text cells → inquiries, checked against the service's request schema (pure).

Columns are request fields (by name, or as renamed in the rule's ``columns``) plus the
reserved ``purpose``, ``case_reference`` and ``end_user_id``. The header is checked once: a
column that is neither, or a required field without a column, refuses the whole file (every
row would be wrong). Each row is then read cell by cell (:mod:`connectors._schema_values`)
and its payload encoded once with the schema, so a row the bus would refuse is reported on
its line instead of being sent.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from connectors._schema_values import CellError, FieldReader, field_readers
from connectors.filedrop._config import BatchRule
from connectors.filedrop._parse import Problem, Row
from exchange._codec import Codec, SchemaStore
from exchange._errors import CodecError
from exchange._outcome import InquirySpec
from exchange._schema_store import Schema

__all__ = ["RESERVED", "RowReader"]

RESERVED = ("purpose", "case_reference", "end_user_id")


@dataclass(frozen=True, slots=True)
class ReadRow:
    """A row that became an inquiry."""

    line: int
    spec: InquirySpec


class RowReader:
    """Reads the rows of files that one rule applies to, by the request schema."""

    def __init__(self, rule: BatchRule, definition: Mapping[str, Any]) -> None:
        self.rule = rule
        self._readers = field_readers(definition)
        self._schema = Schema.parse(dict(definition))
        self._codec = Codec(SchemaStore())
        self._defaults = {f["name"]: f["default"] for f in definition["fields"] if "default" in f}
        #: column name → request field
        self._fields = {rule.columns.get(name, name): name for name in self._readers}

    def header_problems(self, columns: tuple[str, ...], line: int = 1) -> list[Problem]:
        """Why rows with these columns cannot be read at all, if they cannot (a CSV header:
        line 1, the whole file; an XML ``<inquiry>``: its line, that row)."""
        problems = []
        known = set(self._fields) | set(RESERVED)
        if self.rule.subject is not None:
            known.add(self.rule.subject.column)
        for column in columns:
            if column not in known:
                problems.append(Problem(line, f"column {column!r} is no request field"))
        for column, name in self._fields.items():
            if self._readers[name].required and column not in columns:
                problems.append(Problem(line, f"no column {column!r} for a required field"))
        if self.rule.purpose is None and "purpose" not in columns:
            problems.append(Problem(line, "no purpose column, and the rule sets none"))
        return problems

    def read(self, row: Row, inquiry_id: uuid.UUID) -> ReadRow | Problem:
        """The row's inquiry, or the problem that keeps it from being one."""
        payload: dict[str, Any] = {}
        for column, text in row.cells.items():
            name = self._fields.get(column)
            if name is None:
                continue
            reader: FieldReader = self._readers[name]
            if text == "" and not reader.required:
                continue  # the schema's default
            try:
                payload[name] = reader.read(text)
            except CellError as exc:
                return Problem(row.line, f"column {column!r}: {exc}")
        problem = self._misfit(payload)
        if problem is not None:
            return Problem(row.line, problem)
        purpose = row.cells.get("purpose") or self.rule.purpose
        if not purpose:
            return Problem(row.line, "no purpose")
        return ReadRow(row.line, self._spec(row, payload, purpose, inquiry_id))

    def _misfit(self, payload: dict[str, Any]) -> str | None:
        try:
            self._codec.encode_body(self._schema, {**self._defaults, **payload})
        except CodecError as exc:
            return f"does not fit the request schema: {exc.message}"
        return None

    def _spec(
        self, row: Row, payload: dict[str, Any], purpose: str, inquiry_id: uuid.UUID
    ) -> InquirySpec:
        """The inquiry (its deadline is set when it is sent: the rule's is relative)."""
        subject = None
        if self.rule.subject is not None and row.cells.get(self.rule.subject.column):
            subject = (self.rule.subject.kind, row.cells[self.rule.subject.column])
        return InquirySpec(
            service=self.rule.service,
            payload=payload,
            purpose=purpose,
            case_reference=row.cells.get("case_reference") or None,
            end_user_id=row.cells.get("end_user_id") or None,
            subject=subject,
            inquiry_id=inquiry_id,
        )
