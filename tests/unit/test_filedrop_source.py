"""The filedrop source in a real temporary folder, without the bus: what it sends, what it
writes beside each file, and how a restart mid-file finishes without new inquiries."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import time
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest

from connectors._config import parse_config
from connectors._sdk import SourceEvent
from connectors.filedrop import FiledropConfig, FiledropSource
from exchange._catalog import load_catalog
from exchange._errors import RetriableError
from exchange._outcome import Outcome, OutcomeKind

ROOT = Path(__file__).resolve().parents[2]
CATALOG = load_catalog(ROOT / "catalog" / "demo", ROOT / "schemas")
HEADER = "national_id,birth_date,first_name,last_name,case_reference\n"
GOOD = [
    "0012345678,1990-03-21,Sara,Ahmadi,C-1\n",
    "0012345679,1985-12-01,Ali,Rezaei,C-2\n",
]


def make_source(folder: Path, **extra: Any) -> FiledropSource:
    raw = {
        "kind": "filedrop",
        "name": "tax-batch",
        "agency": "TAX",
        "subsystem": "registration",
        "folder": str(folder),
        "settle_seconds": 0,
        "batches": [
            {
                "pattern": "verify-*",
                "service": "nocr.person.verify.v1",
                "purpose": "tax-registration",
                "subject": {"kind": "PERSON", "column": "national_id"},
            }
        ],
        **extra,
    }
    config = parse_config(raw, FiledropConfig)
    assert isinstance(config, FiledropConfig)
    source = FiledropSource(config)
    source.bind(CATALOG)
    return source


def answered(event: SourceEvent) -> Outcome:
    return Outcome(
        inquiry_id=event.inquiry_id,
        kind=OutcomeKind.ANSWERED,
        service="nocr.person.verify.v1",
        provider="NOCR",
        status="FOUND",
        payload={
            "national_id": event.spec.payload["national_id"],
            "alive": True,
            "verified_at": dt.datetime(2026, 1, 2, tzinfo=dt.UTC),
        },
    )


def read_csv(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))


async def test_rows_become_inquiries_and_bad_rows_go_to_the_errors_file(tmp_path: Path) -> None:
    """Good rows are sent with stable ids and typed payloads; each bad one is on its line."""
    (tmp_path / "verify-1.csv").write_text(
        HEADER + GOOD[0] + "0012345680,21/03/1990,Reza,Karimi,C-3\n" + GOOD[1] + "1,2\n"
    )
    source = make_source(tmp_path)
    events = await source.poll(10)
    assert [e.spec.case_reference for e in events] == ["C-1", "C-2"]
    assert events[0].spec.payload["birth_date"] == dt.date(1990, 3, 21)
    assert events[0].spec.subject == ("PERSON", "0012345678")
    assert events[0].spec.purpose == "tax-registration"
    assert await source.poll(10) == []  # in flight: not offered twice
    errors = read_csv(tmp_path / "verify-1.csv.errors")
    assert [e["line"] for e in errors] == ["3", "5"]
    assert "column 'birth_date': not an ISO 8601 date" in errors[0]["reason"]
    assert not (tmp_path / "verify-1.csv.done").exists()


async def test_the_result_file_and_marker_appear_when_all_have_outcomes(tmp_path: Path) -> None:
    """The result lists every inquiry by line with its outcome and response fields; the
    done marker counts them; no journal or temporary file is left."""
    (tmp_path / "verify-2.csv").write_text(HEADER + "".join(GOOD))
    source = make_source(tmp_path)
    events = await source.poll(10)
    await source.deliver(events[1], answered(events[1]))
    assert not (tmp_path / "verify-2.csv.result.csv").exists()
    await source.deliver(events[0], answered(events[0]))
    rows = read_csv(tmp_path / "verify-2.csv.result.csv")
    assert [(r["line"], r["case_reference"], r["kind"], r["status"]) for r in rows] == [
        ("2", "C-1", "ANSWERED", "FOUND"),
        ("3", "C-2", "ANSWERED", "FOUND"),
    ]
    assert rows[0]["inquiry_id"] == str(events[0].inquiry_id)
    assert (rows[0]["alive"], rows[0]["verified_at"]) == ("true", "2026-01-02T00:00:00+00:00")
    marker = json.loads((tmp_path / "verify-2.csv.done").read_text())
    assert (marker["inquiries"], marker["errors"], marker["outcomes"]) == (2, 0, {"ANSWERED": 2})
    assert sorted(os.listdir(tmp_path)) == [
        "verify-2.csv",
        "verify-2.csv.done",
        "verify-2.csv.result.csv",
    ]
    assert await source.poll(10) == []


async def test_a_restart_mid_file_resends_the_same_ids_and_finishes(tmp_path: Path) -> None:
    """After one of two outcomes was journalled, a new run offers only the other one, with
    the same id, and its outcome completes the file."""
    (tmp_path / "verify-3.csv").write_text(HEADER + "".join(GOOD))
    first = make_source(tmp_path)
    events = await first.poll(10)
    await first.deliver(events[0], answered(events[0]))

    second = make_source(tmp_path)
    again = await second.poll(10)
    assert [e.inquiry_id for e in again] == [events[1].inquiry_id]
    await second.deliver(again[0], answered(again[0]))
    assert len(read_csv(tmp_path / "verify-3.csv.result.csv")) == 2


async def test_ids_come_from_the_content_not_the_name(tmp_path: Path) -> None:
    """The same content under another name is the same inquiries (a re-drop is a duplicate)."""
    (tmp_path / "verify-a.csv").write_text(HEADER + GOOD[0])
    (tmp_path / "verify-b.csv").write_text(HEADER + GOOD[0])
    events = await make_source(tmp_path).poll(10)
    assert len(events) == 2
    assert events[0].inquiry_id == events[1].inquiry_id


async def test_a_file_with_a_wrong_header_is_refused_whole(tmp_path: Path) -> None:
    """An unknown column or a missing required one: nothing sent, errors and done written."""
    (tmp_path / "verify-4.csv").write_text("national_id,birthday\n1,2\n")
    source = make_source(tmp_path)
    assert await source.poll(10) == []
    reasons = [e["reason"] for e in read_csv(tmp_path / "verify-4.csv.errors")]
    assert "column 'birthday' is no request field" in reasons
    assert "no column 'first_name' for a required field" in reasons
    assert json.loads((tmp_path / "verify-4.csv.done").read_text())["inquiries"] == 0


async def test_xml_batches_get_xml_results(tmp_path: Path) -> None:
    """An XML batch: the result is XML, one <result> per inquiry with its payload."""
    (tmp_path / "verify-5.xml").write_text(
        """<inquiries>
  <inquiry case_reference="C-9">
    <national_id>0012345678</national_id><birth_date>1990-03-21</birth_date>
    <first_name>Sara</first_name><last_name>Ahmadi</last_name>
  </inquiry>
