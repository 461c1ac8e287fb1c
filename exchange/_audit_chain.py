"""The hash chains that make the audit trail tamper-evident: sealing and verifying, no I/O.

Chains
    The stream worker owning input partition *p* writes its audit records to audit partition
    ``p mod A`` (*A* audit partitions), so one audit partition can hold the records of several
    input partitions, each written by its own transactional producer. Those producers never see
    each other's records, so the chain is per **input partition**: every audit record carries a
    header ``exchange-audit-chain`` = *p* in ASCII decimal, and the records of one chain, in
    offset order within their audit partition, are linked by hash.

Hash of one record
    ``hash = SHA-256(prev_hash || canonical)`` where ``prev_hash`` is the previous record's
    ``hash`` in the same chain (32 zero bytes, :data:`GENESIS`, for the first) and is also
    written in the record's ``prev_hash`` field; ``canonical`` is the record's Kafka value
    (Avro single-object encoding: ``C3 01``, the 8-byte fingerprint of the writer schema, the
    Avro binary body) **with the ``hash`` field null**. ``hash`` is the last field of
    ``AuditRecord`` (a schema revision must keep it last), so the null union branch is the
    value's final byte ``00``; the sealed record ends instead with ``02 40`` (union branch 1,
    byte length 32, zig-zag varints) and the 32 digest bytes. Canonical bytes are therefore
    recovered from a sealed value by replacing its last 34 bytes with ``00``: no decoding, and
    one SHA-256 per record on both sides.

What is detected
    A changed record (its content no longer hashes to its ``hash``), a removed, inserted or
    reordered record (the next record's ``prev_hash`` is not its predecessor's ``hash``), a
    record without a chain. Not detected by the chain alone: records cut off the end of a chain,
    or a whole tail rewritten by someone holding write access; compare the heads
    (:attr:`ChainReport.heads`) with a copy kept elsewhere for that.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Final

__all__ = [
    "CHAIN_HEADER",
    "GENESIS",
    "HASH_SIZE",
    "ChainLink",
    "ChainReport",
    "Problem",
    "TrailRecord",
    "canonical_bytes",
    "chain_id",
    "seal",
    "verify_chain",
    "verify_trail",
]

#: Kafka header naming the chain (the input partition number, ASCII decimal).
CHAIN_HEADER: Final = "exchange-audit-chain"
HASH_SIZE: Final = 32
#: The ``prev_hash`` of a chain's first record.
GENESIS: Final = bytes(HASH_SIZE)
_NULL: Final = b"\x00"
# Union branch 1 (bytes) then the length 32, both zig-zag varints.
_SEALED_PREFIX: Final = b"\x02\x40"
_SEALED_TAIL: Final = len(_SEALED_PREFIX) + HASH_SIZE


def seal(prev_hash: bytes, unsealed: bytes) -> tuple[bytes, bytes]:
    """The sealed value and its hash, for a value written with ``prev_hash`` and hash null."""
    if len(prev_hash) != HASH_SIZE or not unsealed.endswith(_NULL):
        raise ValueError("an unsealed audit record ends with a null hash, after a 32-byte link")
    digest = hashlib.sha256(prev_hash + unsealed).digest()
    return unsealed[:-1] + _SEALED_PREFIX + digest, digest


def canonical_bytes(value: bytes) -> tuple[bytes, bytes] | None:
    """``(canonical, hash)`` of a sealed value; None if the value carries no hash."""
    if len(value) <= _SEALED_TAIL or value[-_SEALED_TAIL:-HASH_SIZE] != _SEALED_PREFIX:
        return None
    return value[:-_SEALED_TAIL] + _NULL, value[-HASH_SIZE:]


def chain_id(headers: Iterable[tuple[str, bytes]]) -> int | None:
    """The chain a record belongs to, from its headers; None if it names none."""
    for key, raw in headers:
        if key == CHAIN_HEADER:
            text = raw.decode("ascii", errors="replace")
            return int(text) if text.isdigit() else None
    return None


@dataclass(frozen=True, slots=True)
class ChainLink:
    """One record of a chain as the verifier needs it: where, its link, its value."""

    offset: int
    prev_hash: bytes | None  # the record's own prev_hash field (None: absent or undecodable)
    value: bytes


@dataclass(frozen=True, slots=True)
class Problem:
    """A break in a chain, at the record at ``offset`` of its audit partition."""

    offset: int
    kind: str  # "unsealed", "changed" or "broken-link"
    detail: str


def verify_chain(
    records: Iterable[ChainLink], *, start: bytes | None = GENESIS
) -> tuple[list[Problem], bytes | None]:
    """Check one chain's records in offset order; return its problems and its head hash.

    ``start`` is the ``prev_hash`` the first record must carry (:data:`GENESIS`); None accepts
    the first record's own link, for a partition whose start retention has deleted.
    """
    problems: list[Problem] = []
    expected, seen = start, {GENESIS: -1}
    for link in records:
        sealed = canonical_bytes(link.value)
        if sealed is None or link.prev_hash is None:
            problems.append(Problem(link.offset, "unsealed", "the record carries no hash"))
            continue
        canonical, stored = sealed
        if hashlib.sha256(link.prev_hash + canonical).digest() != stored:
            problems.append(Problem(link.offset, "changed", "its content does not match its hash"))
        elif expected is not None and link.prev_hash != expected:
            problems.append(Problem(link.offset, "broken-link", _link_detail(link, seen)))
        expected = stored
        seen.setdefault(stored, link.offset)
    return problems, expected


def _link_detail(link: ChainLink, seen: dict[bytes, int]) -> str:
    earlier = seen.get(link.prev_hash or b"")
    if earlier == -1:
        return "it starts the chain again (its previous record is the genesis)"
    if earlier is not None:
        return f"it follows offset {earlier}: a record after that one was inserted, or reordered"
    return "its previous record is missing (removed) or it was inserted"


@dataclass(frozen=True, slots=True)
class TrailRecord:
    """One record of the audit topic: its partition, chain (None: no header) and link."""

    partition: int
    chain: int | None
    link: ChainLink


@dataclass(frozen=True, slots=True)
class ChainReport:
    """The verdict on one chain (``chain`` None: the partition's records naming no chain)."""

    partition: int
    chain: int | None
    records: int
    head: bytes | None
    problems: tuple[Problem, ...]

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict (hashes in hex)."""
        return {
            "partition": self.partition,
            "chain": self.chain,
            "records": self.records,
            "head": None if self.head is None else self.head.hex(),
            "problems": [
                {"offset": p.offset, "kind": p.kind, "detail": p.detail} for p in self.problems
            ],
        }


def verify_trail(
    records: Iterable[TrailRecord], *, truncated: Collection[int] = ()
) -> list[ChainReport]:
    """Verify every chain of the trail; ``truncated`` names the partitions whose start was
    deleted by retention (their chains may begin past the genesis)."""
    chains: dict[tuple[int, int | None], list[ChainLink]] = {}
    for record in records:
        chains.setdefault((record.partition, record.chain), []).append(record.link)
    reports: list[ChainReport] = []
    ends = _segment_ends(chains)
    for (partition, chain), links in sorted(chains.items(), key=lambda kv: _order(kv[0])):
        if chain is None:
            loose = [
                Problem(link.offset, "unchained", f"no {CHAIN_HEADER} header") for link in links
            ]
            reports.append(ChainReport(partition, None, len(links), None, tuple(loose)))
            continue
        start: bytes | None = None if partition in truncated else GENESIS
        if links[0].prev_hash in ends.get(chain, {}).get(partition, ()):
            start = links[0].prev_hash  # the chain moved here when partitions were added
        problems, head = verify_chain(links, start=start)
        reports.append(ChainReport(partition, chain, len(links), head, tuple(problems)))
    return reports


def _segment_ends(
    chains: dict[tuple[int, int | None], list[ChainLink]],
) -> dict[int, dict[int, set[bytes]]]:
    """Per chain and audit partition, the last hashes of the chain's segments in the *other*
    partitions: growing the audit topic moves a chain to another partition, where it goes on
    from the head it had in the old one."""
    last: dict[int, dict[int, bytes]] = {}
    for (partition, chain), links in chains.items():
        sealed = canonical_bytes(links[-1].value)
        if chain is not None and sealed is not None:
            last.setdefault(chain, {})[partition] = sealed[1]
    return {
        chain: {p: {h for q, h in heads.items() if q != p} for p in heads}
        for chain, heads in last.items()
    }


def _order(key: tuple[int, int | None]) -> tuple[int, int]:
    return key[0], -1 if key[1] is None else key[1]
