"""The reference scenarios' routing: by header, with no decoding and no state."""

from __future__ import annotations

from dataclasses import dataclass, field

from exchange.bench._rawkafka import H_FROM, H_TO, H_TYPE, header, payload, reply_headers
from exchange.bench._relay import route
from exchange.bench._scenario import ScenarioEnv

ENV = ScenarioEnv("127.0.0.1:9092", "bench-relay-1")


@dataclass
class Record:
    """The fields of an aiokafka ConsumerRecord that routing reads."""

    value: bytes = b"body"
    key: bytes = b"id-1"
    headers: list[tuple[str, bytes]] = field(default_factory=list)


REQUEST = [
    ("exchange-inquiry-id", b"id-1"),
    (H_TYPE, b"request"),
    (H_FROM, b"REQ"),
    (H_TO, b"PROV"),
]


def test_header_finds_first_value() -> None:
    """Headers are looked up by name; a missing one is None."""
    assert header(REQUEST, H_TO) == b"PROV"
    assert header(REQUEST, "nope") is None


def test_reply_headers_swap_direction() -> None:
    """A response goes back to the requester: type response, from and to swapped, id kept."""
    assert reply_headers(REQUEST) == [
        ("exchange-inquiry-id", b"id-1"),
        (H_TYPE, b"response"),
        (H_FROM, b"PROV"),
        (H_TO, b"REQ"),
    ]


def test_relay_routes_requests_to_provider_inbox() -> None:
    """A request from out.REQ goes to in.PROV, bytes and headers untouched."""
    assert route(ENV)(Record(headers=REQUEST)) == ("bench-relay-1.in.PROV", REQUEST, b"body")


def test_relay_routes_responses_to_requester_replies() -> None:
    """A response from out.PROV goes to replies.REQ."""
    response = reply_headers(REQUEST)
    routed = route(ENV)(Record(headers=response))
    assert routed is not None
    assert routed[0] == "bench-relay-1.replies.REQ"


def test_relay_drops_records_it_cannot_route() -> None:
    """A record without a known type or destination goes nowhere."""
    assert route(ENV)(Record(headers=[(H_TYPE, b"audit"), (H_TO, b"REQ")])) is None
    assert route(ENV)(Record(headers=[(H_TYPE, b"request")])) is None


def test_payload_has_the_requested_size() -> None:
    """Payloads are exactly as large as configured."""
    assert len(payload(300)) == 300
    assert len(payload(7)) == 7
