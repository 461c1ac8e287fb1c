"""Routing and policy: may this request go to its provider, is this response usable?

Pure decisions over values: the catalog, the codec (CPU only), the decoded envelope fields and
the agency whose ``out`` topic the record came from, which Kafka ACLs make the only agency able
to write there. The first failed rule decides; cheap identity and policy checks run before the
payload is decoded, so a request that may not be asked costs no schema work.

Requests, in order (each pinned by a test):

=====================  ======================================================================
MALFORMED              the inquiry id is not a UUID in its canonical text form, the record
                       key is not that id (co-partitioning would put its response elsewhere),
                       or the reply-to is not 1 to 128 printable ASCII characters (it travels
                       in a header, and the writer's client matches it byte for byte)
UNKNOWN_AGENCY         the topic's agency, the requester subsystem or the provider is not in
                       the catalog
WRONG_REQUESTER        the envelope's requester is not the topic's agency
UNKNOWN_SERVICE        no service with that code and version, or another agency (or
                       subsystem) provides it
NOT_ALLOWED            no policy lets the requester (agency or subsystem) ask the service
PURPOSE_NOT_ALLOWED    a policy exists, but not for the stated purpose
DEADLINE_PAST          the deadline is not after the time the request reached the bus (its
                       record's timestamp, or the read if later); one that reached it in time
                       but is read after its deadline is accepted and times out at once
DEADLINE_TOO_FAR       the deadline is further than the service's ``max_deadline_seconds``
BAD_SIGNATURE          the ``exchange-signature`` header is present but does not verify with
                       one of the requester's catalog keys, or it is missing where the service
                       or the requester says ``signatures: required`` (``_signing_policy.py``)
PAYLOAD_TOO_LARGE      the payload is over the size limit
INVALID_PAYLOAD        the payload is not a record of one of the service's request revisions
=====================  ======================================================================

Responses: the worker takes the topic's agency as the responder, whatever the envelope says,
so a response from anyone but the provider is *foreign* to the correlator. A response from the
provider that fails a check here (envelope responder not the topic's agency, unknown service,
FOUND without payload, payload not of the service's response schema, a signature that does not
verify or is missing where required) settles its inquiry as
FAILED with error code ``INVALID_RESPONSE`` rather than going to the dead-letter topic: it is
authentic and names a real inquiry, so the requester learns at once what happened instead of
waiting for a TIMED_OUT that misdescribes it, the defect is counted against the provider in
the audit trail, and no payload the requester cannot read is delivered. Records that do not
decode as an envelope at all (no trustworthy inquiry id) are the dead-letter topic's business.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from fastavro import schemaless_reader

from exchange._audit_signature import request_signature
from exchange._catalog_ids import format_service_id
from exchange._catalog_model import Catalog, Service
from exchange._codec import Codec
from exchange._envelope_fields import inquiry_from_fields, raw_schema, response_from_fields
from exchange._errors import CodecError
from exchange._events import RequestAccepted, RequestRejected, ResponseArrived
from exchange._models import RejectReason
from exchange._signing import SignatureCheck
from exchange._signing_policy import verify_record
from exchange._state import InquiryRecord
from exchange._wire import SINGLE_OBJECT_MAGIC, Headers, RecordType

__all__ = ["Rejection", "Router"]

_HEADER_SIZE = 10  # the magic and the 8-byte fingerprint
# str(uuid.UUID(text)) == text, without building a UUID per request.
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_REPLY_TO = re.compile(r"[\x20-\x7e]{1,128}")


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why the bus refuses a request: a machine-readable reason and a sentence for people."""

    reason: RejectReason
    detail: str


