"""One question to a Kafka cluster: are you there? (``check_reachable``).

Used by ``exchange broker status``, by the local broker's readiness wait, and by commands
that want a clear one-line error before they start work against a cluster.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from dataclasses import dataclass
from typing import Any

from exchange._errors import BrokerError

#: Set while a probe runs; aiokafka's tasks inherit it, so only the probe's own logs are muted.
_probing = contextvars.ContextVar("exchange_probing", default=False)
#: aiokafka logs every refused connection at ERROR; a failed probe already says it in one line.
_NOISY_LOGGERS = ("aiokafka", "aiokafka.conn")


@dataclass(frozen=True)
class ClusterInfo:
    """What a reachable cluster said about itself."""

    cluster_id: str
    broker_count: int
    controller_id: int


async def check_reachable(
    bootstrap: str,
    timeout: float,  # noqa: ASYNC109 - also the client's request timeout, not just a deadline
    options: dict[str, Any] | None = None,
) -> ClusterInfo:
    """Describe the cluster at ``bootstrap``; ``BrokerError`` with one line if it cannot."""
    _mute_probe_logs()
    token = _probing.set(True)
    try:
        described = await _describe(bootstrap, timeout, options or {})
    finally:
        _probing.reset(token)
    return ClusterInfo(
        cluster_id=str(described["cluster_id"]),
        broker_count=len(described["brokers"]),
        controller_id=int(described["controller_id"]),
    )


async def _describe(bootstrap: str, seconds: float, options: dict[str, Any]) -> dict[str, Any]:
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.errors import KafkaConnectionError, KafkaError

    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=max(1000, int(seconds * 1000)), **options
    )
    try:
        async with asyncio.timeout(seconds):
            await admin.start()
            described: dict[str, Any] = await admin.describe_cluster()
    except (KafkaConnectionError, OSError) as exc:
        raise _unreachable(bootstrap, "no broker accepted the connection") from exc
    except TimeoutError as exc:
        raise _unreachable(bootstrap, f"no answer within {seconds:g} s") from exc
    except KafkaError as exc:
        raise _unreachable(bootstrap, f"{type(exc).__name__}: {exc}") from exc
    finally:
        await admin.close()
    return described


def _unreachable(bootstrap: str, reason: str) -> BrokerError:
    return BrokerError(
        f"cannot reach Kafka at {bootstrap} ({reason}); check the address and that the "
        "cluster is up, or unset EXCHANGE_KAFKA_BOOTSTRAP to use the local broker"
    )


class _NotWhileProbing(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not _probing.get()


def _mute_probe_logs() -> None:
    for name in _NOISY_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _NotWhileProbing) for f in logger.filters):
            logger.addFilter(_NotWhileProbing())
