"""What a provider's handler receives (:class:`Inquiry`) and returns (:class:`Answer`)."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any


class AnswerStatus(enum.StrEnum):
    """What a handler decided: an answer now, an error, or a person answers later."""

    FOUND = "FOUND"
    NOT_FOUND = "NOT_FOUND"
    ERROR = "ERROR"
    DEFERRED = "DEFERRED"


@dataclass(frozen=True, slots=True)
class Inquiry:
    """An inquiry routed to this provider by the bus, with its payload decoded."""

    id: uuid.UUID
    #: Requesting agency code (``TAX``) and optional subsystem (``registration``).
    requester: str
    requester_subsystem: str | None
    #: Full versioned service code (``nocr.person.verify.v1``).
    service: str
    purpose: str
    case_reference: str | None
    end_user_id: str | None
    #: ``(kind, id)`` of the person or company asked about, when given.
    subject: tuple[str, str] | None
    created_at: datetime
    deadline: datetime
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Answer:
    """A handler's result; build it with :meth:`found`, :meth:`not_found`, :meth:`error` or
    :meth:`defer`."""

    status: AnswerStatus
    payload: dict[str, Any] | None = None
    error_code: str | None = None
    error_message: str | None = None
    retriable: bool = False

    @classmethod
    def found(cls, payload: dict[str, Any]) -> Answer:
        """The provider has the record; ``payload`` fits the service's response schema."""
        return cls(AnswerStatus.FOUND, payload)

    @classmethod
    def not_found(cls, payload: dict[str, Any] | None = None) -> Answer:
        """The provider has no such record (an answer, not an error)."""
        return cls(AnswerStatus.NOT_FOUND, payload)

    @classmethod
    def error(cls, code: str, message: str = "", *, retriable: bool = False) -> Answer:
        """The provider cannot answer; the requester gets a ``FAILED`` outcome with ``code``."""
        return cls(AnswerStatus.ERROR, error_code=code, error_message=message, retriable=retriable)

    @classmethod
    def defer(cls) -> Answer:
        """A person will answer later (``answer_manually``); the inquiry waits on the desk."""
        return cls(AnswerStatus.DEFERRED)
