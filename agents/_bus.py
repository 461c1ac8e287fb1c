"""The bus's stream processor: a thin adapter from Kafka records to the pure logic and back.

For each record read from ``<prefix>.out.<AGENCY>`` (the topic names its only writer)::

    decode the envelope (plain dicts)  ── fails ──▶ the record, untouched, to <prefix>.dlq
                                          (over the size limit: refused / settled as well)
      request  ─▶ Router.request_event ─▶ Correlator.accept / reject
      response ─▶ Router.response_event ─▶ Correlator.respond
    effects ─▶ Route:       the ORIGINAL bytes and headers to <prefix>.in.<provider>
               Settlement:  an InquiryOutcome to <prefix>.replies.<agency> (exchange-reply-to)
               AuditEvent:  an AuditRecord to <prefix>.audit, hash-chained per input partition
               StateChange: already in the engine's state table (the correlator writes it)

Audit chain: the records written from input partition p form one hash chain
(:mod:`exchange._audit_chain`, header ``exchange-audit-chain`` = p). Its head lives in p's
state under :data:`AUDIT_HEAD_KEY`, written to the changelog in the batch's transaction, so an
aborted transaction rolls the head back with the audit records it chained, and the next owner
of p after a rebalance or restart goes on from the last committed record.

A record whose processing raises anything else (a defect, or input nobody foresaw) is
dead-lettered with reason ``processing-error`` and its state change undone, so one bad record
never stops the consumer group, and never leaves the table changed with no outcome written.

Every decision lives in :mod:`exchange._routing` and :mod:`exchange._correlation`; this module
only moves values. The engine commits the outputs, the state changes and the input offsets of
one partition in one transaction, so an outcome is never written twice nor lost.

Partitions: inquiry topics are co-partitioned (same partition count, keyed by inquiry id), so
the outputs to ``in`` and ``replies`` go to the input's partition number, with no hashing. The
audit and dead-letter topics may be smaller; their records go to ``p mod count``.

One :class:`~exchange._correlation.Correlator` per owned partition works directly on the
engine's :class:`~agents.PartitionState`, so state lives in one place. When the engine rolls a
failed transaction back it restores that table behind the correlator's back; the processor
notices (the last key it wrote no longer holds what it wrote) and resyncs the correlator's
timers from the table before going on.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final

import structlog

from agents._bus_codec import EnvelopeIO
from agents._bus_metrics import BusMetrics
from agents._engine import InputRecord, OutputRecord
from agents._state_store import PartitionState
from exchange._audit_chain import CHAIN_HEADER, GENESIS, seal
from exchange._catalog_model import Agency, Catalog, Service
from exchange._codec import Codec
from exchange._correlation import DEFAULT_RETENTION_MS, Correlator
from exchange._dlq import PROCESSING_ERROR, dead_letter_record
from exchange._envelope_fields import inquiry_from_fields, response_from_fields
from exchange._errors import CodecError, ExchangeError, PayloadTooLargeError
from exchange._events import (
    AuditEvent,
    Effect,
    RequestAccepted,
    RequestRejected,
    ResponseArrived,
    Route,
    Settlement,
    StateChange,
)
from exchange._metrics import WorkerMetrics
from exchange._models import RejectReason
from exchange._routing import Router
from exchange._signing import signature_text
from exchange._signing_relay import relay_headers
from exchange._state import InquiryState, Phase, Settled
from exchange._topology import TopicKind, Topics
from exchange._wire import (
    HEADER_REPLY_TO,
    INQUIRY_REQUEST,
    RecordType,
    header_value,
    inquiry_headers,
)

__all__ = ["AUDIT_HEAD_KEY", "COMPONENT", "BusProcessor"]

#: The component name on the bus's dead letters and metrics.
COMPONENT: Final = "worker"
_MISSING: Final[Any] = object()
#: The state key of the audit chain's head: not a UUID, so no inquiry can take it.
AUDIT_HEAD_KEY: Final = "\x00audit-head"

log = structlog.get_logger("exchange.worker")


class BusProcessor:
    """The :class:`~agents.Processor` of the stream workers (state: :data:`InquiryState`)."""

    def __init__(
        self,
        *,
        catalog: Catalog,
        codec: Codec,
        topics: Topics,
        topic_partitions: Mapping[str, int],
        metrics: WorkerMetrics | None = None,
        retention_ms: int = DEFAULT_RETENTION_MS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._io = EnvelopeIO(codec)
        self._router = self._response_router = Router(catalog, codec)
        self._catalog, self._codec = catalog, codec
        # Services a newer catalog dropped, with their provider: still known to the response
        # check, so inquiries routed before the change settle normally (use_catalog).
        self._retired: dict[str, tuple[Service, Agency]] = {}
        self._worker_metrics = metrics
        self._topics = topics
        self._audit = self._dlq = ("", 1)
        self._existing: frozenset[str] = frozenset()
        self.set_topic_partitions(topic_partitions)
        self._metrics = (
            None if metrics is None else BusMetrics(metrics, catalog, component=COMPONENT)
        )
        self._retention_ms = retention_ms
        self._clock = clock
        # Per-inquiry lines only when asked for: building them costs as much as routing.
        self._trace = log.is_enabled_for(logging.DEBUG)
        self._correlators: dict[int, Correlator] = {}
        # Per partition: the last key written and the value written (rollback detection).
        self._last_write: dict[int, tuple[str, Any]] = {}
        self._sources: dict[str, str | None] = {}
        # Per partition: the audit chain's head while a batch or tick runs (state holds it).
        self._heads: dict[int, bytes] = {}

    def set_topic_partitions(self, topic_partitions: Mapping[str, int]) -> None:
        """The bus's topics that exist, with their partition counts (the worker refreshes
        them, so topics created after start-up are written to without a restart)."""
        topics = self._topics
        self._audit = (topics.audit, topic_partitions[topics.audit])
        self._dlq = (topics.dlq, topic_partitions[topics.dlq])
        self._existing = frozenset(topic_partitions)

    def use_catalog(self, catalog: Catalog, codec: Codec) -> None:
        """Route with ``catalog`` and ``codec`` from the next batch on; pending inquiries keep
        their state.

        Everything is built first and swapped in one step with no await: the engine calls
        :meth:`process` and :meth:`on_tick` synchronously, so each call (a partition's batch,
        or a slice of a large one) sees one catalog, and a failure here leaves the current one
        in place.
        Requests follow the new catalog at once; responses are also checked against the
        services it dropped (and their schemas), so a removed service's pending inquiries are
        still answered, not failed.
        """
        retired = _retire(self._catalog, self._retired, catalog)
        for service, _ in retired.values():
            for fingerprint in service.request_fingerprints | service.response_fingerprints:
                with contextlib.suppress(CodecError):
                    codec.store.add(self._codec.store.by_fingerprint(fingerprint), current=False)
        responses = _response_catalog(catalog, retired)
        io, router = EnvelopeIO(codec), Router(catalog, codec)
        response_router = router if responses is catalog else Router(responses, codec)
        metrics = self._worker_metrics
        bus_metrics = (
            None if metrics is None else BusMetrics(metrics, responses, component=COMPONENT)
        )
        self._io, self._router, self._response_router = io, router, response_router
        self._metrics, self._catalog, self._codec, self._retired = (
            bus_metrics,
            catalog,
            codec,
            retired,
        )

    # --- the Processor protocol ---------------------------------------------------------------

    def on_assigned(self, state: PartitionState[InquiryState]) -> None:
        """Own partition ``state.partition``: a correlator over its restored table."""
        correlator = Correlator(retention_ms=self._retention_ms, table=state)
        self._correlators[state.partition] = correlator
        self._last_write.pop(state.partition, None)
        log.info(
            "partition assigned",
            partition=state.partition,
            inquiries=len(state),
            pending=correlator.pending_count,
        )
        self._publish_pending()

    def on_revoked(self, partition: int) -> None:
        """Drop partition ``partition``'s correlator (its state went with the engine)."""
        self._correlators.pop(partition, None)
        self._last_write.pop(partition, None)
        log.info("partition revoked", partition=partition)
        self._publish_pending()

    def process(
        self, records: Sequence[InputRecord], state: PartitionState[InquiryState]
    ) -> list[OutputRecord]:
        """Route, reject and correlate one partition's batch."""
        correlator = self._correlator(state)
        now_ms = int(self._clock() * 1000)
        out: list[OutputRecord] = []
        self._heads[state.partition] = head = _chain_head(state)
        for record in records:
            event = self._event_or_dead_letter(record, now_ms, out)
            if event is not None:
                self._apply(correlator, event, record, state, out)
        _keep_chain_head(state, head, self._heads[state.partition])
        self._publish_pending()
        return out

    def on_tick(self, now_ms: int, state: PartitionState[InquiryState]) -> list[OutputRecord]:
        """Time out what is due, forget what expired."""
        effects = self._correlator(state).tick(now_ms)
        out: list[OutputRecord] = []
        if effects:
            self._heads[state.partition] = head = _chain_head(state)
            self._emit(effects, None, state.partition, out)
            _keep_chain_head(state, head, self._heads[state.partition])
            self._publish_pending()
        return out

    # --- records in ---------------------------------------------------------------------------

    def _correlator(self, state: PartitionState[InquiryState]) -> Correlator:
        partition = state.partition
        correlator = self._correlators[partition]
        last = self._last_write.pop(partition, None)
        if last is not None and state.get(last[0], _MISSING) is not last[1]:
            # The engine rolled the last transaction back: rebuild the timers from the table.
            log.warning("state rolled back, resyncing", partition=partition)
            correlator.resync()
        return correlator

    def _event_or_dead_letter(
        self, record: InputRecord, now_ms: int, out: list[OutputRecord]
    ) -> _Event | None:
        """The record's event; None when it went to the dead-letter topic instead.

        Nothing has changed the state yet, so any failure here only costs a dead letter.
        """
        try:
            return self._event(record, now_ms)
        except CodecError as exc:
            out.append(self._dead_letter(record, exc))
            if isinstance(exc, PayloadTooLargeError):
                return self._oversized(record, exc, now_ms)
            return None
        except Exception as exc:
            out.append(self._dead_letter(record, exc))
            return None

    def _event(self, record: InputRecord, now_ms: int) -> _Event:
        """What the record says, decided by the router; a :class:`CodecError` if unusable."""
        name, fields = self._io.read(record.value)
        source = self._source(record.topic)
        if fields.get("inquiry_id") == AUDIT_HEAD_KEY:  # never the audit chain's state entry
            raise _UnreadableError("the inquiry id is reserved")
        try:
            if name != INQUIRY_REQUEST:
                response_event = self._response_router.response_event
                return response_event(
                    fields,
                    source_agency=source,
                    now_ms=now_ms,
                    headers=record.headers,
                    value=record.value,
                )
            _take_reply_to(fields, record.headers)
            event = self._router.request_event(
                fields,
                source_agency=source,
                key=record.key,
                now_ms=now_ms,
                headers=record.headers,
                value=record.value,
                written_at_ms=record.timestamp,
            )
        except (KeyError, TypeError, ValueError) as exc:  # an envelope revision it cannot read
            raise _UnreadableError(f"{type(exc).__name__}: {exc}") from exc
        if isinstance(event, RequestAccepted):
            provider = event.inquiry.provider_agency
            if self._topics.in_(provider) not in self._existing:
                # Refused, not dead-lettered: the writer gets its one outcome, and the audit.
                detail = f"provider {provider} has no in topic; run `exchange topics apply`"
                return RequestRejected(event.inquiry, source, RejectReason.UNKNOWN_AGENCY, detail)
        return event

    def _oversized(self, record: InputRecord, exc: CodecError, now_ms: int) -> _Event | None:
        """A record over the size limit, already dead-lettered: a request is refused and a
        response settles its inquiry FAILED/INVALID_RESPONSE, so nobody waits for a timeout."""
        try:
            name, fields = self._io.read(record.value, limit=False)
            source = self._source(record.topic)
            if name != INQUIRY_REQUEST:
                invalid = f"the response {exc.message}"
                return response_from_fields(
                    fields, source_agency=source, now_ms=now_ms, invalid=invalid
                )
            _take_reply_to(fields, record.headers)
            inquiry = inquiry_from_fields(fields, now_ms)
        except Exception:
            return None
        return RequestRejected(inquiry, source, RejectReason.PAYLOAD_TOO_LARGE, exc.message)

    def _source(self, topic: str) -> str:
        """The agency whose ``out`` topic this is (the only one Kafka lets write there)."""
        source = self._sources.get(topic, _MISSING)
        if source is _MISSING:
            parsed = self._topics.parse(topic)
            source = parsed[1] if parsed is not None and parsed[0] is TopicKind.OUT else None
            self._sources[topic] = source
        if source is None:
            raise _NotAnOutTopicError(f"{topic} is not an agency's out topic")
        return str(source)

    # --- effects out --------------------------------------------------------------------------

    def _apply(
        self,
        correlator: Correlator,
        event: _Event,
        record: InputRecord,
        state: PartitionState[InquiryState],
        out: list[OutputRecord],
    ) -> None:
        """Correlate one event and write its effects, or, if that raises, undo its state
        change and dead-letter the record (an event touches its own inquiry's entry only)."""
        key = event.inquiry_id if isinstance(event, ResponseArrived) else event.inquiry.inquiry_id
        before, head = state.get(key, _MISSING), self._heads[state.partition]
        written: list[OutputRecord] = []
        try:
            self._emit(_correlate(correlator, event), record, state.partition, written)
        except Exception as exc:
            if state.get(key, _MISSING) is not before:
                if before is _MISSING:
                    del state[key]
                else:
                    state[key] = before
            self._last_write.pop(state.partition, None)
            self._heads[state.partition] = head  # its audit records are dropped with it
            correlator.resync()
            out.append(self._dead_letter(record, exc))
            return
        out.extend(written)

    def _emit(
        self,
        effects: Iterable[Effect],
        record: InputRecord | None,
        partition: int,
        out: list[OutputRecord],
    ) -> None:
        metrics = self._metrics
        for effect in effects:
            if isinstance(effect, StateChange):
                value = _MISSING if effect.state is None else effect.state
                self._last_write[partition] = (effect.inquiry_id, value)
            elif isinstance(effect, Route):
                assert record is not None, "only a request is routed"
                self._route(effect, record, partition, out)
            elif isinstance(effect, Settlement):
                self._settle(effect, partition, out, record)
            else:
                out.append(self._audit_record(effect, partition, record))
                if metrics is not None:
                    metrics.noticed(effect, None if record is None else self._source(record.topic))

    def _route(
        self, route: Route, record: InputRecord, partition: int, out: list[OutputRecord]
    ) -> None:
        inquiry = route.inquiry
        topic = self._topics.in_(inquiry.provider_agency)
        # The original bytes and headers: the provider reads what the requester wrote.
        out.append(OutputRecord(topic, record.key, record.value, record.headers, partition))
        if self._metrics is not None:
            self._metrics.routed(inquiry.created_at_ms, inquiry.received_at_ms)
        if self._trace:
            log.debug(
                "routed",
                inquiry_id=inquiry.inquiry_id,
                agency=inquiry.requester_agency,
                service=f"{inquiry.service_code}.v{inquiry.service_version}",
            )

    def _settle(
        self,
        settlement: Settlement,
        partition: int,
        out: list[OutputRecord],
        record: InputRecord | None = None,
    ) -> None:
        inquiry = settlement.inquiry
        topic = self._topics.replies(settlement.deliver_to)
        key = inquiry.inquiry_id.encode()
        if topic in self._existing:
            headers = inquiry_headers(
                RecordType.OUTCOME,
                inquiry.inquiry_id,
                reply_to=inquiry.reply_to,
                traceparent=inquiry.trace_parent,
            )
            value = self._io.outcome(settlement)
            if settlement.kind is Phase.ANSWERED and record is not None:
                # The provider's signed response rides along (exchange/_signing_relay.py).
                limit = self._codec.max_record_bytes
                headers += relay_headers(
                    record.headers, record.value, outcome_size=len(value), limit=limit
                )
            out.append(OutputRecord(topic, key, value, tuple(headers), partition))
        else:  # audited below all the same; never a reason to stop the bus
            log.error("no replies topic, outcome not delivered", topic=topic)
        if self._metrics is not None:
            self._metrics.settled(settlement)
        if self._trace or settlement.reject_reason is not None:
            _log_settled(settlement)

    def _audit_record(
        self, event: AuditEvent, partition: int, record: InputRecord | None = None
    ) -> OutputRecord:
        topic, count = self._audit
        chain = (CHAIN_HEADER, str(partition).encode())
        headers = (*inquiry_headers(RecordType.AUDIT, event.inquiry_id), chain)
        prev = self._heads[partition]
        signature = None if record is None else signature_text(record.headers)
        value, self._heads[partition] = seal(prev, self._io.audit(event, prev, signature))
        return OutputRecord(topic, event.inquiry_id.encode(), value, headers, partition % count)

    def _dead_letter(self, record: InputRecord, exc: Exception) -> OutputRecord:
        # An unforeseen error's text may quote the record (personal data): its type only.
        message = None if isinstance(exc, ExchangeError) else type(exc).__name__
        letter = dead_letter_record(record, exc, component=COMPONENT, message=message)
        topic, count = self._dlq
        reason = exc.reason if isinstance(exc, CodecError) else PROCESSING_ERROR
        if self._metrics is not None:
            self._metrics.dead_lettered(reason)
        log.warning(
            "dead-lettered",
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            reason=reason,
            error=type(exc).__name__,
        )
        headers = tuple(letter.headers)
        return OutputRecord(topic, letter.key, letter.value, headers, record.partition % count)

    def _publish_pending(self) -> None:
        if self._metrics is not None:
            self._metrics.pending(sum(c.pending_count for c in self._correlators.values()))


