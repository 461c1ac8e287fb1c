"""The simulated agencies' registers: small, realistic, and the same in every process (pure).

:func:`build_registers` draws every register from one seeded generator, so the provider
process (which answers from them) and the workload (which asks about them) hold identical
data without sharing anything but the seed. Names are common Persian names in Latin script;
ids carry valid check digits (:mod:`exchange.demo._ids`).

A few records have a :class:`Quirk`: the legacy system behind them is slow, very slow (past
any deadline) or fails. That is how the demo gets its share of ``TIMED_OUT`` and ``FAILED``
outcomes: from the data, as a real register would, not from a coin toss per inquiry.
"""

from __future__ import annotations

import datetime as dt
import enum
import random
from dataclasses import dataclass
from decimal import Decimal

from exchange.demo import _ids
from exchange.demo._names import (
    CITIES,
    COLOURS,
    COMPANY_WORDS,
    FEMALE_NAMES,
    INSURERS,
    LAST_NAMES,
    MALE_NAMES,
    MODELS,
    STREETS,
)

__all__ = [
    "DEFAULT_SEED",
    "Account",
    "Address",
    "Company",
    "Debt",
    "Director",
    "Insurance",
    "Person",
    "Quirk",
    "Registers",
    "Taxpayer",
    "Vehicle",
    "build_registers",
]

#: The seed of the demo's data: the Iranian solar year the registers are "as of".
DEFAULT_SEED = 1404
SOLAR_YEAR = 1404


class Quirk(enum.StrEnum):
    """How the legacy system behind a record misbehaves."""

    SLUGGISH = "sluggish"  # answers in 0.2-0.8 s, within any deadline
    STUCK = "stuck"  # never answers in time: the bus times the inquiry out
    BROKEN = "broken"  # the lookup raises: the provider reports a failure


#: Share of records with each quirk.
QUIRK_SHARES = ((Quirk.STUCK, 0.015), (Quirk.BROKEN, 0.02), (Quirk.SLUGGISH, 0.04))


@dataclass(frozen=True, slots=True)
class Person:
    """An entry of the civil register."""

    national_id: str
    first_name: str
    last_name: str
    father_name: str
    birth_date: dt.date
    death_date: dt.date | None
    revoked: bool
    quirk: Quirk | None

    @property
    def full_name(self) -> str:
        """First and last name."""
        return f"{self.first_name} {self.last_name}"


@dataclass(frozen=True, slots=True)
class Director:
    """A board member or signatory of a company."""

    national_id: str
    full_name: str
    role: str
    signing_authority: bool
    appointed_on: dt.date
    term_ends_on: dt.date | None


@dataclass(frozen=True, slots=True)
class Company:
    """An entry of the companies register."""

    national_company_id: str
    registration_number: str
    registration_office: str
    name: str
    legal_form: str
    status: str
    registered_on: dt.date
    capital: Decimal
    address: str
    postal_code: str
    directors: tuple[Director, ...]
    last_change_on: dt.date | None
    quirk: Quirk | None


@dataclass(frozen=True, slots=True)
class Insurance:
    """A compulsory third-party policy."""

    insurer: str
    insurer_code: str
    policy_number: str
    valid_from: dt.date
    valid_until: dt.date


@dataclass(frozen=True, slots=True)
class Vehicle:
    """An entry of the vehicle register with its current owner."""

    plate: str
    vin: str
    make: str
    model: str
    model_year: int
    colour: str
    status: str
    owner_kind: str
    owner_id: str
    owner_name: str
    owned_since: dt.date
    insurance: Insurance | None
    quirk: Quirk | None


@dataclass(frozen=True, slots=True)
class Address:
    """An entry of the national address register."""

    postal_code: str
    province: str
    county: str
    city: str
    locality: str | None
    street: str
    alley: str | None
    building_number: str
    floor: str | None
    unit: str | None
    latitude: float
    longitude: float
    last_verified_on: dt.date | None
    quirk: Quirk | None


@dataclass(frozen=True, slots=True)
class Account:
    """An account at Bank Melli and who holds it."""

    iban: str
    holders: tuple[str, ...]
    status: str
    quirk: Quirk | None


@dataclass(frozen=True, slots=True)
class Debt:
    """One unpaid tax amount."""

    tax_kind: str
    tax_year: int
    amount: Decimal


@dataclass(frozen=True, slots=True)
class Taxpayer:
    """A taxpayer's file at the tax administration."""

    kind: str  # PERSON or COMPANY
    taxpayer_id: str
    debts: tuple[Debt, ...]
    open_assessments: int
    installment_plan: bool
    #: An officer reviews every answer about this taxpayer (the inquiry goes to the desk).
    under_review: bool
    quirk: Quirk | None


