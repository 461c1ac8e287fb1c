"""What the connector runtime does with an exception nobody planned for: never end silently.

A connector's calls are meant to raise :class:`~exchange.RetriableError` (down, try later) or
:class:`~exchange.PermanentError` (refused). Anything else — an ``OSError`` a connector did
not translate, a bug — is **unexpected**. The runtime treats it as retriable by default
("nothing lost, nothing hidden"):

- logged at warning level with the connector's name, the step and, where there is one, the
  inquiry id (the exception's type and text; a traceback at debug level);
- counted in ``exchange_connector_unexpected_errors_total{connector, step}``;
- raised on as a :class:`~exchange.RetriableError` (``from`` the original), so the
  :class:`~connectors._guard.LegacyGuard` retries it with backoff and the circuit breaker
  counts it as a failure.

One exception: :class:`~connectors._mapping.MappingError` from a provider's ``answer`` is a
template that cannot render — the same on every try — so it is logged and counted but not
retried (the provider SDK dead-letters the request and answers ``HANDLER_ERROR``).

:func:`supervise` is the same rule for the runtime's own background tasks: a task that fails
is logged, counted and started again after a pause, never left to die unobserved.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Final, TypeVar

import structlog

from connectors._mapping import MappingError
from exchange._errors import ConnectorError, RetriableError
from exchange._metrics import ConnectorMetrics

__all__ = ["Step", "count_unexpected", "retriable_unless_planned", "supervise"]

T = TypeVar("T")
log = structlog.get_logger("exchange.connector")

#: The runtime's steps, the ``step`` label's values.
Step = str
POLL: Final = "poll"
DELIVER: Final = "deliver"
ANSWER: Final = "answer"
EXCHANGE: Final = "exchange"
PROBES: Final = "probes"

#: Pause before a failed background task is started again, s (doubles up to the max).
RESTART_PAUSE: Final = 1.0
MAX_RESTART_PAUSE: Final = 30.0


def count_unexpected(
    metrics: ConnectorMetrics,
    connector: str,
    step: Step,
    exc: BaseException,
    *,
    inquiry_id: str | None = None,
) -> None:
    """Log and count one unexpected exception (see the module docstring)."""
    metrics.unexpected.labels(connector, step).inc()
    log.warning(
        "unexpected error in the connector",
        connector=connector,
        step=step,
        inquiry_id=inquiry_id,
        error=type(exc).__name__,
        detail=str(exc)[:300],
    )
    log.debug("unexpected error traceback", connector=connector, step=step, exc_info=exc)


def retriable_unless_planned(
    fn: Callable[[], Awaitable[T]],
    *,
    metrics: ConnectorMetrics,
    connector: str,
    step: Step,
    inquiry_id: str | None = None,
) -> Callable[[], Awaitable[T]]:
    """``fn``, with an unexpected exception logged, counted and raised as RetriableError."""

    async def call() -> T:
        try:
            return await fn()
        except ConnectorError:
            raise  # planned: RetriableError or PermanentError, the guard knows what to do
        except Exception as exc:
            count_unexpected(metrics, connector, step, exc, inquiry_id=inquiry_id)
            if isinstance(exc, MappingError) and step == ANSWER:
                raise  # the same on every try: dead-lettered and answered HANDLER_ERROR
            code = "LEGACY_UNAVAILABLE" if isinstance(exc, OSError) else "HANDLER_ERROR"
            message = f"unexpected {type(exc).__name__} in {step}: {str(exc)[:200]}"
            raise RetriableError(message, code=code) from exc

    return call


async def supervise(
    factory: Callable[[], Awaitable[None]],
    *,
    metrics: ConnectorMetrics,
    connector: str,
    step: Step,
) -> None:
    """Run ``factory()`` forever: if it fails, log, count, pause and start it again.

    Cancellation ends it (that is how the runtime stops its background tasks).
    """
    pause = RESTART_PAUSE
    while True:
        try:
            await factory()
        except Exception as exc:
            count_unexpected(metrics, connector, step, exc)
            await asyncio.sleep(pause)
            pause = min(pause * 2, MAX_RESTART_PAUSE)
        else:
            return
