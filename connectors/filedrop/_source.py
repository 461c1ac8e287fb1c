"""The ``filedrop`` source: rows of batch files become inquiries; results appear beside them.

A batch file is taken once it has settled (see :func:`~connectors.filedrop._files.candidates`),
read whole and hashed. Each row's inquiry id is ``stable_inquiry_id(name, "<sha256>:<line>")``,
so a restart mid-file resends the same inquiries (duplicates to the bus, whose outcomes the
durable reply reader still holds) and never new ones. Outcomes are appended to the batch's
journal before they are acknowledged; when every inquiry of the file has one, the result file
and then the ``.done`` marker are written (temporary name, then rename) and the journal goes.
Rows that cannot be inquiries are listed in the ``.errors`` file when the file is taken.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import fnmatch
import hashlib
import json
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from connectors._sdk import RequesterSource, SourceEvent, stable_inquiry_id
from connectors.filedrop._config import BatchRule, FiledropConfig
from connectors.filedrop._files import Journal, candidates, outputs_of, write_atomically
from connectors.filedrop._parse import Problem, parse_batch
from connectors.filedrop._results import (
    Settled,
    done_marker,
    errors_csv,
    result_csv,
    result_xml,
)
from connectors.filedrop._rows import ReadRow, RowReader
from exchange._catalog_model import Catalog
from exchange._errors import ConnectorConfigError, RetriableError
from exchange._outcome import InquirySpec, Outcome

__all__ = ["FiledropSource"]

log = structlog.get_logger("exchange.connector.filedrop")


@dataclass
class _Batch:
    """One file being worked on: its inquiries without outcome, and those settled."""

    path: Path
    fmt: str
    rule: BatchRule
    sha256: str
    rows: int
    problems: list[Problem]
    journal: Journal
    pending: dict[uuid.UUID, ReadRow] = field(default_factory=dict)
    settled: dict[uuid.UUID, Settled] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class FiledropSource(RequesterSource[FiledropConfig]):
    """Reads batch files from the drop folder (see :mod:`connectors.filedrop`)."""

    config_class = FiledropConfig

    def __init__(self, config: FiledropConfig) -> None:
        super().__init__(config)
        self._catalog: Catalog | None = None
        self._readers: dict[str, RowReader] = {}
        self._batches: dict[Path, _Batch] = {}
        self._handed: set[uuid.UUID] = set()
        self._patterns = [rule.pattern for rule in config.batches]

    def bind(self, catalog: Catalog) -> None:
        """Read each rule's request schema: cells are read by its field types."""
        self._catalog = catalog
        problems = []
        for index, rule in enumerate(self.config.batches):
            definition = _schema(catalog, rule.service, "request")
            if definition is None:
                problems.append(f"batches[{index}].service: {rule.service} not in the catalog")
            else:
                self._readers[rule.pattern] = RowReader(rule, definition)
        if problems:
            raise ConnectorConfigError(
                f"{self.config.name}: {'; '.join(problems)}", problems=problems
            )

    async def check(self) -> None:
        """The drop folder is there and writable (a network share may be away)."""
        folder = self.config.folder
        if not folder.is_dir() or not os.access(folder, os.R_OK | os.W_OK | os.X_OK):
            raise RetriableError(f"the drop folder {folder} is not there or not writable")

    # --- the two calls ------------------------------------------------------------------------

    async def poll(self, limit: int) -> Sequence[SourceEvent]:
        """Take new files, then offer up to ``limit`` inquiries not in flight, file by file."""
        await self.check()
        for batch in [b for b in self._batches.values() if not b.pending]:
            async with batch.lock:  # its results could not be written before: try again
                if batch.path in self._batches:
                    await self._try_finish(batch)
        for path in await asyncio.to_thread(self._new_files):
            try:
                batch = await asyncio.to_thread(self._load, path)
            except OSError as exc:  # moved away meanwhile, or unreadable: the next poll looks
                log.warning("batch file not taken", file=path.name, error=str(exc))
                continue
            self._batches[path] = batch
            if not batch.pending:
                await self._try_finish(batch)
        events: list[SourceEvent] = []
        now = dt.datetime.now(dt.UTC)
        for batch in self._batches.values():
            for inquiry_id, row in batch.pending.items():
                if len(events) >= limit:
                    break
                if inquiry_id not in self._handed:
                    events.append(SourceEvent(_sendable(row, batch.rule, now), ref=batch.path))
        self._handed.update(event.inquiry_id for event in events)
        return events

    async def deliver(self, event: SourceEvent, outcome: Outcome) -> None:
        """Journal the outcome (on disk first); the file's last one writes its results."""
        batch = self._batches.get(event.ref)
        if batch is None:  # finished already: a repeated delivery
            return
        async with batch.lock:
            row = batch.pending.get(event.inquiry_id)
            if row is None:
                return
            entry = _settled(row, outcome)
            try:
                await asyncio.to_thread(batch.journal.append, entry.to_json())
            except OSError as exc:
                raise RetriableError(f"cannot write the journal of {batch.path.name}") from exc
            batch.settled[event.inquiry_id] = entry
            del batch.pending[event.inquiry_id]
            self._handed.discard(event.inquiry_id)
            if not batch.pending:
                await self._try_finish(batch)

    async def _try_finish(self, batch: _Batch) -> None:
        """Write the batch's results and marker; a batch whose results cannot be written
        (the share failed after its last outcome was journalled) stays, and the next poll
        tries again: RetriableError, never an exception that would lose the batch."""
        try:
            await asyncio.to_thread(self._finish, batch)
        except OSError as exc:
            raise RetriableError(
                f"cannot write the results of {batch.path.name}: {exc.strerror}"
            ) from exc
        self._batches.pop(batch.path, None)

    # --- files --------------------------------------------------------------------------------

    def _new_files(self) -> list[Path]:
        try:
            found = candidates(self.config.folder, self._patterns, self.config.settle_seconds)
            return [path for path in found if path not in self._batches]
        except OSError as exc:
            raise RetriableError(f"cannot list the drop folder: {exc.strerror}") from exc

    def _load(self, path: Path) -> _Batch:
        """Read, hash and parse a file; write its ``.errors``; recall its journal."""
        rule = next(r for r in self.config.batches if fnmatch.fnmatchcase(path.name, r.pattern))
        fmt = rule.format or path.suffix.lower().lstrip(".")
        content = path.read_bytes() if path.stat().st_size <= self.config.max_file_bytes else b""
        sha256 = hashlib.sha256(content).hexdigest()
        batch = _Batch(path, fmt, rule, sha256, 0, [], Journal(path, sha256))
        if not content:
            batch.problems.append(Problem(0, "empty, or larger than max_file_bytes"))
        elif fmt not in ("csv", "xml"):
            batch.problems.append(Problem(0, f"unknown format {fmt!r} (csv or xml)"))
        else:
            self._read_rows(batch, content)
        done = {uuid.UUID(e["inquiry_id"]): Settled.from_json(e) for e in batch.journal.read()}
        batch.settled = {key: value for key, value in done.items() if key in batch.pending}
        for key in batch.settled:
            del batch.pending[key]
        if batch.problems:
            write_atomically(outputs_of(path, fmt)[1], errors_csv(batch.problems))
        log.info(
            "batch file taken",
            file=path.name,
            inquiries=len(batch.pending) + len(batch.settled),
            settled=len(batch.settled),
            errors=len(batch.problems),
        )
        return batch

    def _read_rows(self, batch: _Batch, content: bytes) -> None:
        raw = parse_batch(content, "csv" if batch.fmt == "csv" else "xml")
        batch.problems.extend(raw.problems)
        batch.rows = sum(1 for p in raw.problems if p.line > 1)  # bad rows count as rows
        reader = self._readers[batch.rule.pattern]
        if batch.fmt == "csv" and raw.columns:
            header = reader.header_problems(raw.columns)
            if header:
                batch.problems.extend(header)
                batch.rows += len(raw.rows)
                return
        for row in raw.rows:
            batch.rows += 1
            if batch.fmt == "xml":
                problems = reader.header_problems(tuple(row.cells), row.line)
                if problems:
                    batch.problems.append(Problem(row.line, "; ".join(p.reason for p in problems)))
                    continue
            inquiry_id = stable_inquiry_id(self.config.name, f"{batch.sha256}:{row.line}")
            read = reader.read(row, inquiry_id)
            if isinstance(read, Problem):
                batch.problems.append(read)
            else:
                batch.pending[inquiry_id] = read

    def _finish(self, batch: _Batch) -> None:
        """Every inquiry has its outcome: result file, then the done marker, then no journal."""
        result, _errors, done = outputs_of(batch.path, batch.fmt)
        entries = list(batch.settled.values())
        if batch.fmt == "xml":
            write_atomically(result, result_xml(entries, batch.path.name))
        else:
            fields = self._response_fields(batch.rule.service)
            write_atomically(result, result_csv(entries, fields))
        marker = done_marker(
            source=batch.path.name,
            sha256=batch.sha256,
            rows=batch.rows,
            errors=len(batch.problems),
            entries=entries,
        )
        write_atomically(done, marker)
        batch.journal.remove()
        log.info("batch file done", file=batch.path.name, inquiries=len(entries))

    def _response_fields(self, service: str) -> list[str]:
        definition = _schema(self._catalog, service, "response") if self._catalog else None
        return [f["name"] for f in definition["fields"]] if definition else []


def _sendable(row: ReadRow, rule: BatchRule, now: dt.datetime) -> InquirySpec:
    """The row's spec, with the rule's relative deadline counted from now."""
    if rule.deadline is None:
        return row.spec
    return dataclasses.replace(row.spec, deadline=now + dt.timedelta(seconds=rule.deadline))


def _settled(row: ReadRow, outcome: Outcome) -> Settled:
    return Settled(
        line=row.line,
        inquiry_id=outcome.inquiry_id,
        case_reference=row.spec.case_reference,
        kind=outcome.kind.value,
        status=outcome.status,
        reason=outcome.reject_reason or outcome.error_code,
        detail=outcome.error_message or outcome.detail,
        payload=outcome.payload,
    )


def _schema(catalog: Catalog, service_id: str, role: str) -> dict[str, Any] | None:
    service = catalog.service(service_id)
    if service is None:
        return None
    revision = service.latest_request if role == "request" else service.latest_response
    if revision is None:
        return None
    loaded: dict[str, Any] = json.loads(revision.path.read_text(encoding="utf-8"))
    return loaded