class _NotAnOutTopicError(CodecError):
    """A record on a topic the worker should not read: dead-lettered, not processed."""

    reason = "unexpected-topic"


class _UnreadableError(CodecError):
    """The envelope decoded but lacks what the router reads (an unknown revision)."""

    reason = "schema-mismatch"


_Event = RequestAccepted | RequestRejected | ResponseArrived


def _correlate(correlator: Correlator, event: _Event) -> list[Effect]:
    if isinstance(event, ResponseArrived):
        return correlator.respond(event)
    if isinstance(event, RequestAccepted):
        return correlator.accept(event.inquiry)
    return correlator.reject(
        event.inquiry, source_agency=event.source_agency, reason=event.reason, detail=event.detail
    )


def _retire(
    previous: Catalog, retired: Mapping[str, tuple[Service, Agency]], catalog: Catalog
) -> dict[str, tuple[Service, Agency]]:
    """The services dropped so far, and those ``catalog`` drops from ``previous``; a service
    back in the catalog is no longer retired (its new definition rules)."""
    found = {sid: entry for sid, entry in retired.items() if catalog.service(sid) is None}
    for service in previous.services:
        provider = previous.agency(service.provider)
        if catalog.service(service.id) is None and provider is not None:
            found[service.id] = (service, provider)
    return found


