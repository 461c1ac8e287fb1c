"""A connector's tiny HTTP endpoint: ``GET /health`` (JSON) and ``GET /metrics`` (Prometheus).

``/health`` answers ``200`` while the circuit to the legacy system is closed or half-open and
``503`` while it is open, with ``{"connector", "kind", "circuit", "paused", "degraded"}`` as
JSON (requesters add ``failing``: outcomes waiting for a delivery that keeps failing), so a
load balancer or an orchestrator's probe can read it. One request per connection
(``Connection: close``): probes and scrapers need no more, and the server stays tiny.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

__all__ = ["HealthServer"]

_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}
#: A request line and headers larger than this are not a probe.
_MAX_HEAD = 16_384


class HealthServer:
    """Serves ``/health`` from ``status()`` (a dict with a boolean ``healthy``) and ``/metrics``."""

    def __init__(
        self, registry: CollectorRegistry, status: Callable[[], dict[str, Any]], *, host: str
    ) -> None:
        self._registry = registry
        self._status = status
        self._host = host
        self._server: asyncio.Server | None = None
        self.port: int | None = None

    async def start(self, port: int) -> int:
        """Listen on ``host:port`` (0: any free port); return the bound port."""
        self._server = await asyncio.start_server(self._serve, self._host, port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def close(self) -> None:
        """Stop listening."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(5):
                head = await reader.readuntil(b"\r\n\r\n")
            status, content_type, body = self._respond(head[:_MAX_HEAD])
            reason = _REASONS.get(status, "")
            writer.write(
                f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode("ascii")
                + body
            )
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass  # not a well-formed request: hang up
        except ConnectionError:
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    def _respond(self, head: bytes) -> tuple[int, str, bytes]:
        method, _, rest = head.decode("latin-1").partition(" ")
        path = rest.partition(" ")[0].partition("?")[0]
        if method not in ("GET", "HEAD"):
            return 405, "text/plain", b"method not allowed\n"
        if path == "/metrics":
            return 200, CONTENT_TYPE_LATEST, generate_latest(self._registry)
        if path in ("/health", "/"):
            status = self._status()
            body = json.dumps(status, sort_keys=True).encode() + b"\n"
            return (200 if status.get("healthy") else 503), "application/json", body
        return 404, "text/plain", b"not found\n"