class Router:
    """The catalog's rules for one catalog version; build a new one when the catalog changes."""

    __slots__ = ("_catalog", "_codec", "_max_payload_bytes", "_readers")

    def __init__(
        self, catalog: Catalog, codec: Codec, *, max_payload_bytes: int | None = None
    ) -> None:
        self._catalog = catalog
        self._codec = codec
        self._max_payload_bytes = (
            codec.max_record_bytes if max_payload_bytes is None else max_payload_bytes
        )
        # Fingerprint -> schema parsed without logical types. Only a catalog service's own
        # revisions get in, so untrusted records cannot grow it.
        self._readers: dict[bytes, Any] = {}

    # --- from decoded envelopes to the correlator's events ---------------------------------

    def request_event(
        self,
        fields: Mapping[str, Any],
        *,
        source_agency: str,
        key: bytes | None,
        now_ms: int,
        headers: Headers = (),
        value: bytes | None = None,
        written_at_ms: int | None = None,
    ) -> RequestAccepted | RequestRejected:
        """Decide a request read from ``out.<source_agency>`` at *now_ms*; ``headers`` and
        ``value`` are the record's, untouched (its signature covers them); *written_at_ms*
        the record's timestamp, when it reached the bus."""
        inquiry = inquiry_from_fields(fields, now_ms)
        signature = request_signature(headers)
        if signature is not None:  # kept for the audit record of the outcome
            inquiry = replace(inquiry, request_signature=signature)
        rejection = self.check_request(
            inquiry,
            fields["payload"],
            source_agency=source_agency,
            key=key,
            headers=headers,
            value=value,
            written_at_ms=written_at_ms,
        )
        if rejection is None:
            return RequestAccepted(inquiry)
        return RequestRejected(inquiry, source_agency, rejection.reason, rejection.detail)

    def response_event(
        self,
        fields: Mapping[str, Any],
        *,
        source_agency: str,
        now_ms: int,
        headers: Headers = (),
        value: bytes | None = None,
    ) -> ResponseArrived:
        """A response read from ``out.<source_agency>`` at *now_ms*, with its check done."""
        arrived = response_from_fields(fields, source_agency=source_agency, now_ms=now_ms)
        invalid = self.check_response(
            arrived,
            claimed_responder=fields["responder"]["agency"],
            headers=headers,
            value=value,
        )
        return arrived if invalid is None else replace(arrived, invalid=invalid)

    # --- requests -------------------------------------------------------------------------

    def check_request(
        self,
        inquiry: InquiryRecord,
        payload: bytes,
        *,
        source_agency: str,
        key: bytes | None,
        headers: Headers = (),
        value: bytes | None = None,
        written_at_ms: int | None = None,
    ) -> Rejection | None:
        """None if the request may be routed to its provider, else why not.

        *inquiry* is the request as read (``received_at_ms`` is "now" for the deadline rules),
        *source_agency* the agency of the ``out`` topic, *key* the record's key, *headers* and
        *value* the record's own (for its signature). *written_at_ms*, the record's timestamp,
        decides whether the deadline had passed: a request written in time but read after its
        deadline (the bus was down or behind) is not the requester's fault; it is accepted and
        times out at once.
        """
        problem = self._identity(inquiry, source_agency, key)
        if problem is not None:
            return problem
        service = self._catalog.service(inquiry.service_code, inquiry.service_version)
        if service is None:
            return Rejection(RejectReason.UNKNOWN_SERVICE, f"{_sid(inquiry)} is not in the catalog")
        return (
            _provider_problem(inquiry, service)
            or self._policy_problem(inquiry, service)
            or _deadline_problem(inquiry, service, written_at_ms)
            or self._signature_problem(inquiry, service, headers, value)
            or self._payload_problem(payload, service)
        )

    def _identity(
        self, inquiry: InquiryRecord, source_agency: str, key: bytes | None
    ) -> Rejection | None:
        malformed = _malformed(inquiry, key)
        if malformed is not None:
            return malformed
        catalog = self._catalog
        source = catalog.agency(source_agency)
        if source is None:
            return Rejection(RejectReason.UNKNOWN_AGENCY, f"{source_agency} is not in the catalog")
        if inquiry.requester_agency != source_agency:
            detail = f"requester {inquiry.requester_agency} wrote to the topic of {source_agency}"
            return Rejection(RejectReason.WRONG_REQUESTER, detail)
        subsystem = inquiry.requester_subsystem
        if subsystem is not None and not source.has_subsystem(subsystem):
            detail = f"{source_agency} has no subsystem {subsystem!r}"
            return Rejection(RejectReason.UNKNOWN_AGENCY, detail)
        if catalog.agency(inquiry.provider_agency) is None:
            detail = f"provider {inquiry.provider_agency} is not in the catalog"
            return Rejection(RejectReason.UNKNOWN_AGENCY, detail)
        return None

    def _policy_problem(self, inquiry: InquiryRecord, service: Service) -> Rejection | None:
        requester, subsystem = inquiry.requester_agency, inquiry.requester_subsystem
        purposes = self._catalog.allowed_purposes(requester, subsystem, service.id)
        who = requester if subsystem is None else f"{requester}/{subsystem}"
        if not purposes:
            return Rejection(RejectReason.NOT_ALLOWED, f"{who} may not ask {service.id}")
        if inquiry.purpose not in purposes:
            detail = f"{who} may not ask {service.id} for purpose {inquiry.purpose!r}"
            return Rejection(RejectReason.PURPOSE_NOT_ALLOWED, detail)
        return None

    def _signature_problem(
        self, inquiry: InquiryRecord, service: Service, headers: Headers, value: bytes | None
    ) -> Rejection | None:
        iid, who = inquiry.inquiry_id, inquiry.requester_agency
        check = self._verify(RecordType.REQUEST, iid, who, service, headers=headers, value=value)
        return None if check.ok else Rejection(RejectReason.BAD_SIGNATURE, str(check.problem))

    def _verify(
        self,
        record_type: RecordType,
        inquiry_id: str,
        agency: str,
        service: Service,
        *,
        headers: Headers,
        value: bytes | None,
    ) -> SignatureCheck:
        """``agency``'s signature on a request or response, against its catalog keys."""
        return verify_record(
            record_type,
            inquiry_id=inquiry_id,
            signer_code=agency,
            signer=self._catalog.agency(agency),
            service=service,
            headers=headers,
            value=value,
        )

    def _payload_problem(self, payload: bytes, service: Service) -> Rejection | None:
        if len(payload) > self._max_payload_bytes:
            detail = f"payload is {len(payload)} bytes, over the limit of {self._max_payload_bytes}"
            return Rejection(RejectReason.PAYLOAD_TOO_LARGE, detail)
        problem = self._invalid_payload(payload, service.request_fingerprints, "request", service)
        return None if problem is None else Rejection(RejectReason.INVALID_PAYLOAD, problem)

    # --- responses ------------------------------------------------------------------------

    def check_response(
        self,
        response: ResponseArrived,
        *,
        claimed_responder: str,
        headers: Headers = (),
        value: bytes | None = None,
    ) -> str | None:
        """Why a response is unusable (the correlator's ``invalid``), or None if it is fine.

        *response* has the topic's agency as ``responder_agency``; *claimed_responder* is the
        agency the envelope names; *headers* and *value* are the record's (its signature).
        """
        if claimed_responder != response.responder_agency:
            return (
                f"the envelope names responder {claimed_responder}, "
                f"but {response.responder_agency} wrote it"
            )
        service = self._catalog.service(response.service_code, response.service_version)
        sid = format_service_id(response.service_code, response.service_version)
        if service is None:
            return f"{sid} is not in the catalog"
        iid, who = response.inquiry_id, response.responder_agency
        check = self._verify(RecordType.RESPONSE, iid, who, service, headers=headers, value=value)
        if not check.ok:
            return f"bad signature: {check.problem}"
        if response.payload is None:
            return "a FOUND response carries no payload" if response.status == "FOUND" else None
        if len(response.payload) > self._max_payload_bytes:
            return f"payload is {len(response.payload)} bytes, over the limit"
        fingerprints = service.response_fingerprints
        return self._invalid_payload(response.payload, fingerprints, "response", service)

    # --- shared ---------------------------------------------------------------------------

    def _invalid_payload(
        self, payload: bytes, fingerprints: frozenset[bytes], role: str, service: Service
    ) -> str | None:
        """Why ``payload`` is not a record of one of ``fingerprints``, or None.

        The body is read without logical types (the values are thrown away; only whether the
        bytes are a record of that schema matters), which is half the cost of a full decode.
        So a value of the right Avro type outside its logical type's range (a ``uuid`` string
        that is no UUID, a date past year 9999) passes here and fails at the provider.
        """
        if len(payload) < _HEADER_SIZE or payload[:2] != SINGLE_OBJECT_MAGIC:
            return (
                f"payload is not a valid {service.id} {role}: it lacks the single-object "
                "header c301 + fingerprint"
            )
        fingerprint = payload[2:_HEADER_SIZE]
        if fingerprint not in fingerprints:
            return f"payload schema {fingerprint.hex()} is not a {role} revision of {service.id}"
        problem = self._read(payload, fingerprint)
        return None if problem is None else f"payload is not a valid {service.id} {role}: {problem}"

    def _read(self, payload: bytes, fingerprint: bytes) -> str | None:
        parsed = self._readers.get(fingerprint)
        if parsed is None:
            try:
                schema = self._codec.store.by_fingerprint(fingerprint)
            except CodecError as exc:  # the catalog names a schema the store lacks
                return exc.message
            parsed = self._readers[fingerprint] = raw_schema(schema)
        buffer = io.BytesIO(payload)
        buffer.seek(_HEADER_SIZE)
        try:
            value = schemaless_reader(buffer, parsed, None)
        except Exception as exc:  # any failure on untrusted bytes means: not this schema
            return f"body does not decode: {type(exc).__name__}: {exc}"
        if buffer.tell() != len(payload):
            return f"{len(payload) - buffer.tell()} bytes left after the body"
        return None if isinstance(value, dict) else "the body is not a record"


