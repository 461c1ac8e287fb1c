"""The six simulated provider agencies: SDK providers answering from the demo's registers.

``exchange provide exchange.demo:providers`` runs them (that is what ``exchange demo`` does, in
a process of its own). Each handler looks the request up in its register, then behaves as the
legacy system behind that record does (:class:`~exchange.demo._data.Quirk`): a few
milliseconds for most records, up to 0.8 s for sluggish ones, a minute for stuck ones (the
SDK cancels the handler at the inquiry's deadline and the bus answers ``TIMED_OUT``), and an
exception for broken ones (the SDK turns it into ``FAILED`` with ``HANDLER_ERROR``). An unknown
key answers ``NOT_FOUND`` at once. The tax administration defers taxpayers under review to
its desk, where an officer answers them by hand (``answered_by=MANUAL``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from collections.abc import Iterable, Iterator
from typing import Any, cast

from prometheus_client import CollectorRegistry, Metric

from exchange._answer import Answer, Inquiry
from exchange._catalog import load_catalog
from exchange._errors import ConfigError
from exchange._provider import Handler, Provider
from exchange._settings import ExchangeSettings
from exchange.demo import _answers
from exchange.demo._data import (
    SOLAR_YEAR,
    Account,
    Address,
    Company,
    Person,
    Quirk,
    Registers,
    Taxpayer,
    Vehicle,
    build_registers,
)
from exchange.demo._ids import certificate_number

__all__ = ["SERVICES", "DemoAgencies", "LegacySystemError", "providers"]

#: The services the simulated agencies answer (their providers come from the catalog).
SERVICES = (
    "nocr.person.verify.v1",
    "companies.company.standing.v1",
    "tax.clearance.status.v1",
    "police.vehicle.ownership.v1",
    "post.address.lookup.v1",
    "bankmelli.account.ownership.v1",
)
#: How long a stuck legacy system takes: far past any deadline the demo sets.
STUCK_SECONDS = 60.0
SLUGGISH_SECONDS = (0.2, 0.8)
#: A healthy lookup.
LOOKUP_SECONDS = (0.001, 0.01)
#: Handlers running at once per agency: stuck lookups hold a slot until their deadline.
CONCURRENCY = 256


class LegacySystemError(Exception):
    """The legacy system behind a record failed (what a broken lookup raises)."""


class DemoAgencies:
    """The handlers of every simulated agency, over one set of registers."""

    def __init__(self, registers: Registers, *, seed: int = 0) -> None:
        self.registers = registers
        self._rng = random.Random(seed)  # noqa: S311  # simulated latency, not security

    def handler(self, service: str) -> Handler:
        """The async handler of ``service``."""
        if service not in SERVICES:
            raise ConfigError(f"the demo has no simulated provider for {service}")

        async def handle(inquiry: Inquiry) -> Answer:
            record = _answers.lookup(self.registers, service, inquiry.payload)
            if isinstance(record, Taxpayer) and record.under_review:
                return Answer.defer()  # an officer answers from the desk
            if record is not None:
                await self._legacy(getattr(record, "quirk", None), service)
            return self.answer(service, record, inquiry.payload)

        handle.__name__ = service.replace(".", "_")
        return handle

    async def _legacy(self, quirk: Quirk | None, service: str) -> None:
        if quirk is Quirk.BROKEN:
            raise LegacySystemError(f"the {service} register did not answer the lookup")
        if quirk is Quirk.STUCK:
            await asyncio.sleep(STUCK_SECONDS)
        elif quirk is Quirk.SLUGGISH:
            await asyncio.sleep(self._rng.uniform(*SLUGGISH_SECONDS))
        else:
            await asyncio.sleep(self._rng.uniform(*LOOKUP_SECONDS))

    def answer(self, service: str, record: object | None, payload: dict[str, Any]) -> Answer:
        """The register's answer to ``payload`` (no latency, no failure): also what an
        officer at the desk answers."""
        now = dt.datetime.now(dt.UTC)
        # lookup() found the record in this service's register, so the casts hold.
        match service:
            case "nocr.person.verify.v1":
                return _answers.person_verify(cast(Person | None, record), payload, now)
            case "companies.company.standing.v1":
                return _answers.company_standing(cast(Company | None, record))
            case "tax.clearance.status.v1":
                taxpayer = cast(Taxpayer | None, record)
                certificate = certificate_number(self._rng, SOLAR_YEAR)
                return _answers.tax_clearance(taxpayer, payload, now, certificate)
            case "police.vehicle.ownership.v1":
                return _answers.vehicle_ownership(cast(Vehicle | None, record), now.date())
            case "post.address.lookup.v1":
                return _answers.address_lookup(cast(Address | None, record))
            case _:
                account = cast(Account | None, record)
                return _answers.account_ownership(account, payload, now)


def providers(
    *, settings: ExchangeSettings, registry: CollectorRegistry | None = None
) -> list[Provider]:
    """One SDK :class:`~exchange.Provider` per simulated agency, handlers registered.

    The factory ``exchange provide exchange.demo:providers`` calls; their metrics are served
    together through ``registry``.
    """
    catalog = load_catalog(settings.catalog_path, settings.schemas_path)
    agencies = DemoAgencies(build_registers())
    built: dict[str, Provider] = {}
    registries: list[CollectorRegistry] = []
    for service in SERVICES:
        found = catalog.service(service)
        if found is None:
            raise ConfigError(f"the catalog has no service {service}; use the demo catalog")
        provider = built.get(found.provider)
        if provider is None:
            registries.append(CollectorRegistry())
            provider = Provider(
                agency=found.provider,
                settings=settings,
                catalog=catalog,
                registry=registries[-1],
                concurrency=CONCURRENCY,
            )
            built[found.provider] = provider
        provider.handles(service)(agencies.handler(service))
    if registry is not None:
        registry.register(MergedCollector(registries))
    return list(built.values())


class MergedCollector:
    """Serves several registries' metrics as one: families by name, equal series summed.

    Each provider registers its own metrics (they may not share a registry); agencies and
    services label most series apart, and the few that coincide (dead letters by reason) add
    up as they would across processes.
    """

    def __init__(self, registries: Iterable[CollectorRegistry]) -> None:
        self._registries = list(registries)

    def collect(self) -> Iterator[Metric]:
        """Every family once, its samples merged."""
        families: dict[str, Metric] = {}
        series: dict[tuple[str, str, tuple[tuple[str, str], ...]], int] = {}
        for registry in self._registries:
            for family in registry.collect():
                merged = families.get(family.name)
                if merged is None:
                    merged = Metric(family.name, family.documentation, family.type, family.unit)
                    families[family.name] = merged
                for sample in family.samples:
                    key = (family.name, sample.name, tuple(sorted(sample.labels.items())))
                    at = series.get(key)
                    if at is None:
                        series[key] = len(merged.samples)
                        merged.samples.append(sample)
                    else:
                        merged.samples[at] = _combine(merged.samples[at], sample)
        return iter(families.values())


def _combine(first: Any, second: Any) -> Any:
    if first.name.endswith("_created"):  # when the series began: the earlier one
        return first._replace(value=min(first.value, second.value))
    return first._replace(value=first.value + second.value)