@dataclass(frozen=True, slots=True)
class Registers:
    """Every register of the demo, by the key each service is asked with."""

    people: dict[str, Person]
    companies: dict[str, Company]
    vehicles: dict[str, Vehicle]
    addresses: dict[str, Address]
    accounts: dict[str, Account]
    taxpayers: dict[str, Taxpayer]


def _quirk(rng: random.Random) -> Quirk | None:
    draw = rng.random()
    for quirk, share in QUIRK_SHARES:
        if draw < share:
            return quirk
        draw -= share
    return None


def _day(rng: random.Random, start: dt.date, end: dt.date) -> dt.date:
    return start + dt.timedelta(days=rng.randrange(max(1, (end - start).days)))


def _person(rng: random.Random, today: dt.date) -> Person:
    female = rng.random() < 0.5
    born = _day(rng, dt.date(1940, 1, 1), dt.date(2006, 1, 1))
    died = _day(rng, born + dt.timedelta(days=365 * 40), today) if rng.random() < 0.03 else None
    return Person(
        national_id=_ids.national_id(rng),
        first_name=rng.choice(FEMALE_NAMES if female else MALE_NAMES),
        last_name=rng.choice(LAST_NAMES),
        father_name=rng.choice(MALE_NAMES),
        birth_date=born,
        death_date=died if died is not None and died < today else None,
        revoked=rng.random() < 0.01,
        quirk=_quirk(rng),
    )


def _address(rng: random.Random, today: dt.date) -> Address:
    province, county, city, lat, lon, localities = rng.choice(CITIES)
    return Address(
        postal_code=_ids.postal_code(rng),
        province=province,
        county=county,
        city=city,
        locality=rng.choice(localities),
        street=rng.choice(STREETS),
        alley=rng.choice((None, f"{rng.randrange(1, 40)}th Alley", "Golestan Alley", "Yas Alley")),
        building_number=rng.choice((str(rng.randrange(1, 400)), f"{rng.randrange(1, 90)}/1")),
        floor=rng.choice((None, "1", "2", "3", "4", "G")),
        unit=rng.choice((None, "1", "2", "3", "4")),
        latitude=round(lat + rng.uniform(-0.05, 0.05), 6),
        longitude=round(lon + rng.uniform(-0.05, 0.05), 6),
        last_verified_on=rng.choice((None, _day(rng, dt.date(2018, 1, 1), today))),
        quirk=_quirk(rng),
    )


def _director(
    rng: random.Random, person: Person, role: str, registered: dt.date, today: dt.date
) -> Director:
    appointed = _day(rng, max(registered, today - dt.timedelta(days=1_800)), today)
    return Director(
        national_id=person.national_id,
        full_name=person.full_name,
        role=role,
        signing_authority=role in ("CEO", "CHAIR") or rng.random() < 0.2,
        appointed_on=appointed,
        term_ends_on=appointed + dt.timedelta(days=730) if role != "INSPECTOR" else None,
    )


def _company(rng: random.Random, people: list[Person], address: Address, today: dt.date) -> Company:
    board = rng.sample(people, rng.randrange(3, 6))
    roles = ("CEO", "CHAIR", "VICE_CHAIR", "BOARD_MEMBER", "INSPECTOR")
    first, second = rng.sample(COMPANY_WORDS, 2)
    form = rng.choices(
        ("PRIVATE_JOINT_STOCK", "LIMITED_LIABILITY", "PUBLIC_JOINT_STOCK", "COOPERATIVE"),
        (55, 30, 8, 7),
    )[0]
    registered = _day(rng, dt.date(1995, 1, 1), today)
    directors = tuple(
        _director(rng, p, r, registered, today) for p, r in zip(board, roles, strict=False)
    )
    return Company(
        national_company_id=_ids.company_id(rng),
        registration_number=str(rng.randrange(10_000, 700_000)),
        registration_office=f"{address.city} Companies Registration Office",
        name=f"{first} {second} Co.",
        legal_form=form,
        status=rng.choices(("ACTIVE", "SUSPENDED", "IN_LIQUIDATION", "DISSOLVED"), (85, 5, 5, 5))[
            0
        ],
        registered_on=registered,
        capital=Decimal(rng.choice((1, 10, 50, 100, 1_000, 10_000))) * 1_000_000,
        address=f"{address.street}, {address.building_number}, {address.city}",
        postal_code=address.postal_code,
        directors=directors,
        last_change_on=rng.choice((None, _day(rng, registered, today))),
        quirk=_quirk(rng),
    )


