"""The audit trail's hash chains without Kafka: sealing, verifying, tamper detection."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from exchange._audit_chain import (
    GENESIS,
    ChainLink,
    TrailRecord,
    canonical_bytes,
    chain_id,
    seal,
    verify_chain,
    verify_trail,
)

ROOT = Path(__file__).resolve().parents[2]


def _chain(count: int, *, start: bytes = GENESIS, first_offset: int = 0) -> list[ChainLink]:
    """``count`` sealed records; the unsealed body ends with the null hash like Avro's."""
    links, prev = [], start
    for n in range(count):
        unsealed = b"\xc3\x01" + bytes(8) + f"record {n}".encode() + b"\x02\x40" + prev + b"\x00"
        value, digest = seal(prev, unsealed)
        links.append(ChainLink(first_offset + n, prev, value))
        prev = digest
    return links


def _sealed(value: bytes) -> tuple[bytes, bytes]:
    sealed = canonical_bytes(value)
    assert sealed is not None
    return sealed


def _kinds(links: list[ChainLink]) -> list[tuple[int, str]]:
    problems, _head = verify_chain(links)
    return [(p.offset, p.kind) for p in problems]


def test_the_hash_covers_the_link_and_the_value_with_a_null_hash() -> None:
    """hash = SHA-256(prev_hash || value with hash null); the sealed value ends 02 40 <hash>."""
    prev = bytes(range(32))
    unsealed = b"\xc3\x01" + bytes(8) + b"body\x00"
    value, digest = seal(prev, unsealed)
    assert digest == hashlib.sha256(prev + unsealed).digest()
    assert value == unsealed[:-1] + b"\x02\x40" + digest
    assert canonical_bytes(value) == (unsealed, digest)


def test_an_intact_chain_verifies_and_reports_its_head() -> None:
    """No problem in an untouched chain; its head is the last record's hash."""
    links = _chain(5)
    problems, head = verify_chain(links)
    assert problems == []
    assert head == _sealed(links[-1].value)[1]


def test_a_modified_record_is_found_at_its_offset() -> None:
    """Changing one byte of a record's content breaks its own hash, and only that."""
    links = _chain(5)
    value = bytearray(links[2].value)
    value[12] ^= 1
    links[2] = ChainLink(2, links[2].prev_hash, bytes(value))
    assert _kinds(links) == [(2, "changed")]


def test_a_modified_record_with_a_recomputed_hash_breaks_the_next_link() -> None:
    """Resealing a changed record moves the break to the record after it."""
    links = _chain(5)
    unsealed, _ = _sealed(links[2].value)
    forged, _ = seal(links[2].prev_hash or GENESIS, unsealed.replace(b"record 2", b"record X"))
    links[2] = ChainLink(2, links[2].prev_hash, forged)
    assert _kinds(links) == [(3, "broken-link")]


def test_a_dropped_record_breaks_the_link_after_it() -> None:
    """Removing a record from the middle is found at the next record's offset."""
    links = _chain(5)
    del links[2]
    assert _kinds(links) == [(3, "broken-link")]


def test_reordered_records_break_the_chain() -> None:
    """Swapping two records is found where the order goes wrong."""
    links = _chain(5)
    links[1], links[2] = links[2], links[1]
    assert _kinds(links)[0] == (2, "broken-link")


def test_an_inserted_well_formed_record_is_found_by_the_fork_it_makes() -> None:
    """A forged record linked to the real head: the real next record names what it follows."""
    links = _chain(4)
    head = _sealed(links[1].value)[1]
    forged = _chain(1, start=head, first_offset=99)[0]
    tampered = [*links[:2], forged, *links[2:]]
    problems, _head = verify_chain(tampered)
    assert [(p.offset, p.kind) for p in problems] == [(2, "broken-link")]
    assert "follows offset 1" in problems[0].detail


def test_a_record_without_a_hash_is_unsealed() -> None:
    """A record written with a null hash (chaining off, or forged) is a problem."""
    links = _chain(3)
    links.append(ChainLink(3, None, b"\xc3\x01" + bytes(8) + b"x\x00"))
    assert _kinds(links) == [(3, "unsealed")]


def test_a_chain_restarted_at_the_genesis_is_reported() -> None:
    """A second genesis record in one chain (lost state, or forged) breaks it."""
    links = [*_chain(2), *_chain(1, first_offset=2)]
    problems, _head = verify_chain(links)
    assert [(p.offset, p.kind) for p in problems] == [(2, "broken-link")]
    assert "genesis" in problems[0].detail


def test_a_truncated_partition_accepts_its_first_link() -> None:
    """Retention deleted the chain's start: the first visible record anchors the check."""
    assert verify_chain(_chain(4)[2:], start=None)[0] == []
    assert [p.kind for p in verify_chain(_chain(4)[2:])[0]] == ["broken-link"]


def test_chains_are_verified_per_partition_and_input_partition() -> None:
    """Interleaved chains in one audit partition verify independently; a headerless record
    is reported on its own."""
    a, b = _chain(3), _chain(3, first_offset=10)
    records = [
        *(TrailRecord(0, 0, link) for link in a),
        *(TrailRecord(0, 2, link) for link in b),
        TrailRecord(0, None, ChainLink(20, None, b"x")),
    ]
    reports = verify_trail(records)
    assert [(r.partition, r.chain, r.records) for r in reports] == [
        (0, None, 1),
        (0, 0, 3),
        (0, 2, 3),
    ]
    assert [r.problems == () for r in reports] == [False, True, True]
    head = reports[1].head
    assert head is not None
    assert json.loads(json.dumps(reports[1].to_json()))["head"] == head.hex()


def test_the_chain_header_names_the_input_partition() -> None:
    """exchange-audit-chain holds the input partition in ASCII decimal."""
    assert chain_id([("exchange-type", b"audit"), ("exchange-audit-chain", b"7")]) == 7
    assert chain_id([("exchange-audit-chain", b"x")]) is None
    assert chain_id([]) is None


def test_hash_stays_the_last_field_of_the_audit_record() -> None:
    """The canonical bytes rely on `hash` being the record's last field, after prev_hash."""
    schema = json.loads((ROOT / "schemas" / "envelope" / "AuditRecord.avsc").read_text())
    assert [f["name"] for f in schema["fields"]][-2:] == ["prev_hash", "hash"]


def test_seal_refuses_a_value_with_a_hash_already() -> None:
    """Only a value ending in the null hash can be sealed."""
    with pytest.raises(ValueError, match="null hash"):
        seal(GENESIS, b"\xc3\x01" + bytes(8) + b"\x02")


def test_a_chain_moved_to_another_audit_partition_goes_on_from_its_old_head() -> None:
    """After the audit topic grew, a chain's records continue in a new partition: no break."""
    links = _chain(5)
    moved = [TrailRecord(0, 1, link) for link in links[:3]]
    moved += [TrailRecord(1, 1, link) for link in links[3:]]
    assert [r.problems for r in verify_trail(moved)] == [(), ()]
    cut = [TrailRecord(0, 1, link) for link in links[:2]] + [TrailRecord(1, 1, links[3])]
    assert [p.kind for r in verify_trail(cut) for p in r.problems] == ["broken-link"]
