"""The stream worker's live catalog: the newest snapshot at start, then every new one.

At start the worker reads ``<prefix>.catalog`` from the beginning and routes with the newest
snapshot that validates; with none (an empty or missing topic) it reads the catalog files, and
its log says which (``catalog loaded``, ``origin``). A :class:`CatalogWatcher` then follows
the topic with a plain group-free consumer: each new snapshot is validated off the event loop
and handed to :meth:`~agents._bus.BusProcessor.use_catalog`, which swaps it in between two
batches. A snapshot that does not validate is refused (an error line with every problem,
``exchange_catalog_updates_total{result="refused"}``) and the worker keeps its catalog. If the
topic cannot be read, the watcher tries again every :data:`RETRY` seconds; routing goes on
with the catalog in use meanwhile.
"""

from __future__ import annotations

import asyncio
from typing import Final

import structlog

from agents._bus import BusProcessor
from exchange._catalog_topic import (
    CatalogFeed,
    LiveCatalog,
    decode_snapshot,
    load_files,
    load_snapshot,
)
from exchange._codec import Codec
from exchange._errors import BrokerError, CatalogError
from exchange._metrics import CatalogMetrics
from exchange._settings import ExchangeSettings

__all__ = ["RETRY", "CatalogWatcher", "start_catalog"]

log = structlog.get_logger("exchange.worker")

#: Seconds between attempts to read the catalog topic when it cannot be read.
RETRY: Final = 10.0
#: Longest wait of one fetch on the catalog topic, s (how soon a stop is noticed).
_POLL: Final = 1.0
#: Problems logged per refused snapshot (each is one line of `exchange catalog check`).
_MAX_PROBLEMS: Final = 50


async def start_catalog(
    settings: ExchangeSettings, topic: str, metrics: CatalogMetrics
) -> tuple[LiveCatalog, CatalogFeed | None]:
    """The catalog to start with, and the feed positioned after what it read (None if the
    topic could not be read; the watcher tries again)."""
    feed = CatalogFeed(settings, topic)
    values: list[bytes | None] = []
    try:
        values = await feed.start()
    except BrokerError as exc:
        log.warning("catalog topic not readable", topic=topic, error=exc.message)
        readable = False
    else:
        readable = True
    try:
        live = _newest_valid(values, settings, metrics)
        if live is None:
            live = load_files(settings.catalog_path, settings.schemas_path)
    except BaseException:
        await feed.stop()
        raise
    _loaded(live, metrics, topic=topic)
    return live, feed if readable else None


def _newest_valid(
    values: list[bytes | None], settings: ExchangeSettings, metrics: CatalogMetrics
) -> LiveCatalog | None:
    """The newest snapshot among ``values`` that validates; each refused one is logged."""
    for value in reversed(values):
        try:
            return load_snapshot(decode_snapshot(value), settings.schemas_path)
        except CatalogError as exc:
            _refused(exc, metrics)
    return None


class CatalogWatcher:
    """Follows the catalog topic and swaps new snapshots into the processor."""

    def __init__(
        self,
        processor: BusProcessor,
        settings: ExchangeSettings,
        topic: str,
        metrics: CatalogMetrics,
        *,
        current: LiveCatalog,
        feed: CatalogFeed | None,
    ) -> None:
        self._processor = processor
        self._settings = settings
        self._topic = topic
        self._metrics = metrics
        self._current = current
        self._feed = feed

    @property
    def current(self) -> LiveCatalog:
        """The catalog the processor routes with."""
        return self._current

    async def run(self) -> None:
        """Until cancelled: apply every new snapshot, in order."""
        try:
            while True:
                for value in await self._next_values():
                    await self._consider(value)
        finally:
            if self._feed is not None:
                await self._feed.stop()

    async def _next_values(self) -> list[bytes | None]:
        feed = self._feed
        if feed is None:
            await asyncio.sleep(RETRY)
            return await self._reattach()
        try:
            return await feed.poll(_POLL)
        except Exception as exc:  # aiokafka's errors; the catalog in use stays in use
            log.warning("catalog topic read failed", topic=self._topic, error=repr(exc))
            self._feed = None
            await feed.stop()
            return []

    async def _reattach(self) -> list[bytes | None]:
        feed = CatalogFeed(self._settings, self._topic)
        try:
            values = await feed.start()
        except BrokerError as exc:
            log.debug("catalog topic still not readable", topic=self._topic, error=exc.message)
            return []
        self._feed = feed
        log.info("following the catalog topic", topic=self._topic)
        return values[-1:]  # only the newest matters; an unchanged one is skipped

    async def _consider(self, value: bytes | None) -> None:
        try:
            snapshot = decode_snapshot(value)
            if snapshot.version == self._current.version:
                return
            # Parsing schemas and writing a temporary folder: off the loop, so batches go on.
            live = await asyncio.to_thread(load_snapshot, snapshot, self._settings.schemas_path)
        except CatalogError as exc:
            _refused(exc, self._metrics)
            return
        self._apply(live)

    def _apply(self, live: LiveCatalog) -> None:
        codec = Codec(live.store, max_record_bytes=self._settings.max_record_bytes)
        try:
            self._processor.use_catalog(live.catalog, codec)
        except Exception as exc:  # unforeseen; never stop routing for a catalog update
            _refused(CatalogError(f"cannot use the catalog: {exc!r}", problems=[]), self._metrics)
            return
        previous, self._current = self._current, live
        _loaded(live, self._metrics, topic=self._topic, previous=previous.version[:12])


def _loaded(
    live: LiveCatalog, metrics: CatalogMetrics, *, topic: str, previous: str | None = None
) -> None:
    catalog = live.catalog
    published = live.published_at
    metrics.published.set(0 if published is None else published.timestamp())
    if previous is not None:
        metrics.updates.labels("applied").inc()
    log.info(
        "catalog updated" if previous is not None else "catalog loaded",
        origin=live.origin,
        source=topic if live.origin == "topic" else "files",
        version=live.version[:12],
        previous=previous,
        published_at=None if published is None else published.isoformat(),
        agencies=len(catalog.agencies),
        services=len(catalog.services),
        policies=len(catalog.policies),
    )


def _refused(exc: CatalogError, metrics: CatalogMetrics) -> None:
    metrics.updates.labels("refused").inc()
    log.error(
        "catalog snapshot refused, catalog in use kept",
        error=exc.message,
        problems=exc.problems[:_MAX_PROBLEMS],
    )