def _insurance(rng: random.Random, today: dt.date) -> Insurance | None:
    if rng.random() < 0.1:
        return None
    insurer, code = rng.choice(INSURERS)
    start = today - dt.timedelta(days=rng.randrange(0, 400))
    return Insurance(
        insurer=insurer,
        insurer_code=code,
        policy_number=f"{code}-{SOLAR_YEAR}-{rng.randrange(10**7):07d}",
        valid_from=start,
        valid_until=start + dt.timedelta(days=365),
    )


def _vehicle(rng: random.Random, owner: Person | Company, today: dt.date) -> Vehicle:
    make, wmi, model = rng.choice(MODELS)
    person = isinstance(owner, Person)
    return Vehicle(
        plate=_ids.plate(rng),
        vin=_ids.vin(rng, wmi),
        make=make,
        model=model,
        model_year=rng.randrange(2005, today.year + 1),
        colour=rng.choice(COLOURS),
        status=rng.choices(("REGISTERED", "REPORTED_STOLEN", "IMPOUNDED"), (96, 2, 2))[0],
        owner_kind="PERSON" if person else "COMPANY",
        owner_id=owner.national_id if isinstance(owner, Person) else owner.national_company_id,
        owner_name=owner.full_name if isinstance(owner, Person) else owner.name,
        owned_since=_day(rng, dt.date(2010, 1, 1), today),
        insurance=_insurance(rng, today),
        quirk=_quirk(rng),
    )


def _account(rng: random.Random, holders: tuple[str, ...]) -> Account:
    return Account(
        iban=_ids.iban(rng),
        holders=holders,
        status=rng.choices(("ACTIVE", "DORMANT", "BLOCKED", "CLOSED"), (88, 6, 3, 3))[0],
        quirk=_quirk(rng),
    )


def _taxpayer(rng: random.Random, kind: str, taxpayer_id: str) -> Taxpayer:
    debts: tuple[Debt, ...] = ()
    if rng.random() < 0.3:
        kinds = ("INCOME", "VALUE_ADDED", "PAYROLL") if kind == "PERSON" else (
            "CORPORATE_INCOME", "VALUE_ADDED", "PAYROLL")  # fmt: skip
        debts = tuple(
            Debt(rng.choice(kinds), SOLAR_YEAR - rng.randrange(1, 6), _rials(rng))
            for _ in range(rng.randrange(1, 4))
        )
    return Taxpayer(
        kind=kind,
        taxpayer_id=taxpayer_id,
        debts=debts,
        open_assessments=rng.choices((0, 1, 2), (80, 15, 5))[0],
        installment_plan=bool(debts) and rng.random() < 0.4,
        under_review=rng.random() < 0.05,
        quirk=_quirk(rng),
    )


def _rials(rng: random.Random) -> Decimal:
    return Decimal(rng.randrange(5, 5_000)) * 1_000_000


def build_registers(seed: int = DEFAULT_SEED, *, today: dt.date | None = None) -> Registers:
    """Every register, drawn from ``seed``; the same seed and day give the same data."""
    rng = random.Random(seed)  # noqa: S311  # reproducible sample data, not security
    today = today or dt.date.today()
    people = [_person(rng, today) for _ in range(2_000)]
    addresses = [_address(rng, today) for _ in range(1_500)]
    companies = [_company(rng, people, rng.choice(addresses), today) for _ in range(240)]
    owners: list[Person | Company] = [*people[:800], *companies[:100]]
    vehicles = [_vehicle(rng, rng.choice(owners), today) for _ in range(900)]
    accounts = [_account(rng, _holders(rng, people, companies)) for _ in range(1_500)]
    taxpayers = [_taxpayer(rng, "PERSON", p.national_id) for p in people[:1_000]]
    taxpayers += [_taxpayer(rng, "COMPANY", c.national_company_id) for c in companies]
    return Registers(
        people={p.national_id: p for p in people},
        companies={c.national_company_id: c for c in companies},
        vehicles={v.plate: v for v in vehicles},
        addresses={a.postal_code: a for a in addresses},
        accounts={a.iban: a for a in accounts},
        taxpayers={t.taxpayer_id: t for t in taxpayers},
    )


def _holders(rng: random.Random, people: list[Person], companies: list[Company]) -> tuple[str, ...]:
    if rng.random() < 0.1:
        return (rng.choice(companies).national_company_id,)
    count = 2 if rng.random() < 0.15 else 1
    return tuple(p.national_id for p in rng.sample(people, count))
