"""The drop folder's files: which to take, atomic writes, and each batch's journal.

Names, for an input ``batch.csv``::

    batch.csv                 the batch (never changed by the connector)
    .batch.csv.journal        outcomes received so far, one JSON line each (while in progress)
    batch.csv.errors          rows not sent, with line and reason (only if there are any)
    batch.csv.result.csv      every inquiry's outcome (when all have one)
    batch.csv.done            the completion marker, written last

Every file is written to a temporary dot-name, flushed to disk and renamed into place, so a
reader never sees a half-written one. Journal lines are flushed to disk before an outcome is
acknowledged (its Kafka offset committed), so a crash never loses an outcome the bus sent.
"""

from __future__ import annotations

import fnmatch
import json
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "DONE",
    "ERRORS",
    "Journal",
    "candidates",
    "outputs_of",
    "write_atomically",
]

DONE = ".done"
ERRORS = ".errors"
_RESULT = ".result."
_NEVER = (".tmp", ".part", DONE, ERRORS, ".journal")


def outputs_of(path: Path, fmt: str) -> tuple[Path, Path, Path]:
    """The result, errors and done files of a batch file."""
    return (
        path.with_name(f"{path.name}{_RESULT}{fmt}"),
        path.with_name(f"{path.name}{ERRORS}"),
        path.with_name(f"{path.name}{DONE}"),
    )


def journal_of(path: Path) -> Path:
    """The journal of a batch file (a dot-file: never taken as a batch)."""
    return path.with_name(f".{path.name}.journal")


def candidates(folder: Path, patterns: Sequence[str], settle: float) -> Iterator[Path]:
    """Batch files to take, oldest first: matching a pattern, not done, unchanged for
    ``settle`` seconds, not a dot-file, temporary file or an output of the connector."""
    entries = []
    with os.scandir(folder) as listing:
        for entry in listing:
            if _is_batch_name(entry.name, patterns) and entry.is_file():
                entries.append((entry.stat().st_mtime, entry.name))
    now = time.time()
    for mtime, name in sorted(entries):
        if now - mtime >= settle and not (folder / f"{name}{DONE}").exists():
            yield folder / name


def _is_batch_name(name: str, patterns: Sequence[str]) -> bool:
    if name.startswith(".") or name.endswith(_NEVER) or _RESULT in name:
        return False
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary name beside ``path``, flush it to disk, rename."""
    temporary = path.with_name(f".{path.name}.tmp")
    with temporary.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    temporary.replace(path)
    _sync_folder(path.parent)


def _sync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX: fsync the directory)."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class Journal:
    """The outcomes received for one batch file, appended as JSON lines and flushed."""

    def __init__(self, path: Path, sha256: str) -> None:
        self.path = journal_of(path)
        self.sha256 = sha256

    def read(self) -> list[dict[str, Any]]:
        """The entries written so far for this file content; a journal of another content
        (the file was replaced under the same name) is started over."""
        if not self.path.exists():
            return []
        data = self.path.read_bytes()
        if not data.endswith(b"\n"):  # a line cut short by a crash: never acknowledged
            data = data[: data.rfind(b"\n") + 1]
            with self.path.open("r+b") as handle:
                handle.truncate(len(data))
        lines = data.decode("utf-8").splitlines()
        if not lines or json.loads(lines[0]).get("sha256") != self.sha256:
            self.path.unlink()
            return []
        return [json.loads(line) for line in lines[1:]]

    def append(self, entry: dict[str, Any]) -> None:
        """Add one entry, on disk before this returns."""
        new = not self.path.exists()
        with self.path.open("a", encoding="utf-8") as handle:
            if new:
                handle.write(json.dumps({"sha256": self.sha256}) + "\n")
            handle.write(json.dumps(entry, ensure_ascii=False) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def remove(self) -> None:
        """The batch is done: its journal is no longer needed."""
        self.path.unlink(missing_ok=True)
