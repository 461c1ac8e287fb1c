"""A scripted provider: the other side of a requester connector under test.

A real :class:`exchange.Provider` answering one service on ``in.<provider>``. What it answers
is scripted per event, by the inquiry's ``case_reference`` (the requester kit's event key)::

    script = ScriptedProvider(settings, "nocr.person.verify.v1", answer={...})
    script.plan("k-1", Reply.FOUND, delay=0.5)        # answered after half a second
    script.plan("k-2", Reply.SILENT)                  # never answered: the bus times it out
    async with script:
        ...
    script.ids["k-1"]                                 # the inquiry ids that reached it

It records every inquiry id it was handed per key, and how often each id was handed to it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from exchange._answer import Answer, Inquiry
from exchange._catalog import load_catalog
from exchange._provider import Provider
from exchange._settings import ExchangeSettings
from exchange.testing import sample_payload

__all__ = ["Reply", "ScriptedProvider"]

#: The error code a FAILED event's provider answers with.
FAILED_CODE = "KIT_REFUSED"


class Reply(enum.StrEnum):
    """What the scripted provider does with one event's inquiry."""

    FOUND = "FOUND"
    NOT_FOUND = "NOT_FOUND"
    ERROR = "ERROR"  # Answer.error(FAILED_CODE): the requester gets FAILED
    SILENT = "SILENT"  # no answer before the deadline: the bus settles TIMED_OUT


@dataclass(frozen=True, slots=True)
class _Plan:
    reply: Reply
    delay: float


class ScriptedProvider:
    """The service's provider agency, answering as scripted (see the module docstring)."""

    def __init__(
        self,
        settings: ExchangeSettings,
        service: str,
        *,
        answer: Mapping[str, Any] | None = None,
    ) -> None:
        catalog = load_catalog(settings.catalog_path, settings.schemas_path)
        found = catalog.service(service)
        if found is None:
            raise ValueError(f"{service} is not in the catalog at {settings.catalog_path}")
        self.agency = found.provider
        self.service = service
        if answer is None:
            answer = sample_payload(
                catalog, service, "response", schemas_path=settings.schemas_path
            )
        self.answer = dict(answer)
        self.ids: dict[str, set[uuid.UUID]] = {}
        self.calls: Counter[uuid.UUID] = Counter()
        #: Keys answered so far (an answer returned to the SDK, on its way to the bus).
        self.answered: set[str] = set()
        self._plans: dict[str, _Plan] = {}
        # A short drain: a SILENT call in progress need not hold the shutdown up.
        self._provider = Provider(
            agency=self.agency, settings=settings, catalog=catalog, drain_timeout=1.0
        )
        self._provider.handles(service)(self._handle)

    def plan(self, key: str, reply: Reply, *, delay: float = 0.0) -> None:
        """How to answer the event ``key`` (unplanned events are answered FOUND at once)."""
        self._plans[key] = _Plan(reply, delay)

    def reached(self, keys: list[str]) -> bool:
        """True when an inquiry of every key has reached the provider."""
        return all(key in self.ids for key in keys)

    async def _handle(self, inquiry: Inquiry) -> Answer:
        key = inquiry.case_reference or ""
        self.ids.setdefault(key, set()).add(inquiry.id)
        self.calls[inquiry.id] += 1
        plan = self._plans.get(key, _Plan(Reply.FOUND, 0.0))
        if plan.reply is Reply.SILENT:  # past the deadline: the provider cancels this call
            left = (inquiry.deadline - dt.datetime.now(dt.UTC)).total_seconds()
            await asyncio.sleep(max(left, 0.0) + 30.0)
        await asyncio.sleep(plan.delay)
        self.answered.add(key)
        if plan.reply is Reply.NOT_FOUND:
            return Answer.not_found()
        if plan.reply is Reply.ERROR:
            return Answer.error(FAILED_CODE, "the scripted provider refuses this one")
        return Answer.found(dict(self.answer))

    async def __aenter__(self) -> ScriptedProvider:
        await self._provider.__aenter__()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._provider.__aexit__(kind, exc, tb)
