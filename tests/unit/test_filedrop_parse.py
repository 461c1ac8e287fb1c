"""Batch files → rows with their line numbers, and every problem on its line."""

from __future__ import annotations

from connectors.filedrop._parse import Problem, Row, parse_batch


def test_csv_rows_carry_the_line_they_start_on() -> None:
    """A quoted cell spanning lines and a blank line do not shift later line numbers."""
    content = b'id,name\n1,"two\nlines"\n\n3,plain\n'
    batch = parse_batch(content, "csv")
    assert batch.columns == ("id", "name")
    assert batch.rows == [
        Row(2, {"id": "1", "name": "two\nlines"}),
        Row(5, {"id": "3", "name": "plain"}),
    ]
    assert batch.problems == []


def test_csv_rows_with_the_wrong_cell_count_are_problems_on_their_line() -> None:
    """Too few or too many cells: reported with the line, the other rows still read."""
    batch = parse_batch(b"a,b\n1,2\n1\n1,2,3\n4,5\n", "csv")
    assert [row.line for row in batch.rows] == [2, 5]
    assert [p.line for p in batch.problems] == [3, 4]
    assert "1 cells, but the header names 2" in batch.problems[0].reason


def test_a_bom_and_crlf_are_accepted() -> None:
    """Files from spreadsheet programs: UTF-8 BOM and CRLF line ends."""
    batch = parse_batch("\ufeffid,name\r\n1,Zoë\r\n".encode(), "csv")
    assert batch.rows == [Row(2, {"id": "1", "name": "Zoë"})]


def test_a_bad_header_refuses_the_file() -> None:
    """An unnamed or repeated column is a problem of line 1 and no row is read."""
    batch = parse_batch(b"id,id,\n1,2,3\n", "csv")
    assert batch.rows == []
    assert {p.line for p in batch.problems} == {1}
    assert len(batch.problems) == 2


def test_text_that_is_not_utf8_names_its_line() -> None:
    """Latin-1 bytes on line 3: one problem, no guessing at the encoding."""
    batch = parse_batch(b"id\n1\n\xe9\n", "csv")
    assert batch.problems == [Problem(3, "not UTF-8 text")]


def test_xml_inquiries_with_attributes_and_elements() -> None:
    """Each <inquiry> is a row at the line of its tag; attributes and children are cells."""
    content = b"""<?xml version="1.0" encoding="UTF-8"?>
<inquiries>
  <inquiry case_reference="C-1">
    <national_id>0012345678</national_id>
    <birth_date>1990-03-21</birth_date>
  </inquiry>
  <inquiry><national_id>1</national_id><nested><x/></nested></inquiry>
  <inquiry><national_id>2</national_id></inquiry>
</inquiries>
"""
    batch = parse_batch(content, "xml")
    assert batch.rows == [
        Row(3, {"case_reference": "C-1", "national_id": "0012345678", "birth_date": "1990-03-21"}),
        Row(8, {"national_id": "2"}),
    ]
    assert [p.line for p in batch.problems] == [7]
    assert "holds elements" in batch.problems[0].reason


def test_xml_with_a_doctype_is_refused() -> None:
    """No DTD, so no entity expansion (billion laughs) and no external entities."""
    content = b'<?xml version="1.0"?>\n<!DOCTYPE x [<!ENTITY a "aaaa">]>\n<inquiries/>'
    batch = parse_batch(content, "xml")
    assert batch.rows == []
    assert batch.problems == [Problem(2, "a DOCTYPE is not allowed")]


def test_xml_that_is_not_well_formed_is_refused_whole() -> None:
    """A truncated file sends nothing; the problem names the line where parsing stopped."""
    batch = parse_batch(b"<inquiries>\n<inquiry><a>1</a></inquiry>\n<inquiry><a>", "xml")
    assert batch.rows == []
    assert batch.problems[0].line == 3
    assert batch.problems[0].reason.startswith("not well-formed XML")


def test_xml_with_another_root_is_refused() -> None:
    """The document must be <inquiries> of <inquiry> elements."""
    batch = parse_batch(b"<rows><row/></rows>", "xml")
    assert batch.problems == [Problem(1, "the root element must be <inquiries>, not <rows>")]