</inquiries>"""
    )
    source = make_source(tmp_path)
    [event] = await source.poll(10)
    await source.deliver(event, answered(event))
    root = ET.parse(tmp_path / "verify-5.xml.result.xml").getroot()
    [result] = root.findall("result")
    assert result.attrib["line"] == "2"
    assert result.attrib["kind"] == "ANSWERED"
    assert result.findtext("case_reference") == "C-9"
    assert result.findtext("payload/alive") == "true"


async def test_unsettled_temporary_and_own_files_are_not_taken(tmp_path: Path) -> None:
    """A file still being written (recent), a dot-file, a .part and our outputs are left."""
    (tmp_path / "verify-6.csv").write_text(HEADER + GOOD[0])
    (tmp_path / ".verify-7.csv").write_text(HEADER + GOOD[0])
    (tmp_path / "verify-8.csv.part").write_text(HEADER + GOOD[0])
    (tmp_path / "verify-9.csv.result.csv").write_text(HEADER + GOOD[0])
    assert await make_source(tmp_path, settle_seconds=60).poll(10) == []
    old = time.time() - 120
    os.utime(tmp_path / "verify-6.csv", (old, old))
    events = await make_source(tmp_path, settle_seconds=60).poll(10)
    assert [e.spec.case_reference for e in events] == ["C-1"]


async def test_a_missing_folder_is_the_legacy_system_down(tmp_path: Path) -> None:
    """An unmounted share: check() and poll() are retriable (the circuit opens)."""
    source = make_source(tmp_path / "gone")
    with pytest.raises(RetriableError):
        await source.check()
    with pytest.raises(RetriableError):
        await source.poll(10)


def test_rule_services_must_be_in_the_catalog(tmp_path: Path) -> None:
    """A rule naming an unknown service is a config error naming its field."""
    raw = {
        "kind": "filedrop",
        "name": "x",
        "agency": "TAX",
        "folder": str(tmp_path),
        "batches": [{"pattern": "*.csv", "service": "no.such.v1", "purpose": "p"}],
    }
    config = parse_config(raw, FiledropConfig)
    assert isinstance(config, FiledropConfig)
    with pytest.raises(Exception, match=r"batches\[0\]\.service"):
        FiledropSource(config).bind(CATALOG)


async def test_results_that_cannot_be_written_are_written_by_a_later_poll(tmp_path: Path) -> None:
    """The last outcome arrives but the result file cannot be written (the share fails):
    deliver raises RetriableError (the outcome is in the journal), and a later poll writes
    the result and the marker instead of leaving the batch unfinished until a restart."""
    (tmp_path / "verify-1.csv").write_text(HEADER + GOOD[0], encoding="utf-8")
    source = make_source(tmp_path)
    [event] = await source.poll(10)
    result = tmp_path / "verify-1.csv.result.csv"
    result.mkdir()  # its name taken by a folder: the rename into place fails
    with pytest.raises(RetriableError):
        await source.deliver(event, answered(event))
    with pytest.raises(RetriableError):  # still failing: the legacy side is down
        await source.poll(10)
    result.rmdir()
    assert await source.poll(10) == []
    assert [row["case_reference"] for row in read_csv(result)] == ["C-1"]
    assert (tmp_path / "verify-1.csv.done").exists()
