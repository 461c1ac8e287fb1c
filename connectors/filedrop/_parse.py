"""Batch files → rows of text cells with their line numbers (pure: bytes in, values out).

**CSV** (RFC 4180, UTF-8, an optional BOM): the first line names the columns; each later
record is one inquiry. A record's line is the line it starts on (a quoted cell may span
lines). Blank lines are skipped; a record with more or fewer cells than the header is a bad
row.

**XML** (UTF-8)::

    <inquiries>
      <inquiry case_reference="C-17">          <!-- attributes and child elements are cells -->
        <national_id>0012345678</national_id>
        <birth_date>1990-03-21</birth_date>
      </inquiry>
    </inquiries>

An inquiry's line is the line of its ``<inquiry>`` tag. A document type declaration is
refused (no entities, so no entity expansion attacks); a document that is not well-formed is
refused whole (it may be truncated), with the line where parsing stopped.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Literal
from xml.parsers import expat

__all__ = ["Problem", "RawBatch", "Row", "parse_batch"]

Format = Literal["csv", "xml"]
ROOT = "inquiries"
ITEM = "inquiry"


@dataclass(frozen=True, slots=True)
class Row:
    """One inquiry's cells, as text, and the line of the file it starts on."""

    line: int
    cells: dict[str, str]


@dataclass(frozen=True, slots=True)
class Problem:
    """Why a line (0: the whole file) was not turned into an inquiry."""

    line: int
    reason: str


@dataclass(slots=True)
class RawBatch:
    """What a file holds: its rows, and the problems found while reading it."""

    rows: list[Row] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    columns: tuple[str, ...] = ()


def parse_batch(content: bytes, fmt: Format) -> RawBatch:
    """Read a whole batch file; never raises for bad content (problems say what is wrong)."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = content[: exc.start].count(b"\n") + 1
        return RawBatch(problems=[Problem(line, "not UTF-8 text")])
    return _parse_csv(text) if fmt == "csv" else _parse_xml(content)


def _parse_csv(text: str) -> RawBatch:
    batch = RawBatch()
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        if not header or not any(cell.strip() for cell in header):
            batch.problems.append(Problem(1, "no header line naming the columns"))
            return batch
        batch.columns = tuple(cell.strip() for cell in header)
        _check_header(batch)
        if batch.problems:
            return batch
        end = reader.line_num
        for cells in reader:
            start, end = end + 1, reader.line_num
            if cells:
                _add_csv_row(batch, start, cells)
    except csv.Error as exc:
        batch.problems.append(Problem(reader.line_num, f"unreadable CSV: {exc}"))
    return batch


def _check_header(batch: RawBatch) -> None:
    seen: set[str] = set()
    for name in batch.columns:
        if not name:
            batch.problems.append(Problem(1, "a column has no name"))
        elif name in seen:
            batch.problems.append(Problem(1, f"column {name!r} appears twice"))
        seen.add(name)


def _add_csv_row(batch: RawBatch, line: int, cells: list[str]) -> None:
    if len(cells) != len(batch.columns):
        reason = f"{len(cells)} cells, but the header names {len(batch.columns)} columns"
        batch.problems.append(Problem(line, reason))
        return
    batch.rows.append(Row(line, dict(zip(batch.columns, cells, strict=True))))


class _XmlRows:
    """expat handlers collecting ``<inquiry>`` elements as rows."""

    def __init__(self, parser: expat.XMLParserType) -> None:
        self.parser = parser
        self.batch = RawBatch()
        self.depth = 0
        self.row: Row | None = None
        self.cell: str | None = None
        self.text: list[str] = []

    def start(self, name: str, attrs: dict[str, str]) -> None:
        self.depth += 1
        line = self.parser.CurrentLineNumber
        if self.depth == 1:
            if name != ROOT:
                raise _RefusedError(line, f"the root element must be <{ROOT}>, not <{name}>")
        elif self.depth == 2:
            if name != ITEM:
                raise _RefusedError(line, f"<{ROOT}> may hold only <{ITEM}> elements, not <{name}>")
            self.row = Row(line, dict(attrs))
        elif self.depth == 3:
            self.cell, self.text = name, []
            if attrs:
                self._row_problem(f"<{name}> has attributes; a cell is text only")
        else:
            self._row_problem(f"<{self.cell}> holds elements; a cell is text (JSON for records)")

    def end(self, name: str) -> None:
        if self.depth == 3 and self.row is not None and self.cell is not None:
            if self.cell in self.row.cells:
                self._row_problem(f"<{self.cell}> given twice")
            else:
                self.row.cells[self.cell] = "".join(self.text)
            self.cell = None
        elif self.depth == 2 and self.row is not None:
            self.batch.rows.append(self.row)
            self.row = None
        self.depth -= 1

    def chars(self, data: str) -> None:
        if self.depth == 3:
            self.text.append(data)

    def doctype(self, *_args: object) -> None:
        raise _RefusedError(self.parser.CurrentLineNumber, "a DOCTYPE is not allowed")

    def _row_problem(self, reason: str) -> None:
        """Report the row and drop it (its other cells are not worth reading)."""
        if self.row is not None:
            self.batch.problems.append(Problem(self.row.line, reason))
            self.row = None


class _RefusedError(Exception):
    def __init__(self, line: int, reason: str) -> None:
        super().__init__(reason)
        self.problem = Problem(line, reason)


def _parse_xml(content: bytes) -> RawBatch:
    parser = expat.ParserCreate(encoding="utf-8")
    rows = _XmlRows(parser)
    parser.StartElementHandler = rows.start
    parser.EndElementHandler = rows.end
    parser.CharacterDataHandler = rows.chars
    parser.StartDoctypeDeclHandler = rows.doctype
    parser.EntityDeclHandler = rows.doctype
    try:
        parser.Parse(content, True)
    except _RefusedError as exc:
        return RawBatch(problems=[exc.problem])
    except expat.ExpatError as exc:
        reason = f"not well-formed XML: {expat.ErrorString(exc.code)}"
        return RawBatch(problems=[Problem(exc.lineno, reason)])
    return rows.batch
