"""In-flight inquiries of one client and how their outcomes find their callers.

No Kafka here: the client registers each inquiry it sends, its reply reader calls
:meth:`InFlight.settle` for every outcome addressed to this instance, and a timer per inquiry
(``loop.call_later``: one ``TimerHandle``, no task) settles it locally as ``TIMED_OUT`` when
the caller stops waiting. The hot path costs one future, one handle and one dict entry.

Outcomes of inquiries sent with ``send()`` (no waiting caller) go to a queue that
``outcomes()`` drains.
"""

from __future__ import annotations

import asyncio
import time
import uuid

from exchange._outcome import Outcome, local_timeout


class _Waiter:
    """One inquiry in flight: where its outcome goes and what a local timeout reports."""

    __slots__ = ("future", "inquiry_id", "provider", "sent_at", "service", "timer")

    def __init__(
        self,
        inquiry_id: uuid.UUID,
        service: str,
        provider: str,
        future: asyncio.Future[Outcome] | None,
    ) -> None:
        self.inquiry_id = inquiry_id
        self.service = service
        self.provider = provider
        self.future = future
        self.sent_at = time.monotonic()
        self.timer: asyncio.TimerHandle | None = None


class InFlight:
    """Inquiry id (text) → the waiter of its outcome; late and foreign outcomes are dropped."""

    def __init__(self) -> None:
        self._waiters: dict[str, _Waiter] = {}
        self._stream: asyncio.Queue[Outcome] = asyncio.Queue()
        self.late = 0

    def __len__(self) -> int:
        return len(self._waiters)

    def __contains__(self, inquiry_id: str) -> bool:
        return inquiry_id in self._waiters

    def expect(
        self, inquiry_id: uuid.UUID, service: str, provider: str, timeout: float | None
    ) -> asyncio.Future[Outcome]:
        """Register an inquiry whose caller awaits the returned future."""
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._register(_Waiter(inquiry_id, service, provider, future), timeout)
        return future

    def expect_streamed(
        self, inquiry_id: uuid.UUID, service: str, provider: str, timeout: float | None
    ) -> None:
        """Register an inquiry whose outcome goes to :meth:`next_streamed`."""
        self._register(_Waiter(inquiry_id, service, provider, None), timeout)

    def _register(self, waiter: _Waiter, timeout: float | None) -> None:
        key = str(waiter.inquiry_id)
        self._waiters[key] = waiter
        if timeout is not None:
            waiter.timer = asyncio.get_running_loop().call_later(timeout, self._expire, key)

    def elapsed(self, inquiry_id: str) -> float | None:
        """Seconds since the inquiry was registered, or None if it is not in flight."""
        waiter = self._waiters.get(inquiry_id)
        return None if waiter is None else time.monotonic() - waiter.sent_at

    def settle(self, inquiry_id: str, outcome: Outcome) -> bool:
        """Deliver an outcome; False (and counted as late) when nobody waits for it."""
        waiter = self._waiters.pop(inquiry_id, None)
        if waiter is None:
            self.late += 1
            return False
        if waiter.timer is not None:
            waiter.timer.cancel()
        if waiter.future is None:
            self._stream.put_nowait(outcome)
        elif not waiter.future.done():
            waiter.future.set_result(outcome)
        return True

    def fail(self, inquiry_id: str, exc: BaseException) -> None:
        """The inquiry could not be sent: its caller gets ``exc``."""
        waiter = self._waiters.pop(inquiry_id, None)
        if waiter is None:
            return
        if waiter.timer is not None:
            waiter.timer.cancel()
        if waiter.future is not None and not waiter.future.done():
            waiter.future.set_exception(exc)

    def forget(self, inquiry_id: str) -> None:
        """The caller gave up (cancelled): drop the inquiry without an outcome."""
        waiter = self._waiters.pop(inquiry_id, None)
        if waiter is not None and waiter.timer is not None:
            waiter.timer.cancel()

    def fail_all(self, exc: BaseException) -> None:
        """The client is closing or its reply reader died: every waiting caller gets ``exc``."""
        for key in list(self._waiters):
            self.fail(key, exc)

    async def next_streamed(self) -> Outcome:
        """The next outcome of an inquiry sent without a waiting caller."""
        return await self._stream.get()

    def _expire(self, inquiry_id: str) -> None:
        waiter = self._waiters.pop(inquiry_id, None)
        if waiter is None:
            return
        outcome = local_timeout(
            waiter.inquiry_id,
            waiter.service,
            waiter.provider,
            time.monotonic() - waiter.sent_at,
        )
        if waiter.future is None:
            self._stream.put_nowait(outcome)
        elif not waiter.future.done():
            waiter.future.set_result(outcome)
