"""The filedrop connector passes the requester conformance kit in a real temporary folder:
CSV and XML batches, every kind of outcome in the result files, bad rows in ``.errors``, a
SIGKILL mid-file, the folder going away (an unmounted share) and coming back."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest

from connectors.testkit import (
    LegacyEvent,
    RequesterCase,
    RequesterHarness,
    Written,
    check_requester,
)
from exchange import ExchangeSettings

pytestmark = pytest.mark.integration

VERIFY = "nocr.person.verify.v1"
COLUMNS = ("national_id", "birth_date", "first_name", "last_name", "case_reference", "purpose")
GOOD = ("0012345678", "1990-03-21", "Sara", "Ahmadi")
SHORT, LONG = 3.0, 25.0
#: File name prefix per deadline: each has a batch rule with that deadline.
PREFIX = {SHORT: "short", LONG: "batch"}


class FiledropLegacy:
    """The legacy system's side of the folder: drops batches, reads results and errors."""

    def __init__(self, folder: Path, away: Path) -> None:
        self.folder = folder
        self.away = away
        self.files: dict[str, dict[int, str]] = {}  # batch name → line → key
        self._count = 0

    def emit(self, events: Sequence[LegacyEvent]) -> None:
        """One batch per deadline (the longest first: XML, so the kit's malformed events land
        in XML; the existing filedrop tests cover bad CSV rows), then CSV and XML in turn;
        each written, then renamed into place."""
        for deadline in sorted({event.deadline for event in events}, reverse=True):
            group = [event for event in events if event.deadline == deadline]
            self._count += 1
            fmt = "xml" if self._count % 2 == 1 else "csv"
            name = f"{PREFIX[deadline]}-{self._count}.{fmt}"
            content, lines = (_xml if fmt == "xml" else _csv)(group)
            part = self.folder / f"{name}.part"
            part.write_text(content, encoding="utf-8")
            part.rename(self.folder / name)
            self.files[name] = lines

    def outcomes(self) -> list[Written]:
        found: list[Written] = []
        for name, lines in self.files.items():
            errors = self.folder / f"{name}.errors"
            if errors.exists():
                for row in csv.DictReader(io.StringIO(errors.read_text(encoding="utf-8"))):
                    found.append(Written(lines[int(row["line"])], "ERROR", reason=row["reason"]))
            result = self.folder / f"{name}.result.{name.rsplit('.', 1)[1]}"
            if result.exists():
                found += _results(result)
        return found

    def break_(self) -> None:
        """The share is unmounted."""
        self.folder.rename(self.away)

    def heal(self) -> None:
        self.away.rename(self.folder)


def _cells(event: LegacyEvent, index: int) -> dict[str, str]:
    cells = dict(zip(COLUMNS, (*GOOD, event.key, event.purpose), strict=True))
    if event.malformed and index % 2 == 0:
        cells["birth_date"] = "21/03/1990"  # not a date the schema reads
    return cells


def _csv(events: Sequence[LegacyEvent]) -> tuple[str, dict[int, str]]:
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    lines = {}
    for index, event in enumerate(events):
        cells = list(_cells(event, index).values())
        if event.malformed and index % 2 == 1:
            cells = cells[:3]  # a row cut short
        writer.writerow(cells)
        lines[index + 2] = event.key
    return out.getvalue(), lines


def _xml(events: Sequence[LegacyEvent]) -> tuple[str, dict[int, str]]:
    items, lines = [], {}
    for index, event in enumerate(events):
        cells = _cells(event, index)
        if event.malformed and index % 2 == 1:
            cells["shoe_size"] = "42"  # no such request field
        body = "".join(f"<{name}>{value}</{name}>" for name, value in cells.items())
        items.append(f"<inquiry>{body}</inquiry>")
        lines[index + 2] = event.key
    return "<inquiries>\n" + "\n".join(items) + "\n</inquiries>\n", lines


def _results(path: Path) -> list[Written]:
    if path.suffix == ".xml":
        root = ET.parse(path).getroot()
        return [
            Written(
                r.findtext("case_reference") or "",
                r.get("kind", ""),
                r.get("status") or None,
                r.get("reason") or None,
            )
            for r in root.findall("result")
        ]
    rows = csv.DictReader(io.StringIO(path.read_text(encoding="utf-8")))
    return [
        Written(r["case_reference"], r["kind"], r["status"] or None, r["reason"] or None)
        for r in rows
    ]


def filedrop_config(folder: Path) -> dict[str, Any]:
    rule = {"service": VERIFY, "purpose": "tax-registration"}
    return {
        "kind": "filedrop",
        "name": "tax-batch",
        "agency": "TAX",
        "subsystem": "registration",
        "folder": str(folder),
        "settle_seconds": 0.2,
        "poll_interval": 0.2,
        "retry": {"attempts": 3, "initial_backoff": 0.05, "max_backoff": 0.3, "jitter": 0.05},
        "circuit": {"failure_threshold": 2, "probe_interval": 0.3, "max_probe_interval": 1.0},
        "batches": [
            {**rule, "pattern": f"{prefix}-*", "deadline": deadline}
            for deadline, prefix in PREFIX.items()
        ],
    }


async def test_filedrop_passes_the_requester_conformance_kit(
    bus: ExchangeSettings, tmp_path: Path
) -> None:
    """Outcomes of every kind in the result files, bad rows in .errors, a SIGKILL mid-file
    and the folder going away survived with nothing lost and nothing sent twice."""
    folder = tmp_path / "drop"
    folder.mkdir()
    case = RequesterCase(
        config=filedrop_config(folder),
        legacy=FiledropLegacy(folder, tmp_path / "unmounted"),
        service=VERIFY,
        purpose="tax-registration",
        short_deadline=SHORT,
        long_deadline=LONG,
    )
    async with RequesterHarness(case, bus) as harness:
        figures = await check_requester(harness)
    print({name: round(value, 2) for name, value in figures.items()})
