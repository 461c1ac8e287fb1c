"""A legacy postal address register with a JSON HTTP API (the rest connector's counterpart).

    python address_api.py PORT TOKEN

``GET /`` → 200; ``GET /v2/addresses/<postal code>`` with ``Authorization: Bearer TOKEN`` →
200 and the address as JSON, 404 for an unknown code, 400 for a malformed one, 401 without
the token. A real server (http.server, threaded), not a mock.
"""

from __future__ import annotations

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ADDRESSES = {
    "1193653471": {
        "code": "1193653471",
        "region": {"province": "Tehran", "county": "Tehran", "city": "Tehran"},
        "street": "Valiasr",
        "number": "12",
        "floor": "3",
        "lat": 35.7,
        "lon": 51.4,
        "verified": "2024-05-01",
    }
}


class Handler(BaseHTTPRequestHandler):
    """The register's three answers."""

    token = ""

    def do_GET(self) -> None:
        if self.path == "/":
            self._reply(200, {"status": "up"})
            return
        if self.headers.get("Authorization") != f"Bearer {self.token}":
            self._reply(401, {"error": "unauthorised"})
            return
        prefix = "/v2/addresses/"
        code = self.path[len(prefix) :] if self.path.startswith(prefix) else None
        if code is None or not code.isdigit():
            self._reply(400, {"error": "malformed postal code"})
        elif code in ADDRESSES:
            self._reply(200, ADDRESSES[code])
        else:
            self._reply(404, {"error": "no such postal code"})

    def _reply(self, status: int, body: dict[str, object]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        return


def main() -> None:
    port, Handler.token = int(sys.argv[1]), sys.argv[2]
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    main()