def _response_catalog(catalog: Catalog, retired: Mapping[str, tuple[Service, Agency]]) -> Catalog:
    """``catalog`` plus the retired services (and their providers, if dropped too), for
    checking responses only: no policy, so nothing is ever routed by it."""
    if not retired:
        return catalog
    agencies = {agency.code: agency for agency in catalog.agencies}
    for _, provider in retired.values():
        agencies.setdefault(provider.code, provider)
    services = (*catalog.services, *(service for service, _ in retired.values()))
    try:
        return Catalog(agencies=tuple(agencies.values()), services=services, policies=())
    except ExchangeError as exc:  # cannot happen with sound catalogs; never stop a swap for it
        log.warning("retired services not kept for responses", error=exc.message)
        return catalog


def _take_reply_to(fields: dict[str, Any], headers: Sequence[tuple[str, bytes]]) -> None:
    """Let the ``exchange-reply-to`` header a request came with override its envelope field
    (it is copied onto the outcome). Bytes outside ASCII become U+FFFD, which the router
    refuses as MALFORMED."""
    raw = header_value(headers, HEADER_REPLY_TO)
    if raw is not None:
        fields["reply_to"] = raw.decode("ascii", errors="replace")


# The chain head is kept as a settled mark that never expires, so the correlator (which
# rebuilds its timers from every entry) and the changelog codec need no case for it; the
# mark's inquiry_id field holds the head hash in hex.
_NEVER: Final = 2**63 - 1


def _chain_head(state: PartitionState[InquiryState]) -> bytes:
    mark = state.get(AUDIT_HEAD_KEY)
    return GENESIS if mark is None else bytes.fromhex(mark.inquiry_id)


def _keep_chain_head(state: PartitionState[InquiryState], old: bytes, new: bytes) -> None:
    """Write the head into the state once per batch, when it moved."""
    if new != old:
        state[AUDIT_HEAD_KEY] = Settled(new.hex(), Phase.ANSWERED, "", "", "", 0, _NEVER)


def _log_settled(settlement: Settlement) -> None:
    inquiry = settlement.inquiry
    fields = {
        "inquiry_id": inquiry.inquiry_id,
        "agency": settlement.deliver_to,
        "service": f"{inquiry.service_code}.v{inquiry.service_version}",
        "outcome": settlement.kind.value,
    }
    if settlement.reject_reason is not None:
        # The detail quotes what the requester wrote (personal data, forged log lines): DEBUG.
        log.info("rejected", reason=settlement.reject_reason, **fields)
        log.debug("rejected in detail", inquiry_id=inquiry.inquiry_id, detail=settlement.detail)
    else:
        log.debug("settled", **fields)
