"""Dead letters, pure: how they are built, listed, chosen for replay, replayed and previewed."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import pytest
from codec_samples import INQUIRY_ID, sample_store, samples

from exchange._codec import Codec
from exchange._dlq import (
    HEADER_DLQ_REPLAY_OF,
    HEADER_REPLAYED_FROM,
    MAX_MESSAGE,
    DeadLetterEntry,
    DlqListing,
    choose_for_replay,
    dead_letter_record,
    parse_entry_id,
    preview,
    replay_marker,
    replay_record,
)
from exchange._errors import FramingError, UnknownSchemaError
from exchange._models import DeadLetter
from exchange._topology import Topics
from exchange._wire import HEADER_DLQ_REASON, HEADER_TYPE, header_value

NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
TOPICS = Topics("bus")


@dataclass(frozen=True)
class Record:
    """A consumed record, as aiokafka's ConsumerRecord carries it."""

    topic: str = "bus.out.TAX"
    partition: int = 3
    offset: int = 41
    timestamp: int | None = 1_740_800_000_000
    key: bytes | None = b"3f1c9a52-7b4e-4d1a-9c2e-5a8b6d0e4f17"
    value: bytes | None = b"\x00garbage"
    headers: tuple[tuple[str, bytes], ...] = field(default=((HEADER_TYPE, b"request"),))


def letter_of(record: Record, *, dlq_partition: int = 0, dlq_offset: int = 0) -> Record:
    """``record`` dead-lettered and read back from the DLQ at the given place."""
    dead = dead_letter_record(record, FramingError("bad magic"), component="worker", now=NOW)
    return Record(
        "bus.dlq", dlq_partition, dlq_offset, int(NOW.timestamp() * 1000), *dead[:2],
        tuple(dead.headers),
    )  # fmt: skip


def test_dead_letter_keeps_key_value_and_headers_and_says_why() -> None:
    """Key and value are the original bytes; original headers stay; DLQ headers follow."""
    record = Record()
    dead = dead_letter_record(record, FramingError("bad magic"), component="worker", now=NOW)
    assert (dead.key, dead.value) == (record.key, record.value)
    assert dead.headers[0] == (HEADER_TYPE, b"request")
    letter = DeadLetter.from_headers(dead.headers, key=dead.key)
    assert letter == DeadLetter(
        reason="bad-framing",
        message="bad magic",
        source_topic="bus.out.TAX",
        source_partition=3,
        source_offset=41,
        source_timestamp=datetime.fromtimestamp(1_740_800_000, UTC),
        original_key=record.key,
        dead_lettered_at=NOW,
        component="worker",
    )


def test_reason_comes_from_the_codec_error_else_processing_error() -> None:
    """Codec errors give their own reason; any other exception is a processing-error."""
    codec = dead_letter_record(Record(), UnknownSchemaError("?"), component="c")
    other = dead_letter_record(Record(), KeyError("service"), component="c")
    forced = dead_letter_record(Record(), KeyError("x"), component="c", reason="policy-bug")
    reasons = [header_value(d.headers, HEADER_DLQ_REASON) for d in (codec, other, forced)]
    assert reasons == [b"unknown-schema", b"processing-error", b"policy-bug"]
    assert DeadLetter.from_headers(other.headers).message == "KeyError: 'service'"


def test_long_messages_are_cut() -> None:
    """The human message is cut to 500 characters."""
    dead = dead_letter_record(Record(), RuntimeError("x" * 5000), component="c")
    assert len(DeadLetter.from_headers(dead.headers).message) == MAX_MESSAGE


def test_dead_lettering_again_replaces_the_earlier_dlq_headers() -> None:
    """A replayed record that fails again carries one set of DLQ headers, the latest."""
    first = letter_of(Record())
    again = Record(headers=(*first.headers, (HEADER_REPLAYED_FROM, b"bus.dlq:0:0")))
    dead = dead_letter_record(again, RuntimeError("still"), component="worker")
    names = [name for name, _ in dead.headers]
    assert names.count(HEADER_DLQ_REASON) == 1
    assert header_value(dead.headers, HEADER_DLQ_REASON) == b"processing-error"
    assert (HEADER_REPLAYED_FROM, b"bus.dlq:0:0") in dead.headers


def test_record_without_key_or_timestamp_can_be_dead_lettered() -> None:
    """A null key and a missing timestamp are kept as absent."""
    dead = dead_letter_record(Record(key=None, timestamp=-1), RuntimeError(), component="c")
    letter = DeadLetter.from_headers(dead.headers, key=dead.key)
    assert (dead.key, letter.source_timestamp, letter.original_key) == (None, None, None)


def test_listing_marks_replayed_letters_and_filters_by_reason_and_id() -> None:
    """Replay markers flag their letters; reason and id filters choose; markers are not listed."""
    framing = letter_of(Record(), dlq_partition=0, dlq_offset=0)
    other = dead_letter_record(Record(offset=50), RuntimeError("x"), component="c", now=NOW)
    processing = Record("bus.dlq", 1, 0, 1, other.key, other.value, tuple(other.headers))
    marker_rec = replay_marker(_entry(framing), "bus.dlq", "bus.out.TAX")
    marker = Record("bus.dlq", 0, 1, 2, None, b"", tuple(marker_rec.headers))
    everything = DlqListing()
    for record in (framing, processing, marker):
        everything.add(record)
    assert [(e.id, e.reason, e.replayed) for e in everything.entries()] == [
        ("1:0", "processing-error", False),
        ("0:0", "bad-framing", True),
    ]
    by_reason, by_id = DlqListing(reason="bad-framing"), DlqListing(ids=[(1, 0)])
    for listing in (by_reason, by_id):
        for record in (framing, processing):
            listing.add(record)
    assert [e.id for e in by_reason.entries()] == ["0:0"]
    assert [e.id for e in by_id.entries()] == ["1:0"]


