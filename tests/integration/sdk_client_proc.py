"""One requester process for the two-process reply-routing test (run as a script).

``PYTHONPATH=tests python tests/integration/sdk_client_proc.py BOOTSTRAP PREFIX COUNT`` (tests/
on the path for ``samples``) connects as TAX/registration, sends COUNT inquiries a few at a
time, and prints one JSON object: its instance id, the ids it sent, the outcomes it received
(id, kind) and how many outcomes reached it for inquiries it never sent.
"""

from __future__ import annotations

import asyncio
import json
import sys

from samples import PERSON

from exchange import ExchangeClient, ExchangeSettings, InquirySpec
from exchange._logging import configure_logging


async def main(bootstrap: str, prefix: str, count: int) -> None:
    configure_logging("json", "WARNING")  # logs to stderr: stdout carries the report
    settings = ExchangeSettings(kafka_bootstrap=bootstrap, topic_prefix=prefix)
    async with ExchangeClient.connect(
        agency="TAX", subsystem="registration", settings=settings
    ) as client:
        print(json.dumps({"ready": client.instance_id}), flush=True)
        sys.stdin.readline()  # wait for "go", so both processes ask at the same time
        outcomes = []
        for start in range(0, count, 10):
            specs = [
                InquirySpec("nocr.person.verify.v1", PERSON, "tax-registration")
                for _ in range(min(10, count - start))
            ]
            outcomes += await client.inquire_many(specs, timeout=30.0)
        late = client._in_flight.late
        print(
            json.dumps(
                {
                    "instance_id": client.instance_id,
                    "outcomes": [[str(o.inquiry_id), o.kind.value, o.local] for o in outcomes],
                    "late": late,
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
