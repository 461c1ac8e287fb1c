"""Codec throughput: records per second for an InquiryRequest with a typical nested payload.

Single process, a few seconds. Run from the repository root::

    .venv/bin/python bench/codec_bench.py [--seconds 1.0] [--json]

Each case runs for ``--seconds`` of wall time; the rate is reported both per wall second and
per CPU second of this process (the CPU figure is steadier on a shared machine).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from exchange._codec import Codec
from exchange._models import AgencyRef, InquiryRequest, SubjectKind, SubjectRef
from exchange._schema_store import SchemaStore
from exchange._wire import INQUIRY_REQUEST

ROOT = Path(__file__).resolve().parents[1]

# A typical civil-registry request payload: six short fields, about 80 bytes encoded.
PAYLOAD_SCHEMA = {
    "type": "record",
    "name": "PersonVerifyRequest",
    "namespace": "exchange.bench.v1",
    "fields": [
        {"name": "national_id", "type": "string"},
        {"name": "birth_date", "type": {"type": "int", "logicalType": "date"}},
        {"name": "first_name", "type": "string"},
        {"name": "last_name", "type": "string"},
        {"name": "father_name", "type": ["null", "string"], "default": None},
        {"name": "include_photo", "type": "boolean", "default": False},
    ],
}
PAYLOAD = {
    "national_id": "0012345678",
    "birth_date": dt.date(1990, 5, 17),
    "first_name": "Maryam",
    "last_name": "Rahimi-Tabrizi",
    "father_name": "Hossein",
    "include_photo": False,
}


def _request(codec: Codec) -> InquiryRequest:
    now = dt.datetime.now(dt.UTC)
    return InquiryRequest(
        inquiry_id=uuid.uuid4(),
        requester=AgencyRef(agency="TAX", subsystem="registration"),
        provider=AgencyRef(agency="NOCR"),
        service_code="nocr.person.verify",
        service_version=1,
        purpose="tax-registration",
        case_reference="TX-2025-000123",
        end_user_id="officer-4711",
        subject=SubjectRef(kind=SubjectKind.PERSON, id="0012345678"),
        created_at=now,
        deadline=now + dt.timedelta(seconds=30),
        trace_parent="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        reply_to=uuid.uuid4().hex,
        payload=codec.encode("exchange.bench.v1.PersonVerifyRequest", PAYLOAD),
    )


def _rate(case: Callable[[], Any], seconds: float) -> tuple[float, float]:
    """Calls per wall second and per CPU second, run in batches of 1000 for ``seconds``."""
    count = 0
    wall0, cpu0 = time.perf_counter(), time.process_time()
    while time.perf_counter() - wall0 < seconds:
        for _ in range(1000):
            case()
        count += 1000
    return count / (time.perf_counter() - wall0), count / (time.process_time() - cpu0)


def main() -> None:
    """Run every case and print a table (or JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="wall time per case")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()

    store = SchemaStore.from_directory(ROOT / "schemas" / "envelope")
    store.add(PAYLOAD_SCHEMA)
    codec = Codec(store)
    model = _request(codec)
    envelope = model.to_avro()
    data = codec.encode_model(model)
    decoded = codec.decode(data)

    cases: dict[str, Callable[[], Any]] = {
        "encode envelope (dict)": lambda: codec.encode(INQUIRY_REQUEST, envelope),
        "encode envelope (model)": lambda: codec.encode_model(model),
        "encode payload + envelope": lambda: codec.encode(
            INQUIRY_REQUEST,
            {**envelope, "payload": codec.encode("exchange.bench.v1.PersonVerifyRequest", PAYLOAD)},
        ),
        "decode envelope (dict)": lambda: codec.decode(data),
        "decode envelope (dict, reader)": lambda: codec.decode(data, reader=INQUIRY_REQUEST),
        "decode envelope (model)": lambda: codec.decode_model(data, InquiryRequest),
        "decode envelope + payload": lambda: codec.decode(codec.decode(data)["payload"]),
        "model from decoded dict": lambda: InquiryRequest.from_avro(decoded),
    }
    results = {name: _rate(case, args.seconds) for name, case in cases.items()}
    if args.json:
        rates = {name: {"wall": wall, "cpu": cpu} for name, (wall, cpu) in results.items()}
        print(json.dumps({"record_bytes": len(data), "payload_bytes": len(model.payload), **rates}))
        return
    print(f"InquiryRequest: {len(data)} bytes, nested payload {len(model.payload)} bytes")
    print(f"{'case':34} {'records/s (wall)':>17} {'records/s (cpu)':>16}")
    for name, (wall, cpu) in results.items():
        print(f"{name:34} {wall:17,.0f} {cpu:16,.0f}")


if __name__ == "__main__":
    main()
