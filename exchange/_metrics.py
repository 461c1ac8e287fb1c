"""Prometheus metrics of every process of the bus.

Each component gets a small class of its own metrics, built on a ``CollectorRegistry`` that
the entry point passes in (tests pass a fresh one and read it with ``get_sample_value``); no
metric is registered at import time. Label values are bounded: agency and service codes from
the catalog, outcome kinds and reason codes from the schemas' enums — never inquiry ids,
subjects or payloads. Values outside the catalog are folded into ``UNKNOWN_LABEL``.

Every metric is listed with its labels and meaning in ``docs/metrics.md``. Label values are
one case per label everywhere: answer modes are lower case (``automatic``, ``manual``).

Gauges that several worker processes (``exchange worker --processes N``) each hold a part of
use ``multiprocess_mode="livesum"``: in prometheus_client's multiprocess mode the supervisor's
``/metrics`` shows their sum over live processes, not one series per pid. (The mode is
ignored outside multiprocess mode.)

Several components in one process may share a registry (two ``Provider``s, a provider and a
worker's dead-lettering): a metric is made once per registry and shared after that, instead
of failing on prometheus_client's duplicate time series.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

#: Label value for codes that are not in the catalog (keeps label cardinality bounded).
UNKNOWN_LABEL = "unknown"

#: Seconds; from one millisecond (a cached automatic answer) to five minutes (a manual desk).
LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
)  # fmt: skip

_M = TypeVar("_M", Counter, Gauge, Histogram)

#: The metrics made on each registry, by name, with their label names.
_MADE: weakref.WeakKeyDictionary[CollectorRegistry, dict[str, tuple[tuple[str, ...], object]]] = (
    weakref.WeakKeyDictionary()
)


def _metric(
    kind: type[_M],
    name: str,
    documentation: str,
    labels: Sequence[str] = (),
    *,
    registry: CollectorRegistry,
    **options: Any,
) -> _M:
    """``registry``'s metric ``name``: made on first use, the same object after that.

    :class:`ValueError` if it was made before as another kind or with other labels (two
    meanings for one name is a programming error, as in prometheus_client).
    """
    made = _MADE.setdefault(registry, {})
    if name not in made:
        made[name] = (
            tuple(labels),
            kind(name, documentation, labels, registry=registry, **options),
        )
    made_labels, metric = made[name]
    if not isinstance(metric, kind) or made_labels != tuple(labels):
        raise ValueError(f"metric {name} exists as a {type(metric).__name__} of {made_labels}")
    return metric


class WorkerMetrics:
    """The stream workers: routing, policy, correlation and timeouts."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.inquiries = _metric(
            Counter,
            "exchange_inquiries",
            "Inquiries settled by the bus, by terminal outcome.",
            ["requester", "provider", "service", "outcome"],
            registry=registry,
        )
        self.latency = _metric(
            Histogram,
            "exchange_inquiry_latency_seconds",
            "End-to-end time from the request's creation to its outcome.",
            ["provider", "service", "outcome"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.hop_latency = _metric(
            Histogram,
            "exchange_hop_latency_seconds",
            "Time spent on one hop: request (created at the requester to routed by the bus), "
            "provider (routed to the provider's response read by the bus).",
            ["hop"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.pending = _metric(
            Gauge,
            "exchange_pending_inquiries",
            "Inquiries routed and waiting for a response, in this worker.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.rejects = _metric(
            Counter,
            "exchange_rejects",
            "Requests refused by the bus, by machine-readable reason.",
            ["requester", "service", "reason"],
            registry=registry,
        )
        self.answers = _metric(
            Counter,
            "exchange_answers",
            "Responses that settled an inquiry, by answer mode (automatic or manual).",
            ["provider", "service", "mode"],
            registry=registry,
        )
        self.anomalies = _metric(
            Counter,
            "exchange_anomalies",
            "Records noticed and not delivered: late, duplicate or foreign responses, "
            "duplicate requests.",
            ["agency", "kind"],
            registry=registry,
        )
        self.dlq = DlqMetrics(registry)


class DlqMetrics:
    """Records sent to the dead-letter topic; shared by every component that dead-letters."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.records = _metric(
            Counter,
            "exchange_dlq_records",
            "Records dead-lettered, by component and reason.",
            ["component", "reason"],
            registry=registry,
        )


class CatalogMetrics:
    """The stream workers' live catalog (snapshots from ``<prefix>.catalog``)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.updates = _metric(
            Counter,
            "exchange_catalog_updates",
            "Catalog snapshots read from the catalog topic: applied or refused (invalid).",
            ["result"],
            registry=registry,
        )
        self.published = _metric(
            Gauge,
            "exchange_catalog_published_timestamp_seconds",
            "When the catalog in use was published (0: read from files at start).",
            registry=registry,
            multiprocess_mode="min",
        )


class EngineMetrics:
    """The batched transactional engine under the stream workers."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.batches = _metric(
            Counter, "exchange_engine_batches", "Transactions committed.", registry=registry
        )
        self.records = _metric(
            Counter, "exchange_engine_records", "Input records processed.", registry=registry
        )
        self.aborts = _metric(
            Counter,
            "exchange_engine_aborts",
            "Transactions aborted and replayed.",
            registry=registry,
        )
        self.batch_seconds = _metric(
            Histogram,
            "exchange_engine_batch_seconds",
            "Time to process and commit one batch of one partition's input records.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.lag = _metric(
            Gauge,
            "exchange_consumer_lag",
            "Records behind the end of each input partition.",
            ["topic", "partition"],
            registry=registry,
            multiprocess_mode="livesum",
        )


class ClientMetrics:
    """A requester's client: what it asked and what came back."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.inquiries = _metric(
            Counter,
            "exchange_client_inquiries",
            "Inquiries sent by this client, by outcome received.",
            ["agency", "service", "outcome"],
            registry=registry,
        )
        self.latency = _metric(
            Histogram,
            "exchange_client_latency_seconds",
            "Time from sending an inquiry to receiving its outcome, at the requester.",
            ["service", "outcome"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.in_flight = _metric(
            Gauge,
            "exchange_client_in_flight",
            "Inquiries sent by this client and still waiting for an outcome.",
            registry=registry,
        )


class ProviderMetrics:
    """A provider: handlers called, their results and durations."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.handled = _metric(
            Counter,
            "exchange_provider_handled",
            "Inquiries handled by this provider, by result (FOUND, NOT_FOUND, ERROR) and mode.",
            ["agency", "service", "result", "mode"],
            registry=registry,
        )
        self.duplicates = _metric(
            Counter,
            "exchange_provider_duplicates",
            "Redelivered inquiries skipped because they were already handled.",
            ["agency"],
            registry=registry,
        )
        self.handler_seconds = _metric(
            Histogram,
            "exchange_provider_handler_seconds",
            "Time spent in the service handler (or legacy call).",
            ["service"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )


class ConnectorMetrics:
    """A connector's health and its legacy system's circuit."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.up = _metric(
            Gauge,
            "exchange_connector_up",
            "1 while the connector's last health check passed.",
            ["connector"],
            registry=registry,
        )
        self.circuit = _metric(
            Gauge,
            "exchange_connector_circuit_state",
            "Circuit to the legacy system: 0 closed, 1 half-open, 2 open (intake paused).",
            ["connector"],
            registry=registry,
        )
        self.calls = _metric(
            Counter,
            "exchange_connector_calls",
            "Calls to the legacy system, by result (ok, retried, failed).",
            ["connector", "result"],
            registry=registry,
        )
        self.unexpected = _metric(
            Counter,
            "exchange_connector_unexpected_errors",
            "Exceptions a connector did not plan for (neither retriable nor permanent), by step.",
            ["connector", "step"],
            registry=registry,
        )


def serve_metrics(registry: CollectorRegistry, *, host: str, port: int) -> int:
    """Serve ``/metrics`` for ``registry`` in a daemon thread; return the bound port."""
    server, _thread = start_http_server(port, addr=host, registry=registry)
    return int(server.server_port)
