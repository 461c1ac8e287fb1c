"""What a requester asks (:class:`InquirySpec`) and what it gets back (:class:`Outcome`).

Plain frozen values with no I/O: the client builds them from decoded envelopes, tests and
user code build them directly.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from exchange._errors import InquiryFailedError, InquiryRejectedError, InquiryTimeoutError
from exchange._signing import SignedProof


class OutcomeKind(enum.StrEnum):
    """The four terminal outcomes of an inquiry."""

    ANSWERED = "ANSWERED"
    REJECTED = "REJECTED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"


@dataclass(frozen=True, slots=True)
class InquirySpec:
    """One inquiry to send: what :meth:`ExchangeClient.inquire` takes as arguments, as a value.

    ``service`` is the full versioned code (``nocr.person.verify.v1``); ``deadline`` overrides
    the service's default deadline on the bus (an aware datetime). ``inquiry_id`` is the
    inquiry's id when the caller chooses it (a connector derives it from the legacy event, so
    sending the same event again is recognised as a duplicate); unset: a fresh uuid4.
    """

    service: str
    payload: dict[str, Any]
    purpose: str
    case_reference: str | None = None
    end_user_id: str | None = None
    subject: tuple[str, str] | None = None
    deadline: datetime | None = None
    inquiry_id: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """The one terminal outcome of an inquiry, as the requester sees it.

    ``local`` is true for a ``TIMED_OUT`` decided by this client because the caller stopped
    waiting; the bus still settles that inquiry, and its outcome is then dropped as late.
    """

    inquiry_id: uuid.UUID
    kind: OutcomeKind
    service: str
    provider: str
    #: ``FOUND`` or ``NOT_FOUND`` for ``ANSWERED``; ``ERROR`` for most ``FAILED``.
    status: str | None = None
    #: The provider's response payload, decoded with its schema (``ANSWERED`` only).
    payload: dict[str, Any] | None = None
    #: Machine-readable reason of a ``REJECTED`` outcome (``NOT_ALLOWED`` …).
    reject_reason: str | None = None
    #: The provider's error code of a ``FAILED`` outcome (``HANDLER_ERROR`` …).
    error_code: str | None = None
    error_message: str | None = None
    #: ``AUTOMATIC`` or ``MANUAL`` when a provider answered.
    answered_by: str | None = None
    detail: str | None = None
    settled_at: datetime | None = None
    local: bool = False
    #: Seconds from sending to receiving this outcome, measured by this client.
    elapsed: float | None = field(default=None, compare=False)
    #: The key id of the provider's signature on its answer, verified by this client against
    #: the catalog; None when the answer came unsigned (or its signature did not check out).
    signed_by: str | None = None
    #: The provider's signature header and the exact response it covers: keep it to prove
    #: what the provider answered (``docs/architecture.md``, "Signatures").
    proof: SignedProof | None = field(default=None, compare=False, repr=False)

    @property
    def answered(self) -> bool:
        """True for ``ANSWERED`` (whatever the status)."""
        return self.kind is OutcomeKind.ANSWERED

    @property
    def found(self) -> bool:
        """True when the provider answered ``FOUND``."""
        return self.kind is OutcomeKind.ANSWERED and self.status == "FOUND"

    def raise_for_kind(self) -> Outcome:
        """Return ``self`` if answered; raise the matching ``InquiryError`` subclass otherwise."""
        if self.kind is OutcomeKind.ANSWERED:
            return self
        if self.kind is OutcomeKind.TIMED_OUT:
            raise InquiryTimeoutError(f"inquiry {self.inquiry_id} timed out ({self.service})")
        if self.kind is OutcomeKind.FAILED:
            raise InquiryFailedError(
                f"inquiry {self.inquiry_id} failed at {self.provider}: {self.error_code}",
                code=self.error_code or "UNKNOWN",
            )
        raise InquiryRejectedError(
            f"inquiry {self.inquiry_id} rejected by the bus: {self.reject_reason}",
            reason=self.reject_reason or "UNKNOWN",
        )


def local_timeout(inquiry_id: uuid.UUID, service: str, provider: str, elapsed: float) -> Outcome:
    """The ``TIMED_OUT`` outcome a client decides when the caller stops waiting."""
    return Outcome(
        inquiry_id=inquiry_id,
        kind=OutcomeKind.TIMED_OUT,
        service=service,
        provider=provider,
        detail="no outcome within the caller's timeout",
        local=True,
        elapsed=elapsed,
    )
