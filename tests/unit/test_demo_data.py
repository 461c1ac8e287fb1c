"""The demo's registers and answers: valid ids, reproducible data, answers that fit the schemas."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from collections import Counter
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client import Counter as PromCounter

from exchange import Answer, AnswerStatus, ExchangeSettings, Inquiry
from exchange._catalog import Catalog, load_catalog
from exchange.demo import _ids
from exchange.demo._agencies import (
    SERVICES,
    DemoAgencies,
    LegacySystemError,
    MergedCollector,
    providers,
)
from exchange.demo._answers import lookup, name_match
from exchange.demo._data import Quirk, Registers, build_registers
from exchange.testing import check_answer, make_inquiry

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "schemas"
TODAY = dt.date(2026, 3, 21)


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(ROOT / "catalog" / "demo", SCHEMAS)


@pytest.fixture(scope="module")
def registers() -> Registers:
    return build_registers(today=TODAY)


def test_known_ids_validate_and_altered_ones_do_not() -> None:
    """Published examples pass each check-digit rule; one changed digit fails it."""
    assert _ids.is_national_id("0499370899")
    assert not _ids.is_national_id("0499370898")
    assert not _ids.is_national_id("1111111111")
    assert _ids.is_company_id("10380284790")
    assert not _ids.is_company_id("10380284791")
    assert _ids.is_iban("IR062960000000100324200001")
    assert not _ids.is_iban("IR072960000000100324200001")


def test_generated_ids_are_valid() -> None:
    """Every generator makes ids its own check accepts, in the documented shapes."""
    rng = random.Random(5)
    for _ in range(500):
        assert _ids.is_national_id(_ids.national_id(rng))
        assert _ids.is_company_id(_ids.company_id(rng))
        assert _ids.is_iban(_ids.iban(rng))
        code = _ids.postal_code(rng)
        assert len(code) == 10
        assert not set(code[:5]) & {"0", "2"}
        plate = _ids.plate(rng)
        assert plate[2] in _ids.PLATE_LETTERS
        assert plate[6] == "-"
        assert len(plate) == 9
        assert len(_ids.vin(rng, "NAA")) == 17


def test_same_seed_same_registers(registers: Registers) -> None:
    """The provider process and the workload build identical registers from the seed."""
    again = build_registers(today=TODAY)
    assert again == registers
    assert build_registers(seed=7, today=TODAY) != registers


def test_registers_hold_every_quirk_in_a_small_share(registers: Registers) -> None:
    """Stuck, broken and sluggish records exist, each well under a tenth of a register."""
    quirks = Counter(p.quirk for p in registers.people.values())
    total = len(registers.people)
    for quirk in Quirk:
        assert 0 < quirks[quirk] < total / 10
    assert any(t.under_review for t in registers.taxpayers.values())


def test_every_service_answers_within_its_response_schema(
    catalog: Catalog, registers: Registers
) -> None:
    """For records of each register, found or not, the answer passes check_answer."""
    from exchange.demo._workload import _Subjects

    agencies = DemoAgencies(registers)
    subjects = _Subjects(registers, random.Random(1))
    for service in SERVICES:
        for unknown in (False, True) * 20:
            payload, _subject = subjects.payload(service, unknown=unknown)
            record = lookup(registers, service, payload)
            answer = agencies.answer(service, record, payload)
            expected = AnswerStatus.NOT_FOUND if record is None else AnswerStatus.FOUND
            if service == "tax.clearance.status.v1" and record is not None:
                expected = answer.status  # a taxpayer of the other kind is not found
            assert answer.status is expected
            check_answer(catalog, service, answer, schemas_path=SCHEMAS)


def test_names_fold_to_similar() -> None:
    """Case and the ou/u spelling are SIMILAR; another name is DIFFERENT."""
    assert name_match("Kourosh", "Kourosh") == "EXACT"
    assert name_match("kurosh", "Kourosh") == "SIMILAR"
    assert name_match("Dariush", "Kourosh") == "DIFFERENT"


def _first(registers: Registers, quirk: Quirk | None) -> str:
    return next(p.national_id for p in registers.people.values() if p.quirk is quirk)


async def test_handlers_behave_as_their_records_quirk(registers: Registers) -> None:
    """A broken record raises, a stuck one outlasts any deadline, a plain one answers."""
    handler = DemoAgencies(registers).handler("nocr.person.verify.v1")

    def inquiry(national_id: str) -> Inquiry:
        person = registers.people.get(national_id)
        born = person.birth_date if person else dt.date(1990, 1, 1)
        payload = {"national_id": national_id, "birth_date": born}
        return make_inquiry(
            "nocr.person.verify.v1",
            {**payload, "first_name": "Sara", "last_name": "Ahmadi", "father_name": None},
        )

    plain = await handler(inquiry(_first(registers, None)))
    assert plain.status is AnswerStatus.FOUND
    with pytest.raises(LegacySystemError):
        await handler(inquiry(_first(registers, Quirk.BROKEN)))
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.3):
            await handler(inquiry(_first(registers, Quirk.STUCK)))
    unknown = await handler(inquiry("0499370899"))
    assert unknown == Answer.not_found()


async def test_taxpayers_under_review_are_deferred(registers: Registers) -> None:
    """The tax handler sends a taxpayer under review to the desk."""
    taxpayer = next(t for t in registers.taxpayers.values() if t.under_review)
    handler = DemoAgencies(registers).handler("tax.clearance.status.v1")
    payload = {"taxpayer_kind": taxpayer.kind, "taxpayer_id": taxpayer.taxpayer_id}
    answer = await handler(make_inquiry("tax.clearance.status.v1", payload))
    assert answer.status is AnswerStatus.DEFERRED


def test_providers_factory_builds_one_provider_per_agency() -> None:
    """Six services, six agencies from the catalog; one registry serves them all."""
    settings = ExchangeSettings(catalog_path=ROOT / "catalog" / "demo", schemas_path=SCHEMAS)
    registry = CollectorRegistry()
    built = providers(settings=settings, registry=registry)
    assert sorted(p.agency for p in built) == [
        "BANK-MELLI", "COMPANIES", "NOCR", "POLICE", "POST", "TAX",
    ]  # fmt: skip
    assert {m.name for m in registry.collect()} >= {"exchange_provider_handled"}


def test_merged_collector_adds_equal_series() -> None:
    """Series with the same labels in two registries are summed; others kept apart."""
    first, second = CollectorRegistry(), CollectorRegistry()
    for registry, agency in ((first, "NOCR"), (second, "TAX")):
        counter = PromCounter("demo_things", "Things.", ["agency", "kind"], registry=registry)
        counter.labels(agency, "a").inc(2)
        counter.labels("ANY", "b").inc(1)
    merged = CollectorRegistry()
    merged.register(MergedCollector([first, second]))
    assert merged.get_sample_value("demo_things_total", {"agency": "NOCR", "kind": "a"}) == 2
    assert merged.get_sample_value("demo_things_total", {"agency": "TAX", "kind": "a"}) == 2
    assert merged.get_sample_value("demo_things_total", {"agency": "ANY", "kind": "b"}) == 2