def _sid(inquiry: InquiryRecord) -> str:
    return format_service_id(inquiry.service_code, inquiry.service_version)


def _malformed(inquiry: InquiryRecord, key: bytes | None) -> Rejection | None:
    if not _canonical_uuid(inquiry.inquiry_id):
        detail = f"inquiry id {inquiry.inquiry_id!r} is not a UUID in canonical text form"
        return Rejection(RejectReason.MALFORMED, detail)
    if key != inquiry.inquiry_id.encode():
        return Rejection(RejectReason.MALFORMED, "the record key is not the inquiry id")
    reply_to = inquiry.reply_to
    if reply_to is not None and _REPLY_TO.fullmatch(reply_to) is None:
        return Rejection(RejectReason.MALFORMED, "reply-to is not 1 to 128 printable ASCII")
    return None


def _canonical_uuid(text: str) -> bool:
    return _CANONICAL_UUID.fullmatch(text) is not None


def _provider_problem(inquiry: InquiryRecord, service: Service) -> Rejection | None:
    if inquiry.provider_agency != service.provider:
        detail = f"{service.id} is provided by {service.provider}, not {inquiry.provider_agency}"
        return Rejection(RejectReason.UNKNOWN_SERVICE, detail)
    asked = inquiry.provider_subsystem
    if asked is not None and asked != service.provider_subsystem:
        detail = f"{service.id} is provided by {service.provider_ref}, not {asked!r}"
        return Rejection(RejectReason.UNKNOWN_SERVICE, detail)
    return None


def _deadline_problem(
    inquiry: InquiryRecord, service: Service, written_at_ms: int | None = None
) -> Rejection | None:
    now, deadline = inquiry.received_at_ms, inquiry.deadline_ms
    # A timestamp after the read (a writer's clock ahead) or none (<= 0) counts as the read.
    written = now if written_at_ms is None or not 0 < written_at_ms < now else written_at_ms
    if deadline <= written:
        detail = f"the deadline passed {now - deadline} ms before the bus read the request"
        return Rejection(RejectReason.DEADLINE_PAST, detail)
    limit_ms = round(service.max_deadline_seconds * 1000)
    if deadline - now > limit_ms:
        detail = (
            f"the deadline is {(deadline - now) / 1000:.3f} s away; "
            f"{service.id} allows at most {service.max_deadline_seconds:g} s"
        )
        return Rejection(RejectReason.DEADLINE_TOO_FAR, detail)
    return None
