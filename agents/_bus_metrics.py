"""What the bus processor counts, with labels kept to the catalog's vocabulary.

A thin layer over :class:`~exchange._metrics.WorkerMetrics` that turns effects into samples:
agency and service labels outside the catalog fold into ``unknown`` (bounded cardinality, and
no label ever carries what an agency wrote freely), and labelled children are cached, since
``labels()`` costs a lock and a dict build per call.
"""

from __future__ import annotations

from typing import Any

from exchange._catalog_model import Catalog
from exchange._events import AuditEvent, AuditKind, Settlement
from exchange._metrics import UNKNOWN_LABEL, WorkerMetrics
from exchange._state import Phase

__all__ = ["BusMetrics"]

_SETTLED_BY_RESPONSE = frozenset({Phase.ANSWERED, Phase.FAILED})
_MAX_CACHED = 10_000
#: The envelope's answer modes as label values: lower case, like the provider's.
_MODE = {"AUTOMATIC": "automatic", "MANUAL": "manual"}


class BusMetrics:
    """Counts settlements, rejects, anomalies and dead letters of one worker process."""

    def __init__(self, metrics: WorkerMetrics, catalog: Catalog, *, component: str) -> None:
        self._m = metrics
        self._agencies = frozenset(agency.code for agency in catalog.agencies)
        self._services = frozenset(service.id for service in catalog.services)
        self._component = component
        self._children: dict[tuple[Any, ...], Any] = {}
        self._service_labels: dict[tuple[str, int], str] = {}

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def _agency(self, code: str | None) -> str:
        return code if code in self._agencies else UNKNOWN_LABEL

    def _service(self, code: str, version: int) -> str:
        label = self._service_labels.get((code, version))
        if label is None:
            service = f"{code}.v{version}"
            label = service if service in self._services else UNKNOWN_LABEL
            if len(self._service_labels) < _MAX_CACHED:  # codes come from untrusted records
                self._service_labels[(code, version)] = label
        return label

    def settled(self, s: Settlement) -> None:
        """One terminal outcome: by kind, latency, reject reason, answer mode, hops."""
        inquiry, m, kind = s.inquiry, self._m, s.kind.value
        requester = self._agency(s.deliver_to)
        provider = self._agency(inquiry.provider_agency)
        service = self._service(inquiry.service_code, inquiry.service_version)
        self._child(m.inquiries, requester, provider, service, kind).inc()
        latency = max(0, s.settled_at_ms - inquiry.created_at_ms) / 1000
        self._child(m.latency, provider, service, kind).observe(latency)
        if s.kind is Phase.REJECTED:
            self._child(m.rejects, requester, service, s.reject_reason or "OTHER").inc()
        elif s.kind in _SETTLED_BY_RESPONSE:
            mode = _MODE.get(s.answered_by, UNKNOWN_LABEL) if s.answered_by else UNKNOWN_LABEL
            self._child(m.answers, provider, service, mode).inc()
            routed_for = max(0, s.settled_at_ms - inquiry.received_at_ms) / 1000
            self._child(m.hop_latency, "provider").observe(routed_for)

    def routed(self, created_at_ms: int, now_ms: int) -> None:
        """One request routed: the request hop (created to routed)."""
        self._child(self._m.hop_latency, "request").observe(max(0, now_ms - created_at_ms) / 1000)

    def noticed(self, event: AuditEvent, agency: str | None) -> None:
        """A late, duplicate, foreign or unknown record: counted, never delivered."""
        if event.kind is not AuditKind.SETTLED:
            self._child(self._m.anomalies, self._agency(agency), event.kind.value.lower()).inc()

    def dead_lettered(self, reason: str) -> None:
        """One record sent to the dead-letter topic."""
        self._child(self._m.dlq.records, self._component, reason).inc()

    def pending(self, count: int) -> None:
        """Inquiries this worker holds pending."""
        self._m.pending.set(count)