def test_listing_limit_keeps_the_newest() -> None:
    """With a limit only the newest letters (by DLQ timestamp) are kept, oldest first."""
    listing = DlqListing(limit=2)
    for offset, ts in enumerate([50, 10, 40, 30]):
        letter = letter_of(Record(offset=offset), dlq_offset=offset)
        listing.add(replace(letter, timestamp=ts))
    assert [e.offset for e in listing.entries()] == [2, 0]


def test_a_record_without_dlq_headers_is_listed_as_unknown() -> None:
    """Something else written to the DLQ is listed with reason '?', never replayable."""
    listing = DlqListing()
    listing.add(Record("bus.dlq", 0, 7, 1, b"k", b"v", ()))
    (entry,) = listing.entries()
    assert (entry.reason, entry.letter) == ("?", None)
    chosen, skipped = choose_for_replay([entry], [], TOPICS)
    assert chosen == []
    assert skipped == [("0:7", "its headers do not say where it came from")]


def _entry(record: Record, *, replayed: bool = False) -> DeadLetterEntry:
    listing = DlqListing()
    listing.add(record)
    (entry,) = listing.entries()
    return replace(entry, replayed=replayed)


def test_replay_record_is_the_original_with_a_replay_header() -> None:
    """Back to the source topic: same key and value bytes, original headers, replayed-from."""
    original = Record()
    replay = replay_record(_entry(letter_of(original, dlq_partition=2, dlq_offset=9)), "bus.dlq")
    assert (replay.topic, replay.key, replay.value) == ("bus.out.TAX", original.key, original.value)
    assert replay.partition is None  # the key decides, as for the original
    assert replay.headers == [*original.headers, (HEADER_REPLAYED_FROM, b"bus.dlq:2:9")]


def test_replay_of_a_keyless_record_goes_to_its_source_partition() -> None:
    """Without a key there is no hash: the record goes back where it was."""
    replay = replay_record(_entry(letter_of(Record(key=None))), "bus.dlq")
    assert replay.partition == 3


def test_replay_marker_points_at_its_letter_on_the_letters_partition() -> None:
    """The marker lives on the letter's DLQ partition and names it."""
    marker = replay_marker(
        _entry(letter_of(Record(), dlq_partition=4, dlq_offset=8)), "bus.dlq", "t"
    )
    assert (marker.topic, marker.partition, marker.key, marker.value) == ("bus.dlq", 4, None, b"")
    assert header_value(marker.headers, HEADER_DLQ_REPLAY_OF) == b"4:8"


def test_choose_skips_replayed_ones_unless_again_and_foreign_targets_always() -> None:
    """Replayed letters need --again; a source outside the bus is never written to."""
    done = _entry(letter_of(Record()), replayed=True)
    foreign = _entry(letter_of(Record(topic="__consumer_offsets"), dlq_offset=1))
    chosen, skipped = choose_for_replay([done, foreign], [], TOPICS)
    assert chosen == []
    assert [why for _id, why in skipped] == [
        "replayed before (--again to replay it anyway)",
        "__consumer_offsets is not a topic of the bus",
    ]
    assert choose_for_replay([done], [], TOPICS, again=True)[0] == [done]


def test_choose_refuses_unknown_and_ambiguous_ids() -> None:
    """An id naming nothing, or a bare offset found in two partitions, is an error."""
    entries = [_entry(letter_of(Record(), dlq_partition=p, dlq_offset=5)) for p in (0, 1)]
    with pytest.raises(ValueError, match="no dead letter 2:5"):
        choose_for_replay(entries, [(2, 5)], TOPICS)
    with pytest.raises(ValueError, match="several DLQ partitions"):
        choose_for_replay(entries, [(None, 5)], TOPICS)


@pytest.mark.parametrize(
    ("text", "parsed"), [("3:120", (3, 120)), ("120", (None, 120)), (" 0:0", (0, 0))]
)
def test_entry_ids_parse(text: str, parsed: tuple[int | None, int]) -> None:
    """Ids are <partition>:<offset> or a bare offset."""
    assert parse_entry_id(text) == parsed


def test_bad_entry_id_is_refused() -> None:
    """Anything else is a ValueError naming the text."""
    with pytest.raises(ValueError, match="'a:b'"):
        parse_entry_id("a:b")


def test_preview_names_the_schema_and_inquiry_identity_never_the_payload() -> None:
    """An envelope the codec knows shows its schema, id and agencies; no payload bytes."""
    codec = Codec(sample_store())
    value = codec.encode_model(samples(codec)["inquiry-request"])
    text = preview(value, codec)
    assert text.startswith("exchange.v1.InquiryRequest ")
    assert f"inquiry_id={INQUIRY_ID}" in text
    assert "requester=TAX" in text
    assert "provider=NOCR" in text
    assert "Rahimi" not in text


def test_preview_of_undecodable_bytes_is_hex_with_the_reason() -> None:
    """Unknown schema, bad body or no framing: hex of the first bytes and why."""
    codec = Codec(sample_store())
    good = codec.encode_model(samples(codec)["inquiry-request"])
    assert preview(b"\xc3\x01" + bytes(8), codec).endswith("(unknown-schema)")
    assert (
        preview(good[:12], codec) == "exchange.v1.InquiryRequest, does not decode (schema-mismatch)"
    )
    assert preview(b"hello", None) == "68 65 6c 6c 6f"
    assert preview(b"\xff" * 20, None, width=4) == "ff ff ff ff…"
    assert preview(None) == "(no value)"
    assert "schema id 7" in preview(b"\x00\x00\x00\x00\x07body")
