"""Known bytes: each envelope record encodes to the committed hex in tests/golden, and back.

The fixtures are the wire contract other-language clients test against; a change here is a
change of the wire format. To rewrite them after a deliberate schema change, run with
``EXCHANGE_UPDATE_GOLDEN=1`` and review the diff.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest
from codec_samples import (
    EXAMPLE_PAYLOAD,
    GOLDEN_DIR,
    ROOT,
    example_payload,
    sample_store,
    samples,
)

from exchange._codec import Codec

CODEC = Codec(sample_store())
SAMPLES = samples(CODEC)


def _read_hex(path: Path) -> bytes:
    lines = path.read_text().splitlines()
    return bytes.fromhex("".join(line for line in lines if not line.startswith("#")))


def _check(path: Path, data: bytes, title: str) -> None:
    if os.environ.get("EXCHANGE_UPDATE_GOLDEN") == "1":
        body = "\n".join(textwrap.wrap(data.hex(), 64))
        path.write_text(f"# {title}\n{body}\n")
    assert path.exists(), f"{path.name} is missing; run with EXCHANGE_UPDATE_GOLDEN=1 once"
    assert data.hex() == _read_hex(path).hex()


@pytest.mark.parametrize("stem", sorted(SAMPLES))
def test_envelope_encodes_to_the_golden_bytes(stem: str) -> None:
    """Encoding the sample record gives the committed bytes, byte for byte."""
    model = SAMPLES[stem]
    _check(GOLDEN_DIR / f"{stem}.hex", CODEC.encode_model(model), model.AVRO_NAME)


@pytest.mark.parametrize("stem", sorted(SAMPLES))
def test_golden_bytes_decode_to_the_sample(stem: str) -> None:
    """Decoding the committed bytes gives the sample record back."""
    model = SAMPLES[stem]
    assert CODEC.decode_model(_read_hex(GOLDEN_DIR / f"{stem}.hex"), type(model)) == model


def test_example_payload_encodes_to_the_golden_bytes() -> None:
    """The nested payload of the request sample is pinned too (the docs walk through it)."""
    _check(GOLDEN_DIR / "example-payload.hex", example_payload(CODEC), EXAMPLE_PAYLOAD)


def test_wire_format_document_matches_the_code() -> None:
    """docs/wire-format.md's fingerprint table and full hex example are the real bytes."""
    doc = (ROOT / "docs" / "wire-format.md").read_text()
    for schema in CODEC.store:
        if schema.name.startswith("exchange.v1."):
            assert f"| `{schema.name}` | `{schema.fingerprint.hex(' ')}` |" in doc
    request_hex = _read_hex(GOLDEN_DIR / "inquiry-request.hex").hex()
    assert "\n".join(textwrap.wrap(request_hex, 64)) in doc
