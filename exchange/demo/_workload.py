"""The demo's workload: which inquiries to send, drawn from the catalog and the registers (pure).

Most inquiries are what the catalog allows (a requester asks a service it holds a policy for,
with one of the policy's purposes) about records the provider holds; a share asks about
records it does not hold (``NOT_FOUND``). Deliberate mistakes, so every path of the bus shows:

- **not allowed**: a requester asks a service it holds no policy for (``NOT_ALLOWED``);
- **wrong purpose**: a requester asks a service it may ask, for a purpose its policy does not
  list (``PURPOSE_NOT_ALLOWED``);
- **invalid payload**: a buggy client puts another service's request in the envelope; it is
  written raw, as the SDK refuses to send it (``INVALID_PAYLOAD``);
- **garbage**: records that are not inquiries at all land on an ``out`` topic; the workers
  dead-letter them (no outcome: nobody can be told).

The plan is a list, shuffled, drawn from ``seed``: the same arguments give the same workload.
"""

from __future__ import annotations

import datetime as dt
import enum
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from exchange._catalog_model import Catalog
from exchange._errors import ConfigError
from exchange.demo import _ids
from exchange.demo._data import SOLAR_YEAR, Registers
from exchange.demo._names import FEMALE_NAMES, LAST_NAMES, MALE_NAMES

__all__ = ["SERVICE_WEIGHTS", "Intent", "Mix", "Planned", "Workload", "plan_workload"]

#: How often each service is asked, relative to the others.
SERVICE_WEIGHTS = {
    "nocr.person.verify.v1": 30,
    "post.address.lookup.v1": 20,
    "police.vehicle.ownership.v1": 14,
    "companies.company.standing.v1": 12,
    "bankmelli.account.ownership.v1": 12,
    "tax.clearance.status.v1": 12,
}
#: The purpose a requester gives when it has no better one (never granted in the catalog).
STRAY_PURPOSE = "general-enquiry"


class Intent(enum.StrEnum):
    """What an inquiry of the workload is meant to show."""

    ASK = "ask"
    NOT_ALLOWED = "not-allowed"
    WRONG_PURPOSE = "wrong-purpose"
    INVALID_PAYLOAD = "invalid-payload"


@dataclass(frozen=True, slots=True)
class Mix:
    """Shares of the workload (of the inquiries sent; garbage records come on top)."""

    not_allowed: float = 0.025
    wrong_purpose: float = 0.025
    invalid_payload: float = 0.015
    #: Of the allowed inquiries: about records the provider does not hold.
    unknown_subject: float = 0.08
    #: Garbage records per inquiry.
    garbage: float = 0.004


@dataclass(frozen=True, slots=True)
class Planned:
    """One inquiry to send.

    ``payload`` fits ``service``'s request schema, except for ``INVALID_PAYLOAD``, where it
    fits ``payload_service``'s (the other service's request the buggy client wrote).
    """

    requester: str
    service: str
    purpose: str
    payload: dict[str, Any]
    intent: Intent
    subject: tuple[str, str] | None = None
    case_reference: str | None = None
    end_user_id: str | None = None
    payload_service: str | None = None

    @property
    def agency(self) -> str:
        """The requester's agency code."""
        return self.requester.partition("/")[0]

    @property
    def subsystem(self) -> str | None:
        """The requester's subsystem, if any."""
        return self.requester.partition("/")[2] or None


@dataclass(frozen=True, slots=True)
class Workload:
    """The inquiries to send, in order, and how many garbage records to write among them."""

    inquiries: list[Planned]
    garbage: int

    @property
    def requesters(self) -> list[str]:
        """Every requester (``AGENCY`` or ``AGENCY/subsystem``) the workload sends as."""
        return sorted({p.requester for p in self.inquiries})


Grants = dict[str, list[tuple[str, tuple[str, ...]]]]


def _grants(catalog: Catalog) -> Grants:
    """Service -> [(requester, purposes)] for the services the demo simulates."""
    grants: Grants = {service: [] for service in SERVICE_WEIGHTS}
    for policy in catalog.policies:
        if policy.service in grants:
            purposes = tuple(p.code for p in policy.purposes)
            grants[policy.service].append((policy.requester_ref, purposes))
    missing = [service for service, granted in grants.items() if not granted]
    if missing:
        raise ConfigError(f"the catalog grants nobody {', '.join(missing)}; use the demo catalog")
    return grants


class _Planner:
    """Draws the inquiries of one workload."""

    def __init__(self, catalog: Catalog, registers: Registers, rng: random.Random) -> None:
        self.catalog = catalog
        self.grants = _grants(catalog)
        self.rng = rng
        self.subjects = _Subjects(registers, rng)
        self.requesters = sorted({r for granted in self.grants.values() for r, _ in granted})
        self.case_numbers: dict[str, int] = {}
        self.forbidden = [
            (requester, service)
            for requester in self.requesters
            for service in SERVICE_WEIGHTS
            if not self._purposes(requester, service)
        ]
        if not self.forbidden:
            raise ConfigError("every requester may ask every service: nothing to refuse")

    def _service(self) -> str:
        services = list(SERVICE_WEIGHTS)
        return self.rng.choices(services, [SERVICE_WEIGHTS[s] for s in services])[0]

    def allowed(self, unknown_share: float) -> Planned:
        service = self._service()
        requester, purposes = self.rng.choice(self.grants[service])
        unknown = self.rng.random() < unknown_share
        payload, subject = self.subjects.payload(service, unknown=unknown)
        return self._planned(requester, service, self.rng.choice(purposes), payload, subject)

    def not_allowed(self) -> Planned:
        requester, service = self.rng.choice(self.forbidden)
        payload, subject = self.subjects.payload(service, unknown=False)
        purpose = self._own_purpose(requester)
        planned = self._planned(requester, service, purpose, payload, subject)
        return _with(planned, intent=Intent.NOT_ALLOWED)

    def wrong_purpose(self) -> Planned:
        planned = self.allowed(0.0)
        granted = self._purposes(planned.requester, planned.service)
        others = sorted(
            {p.code for pol in self.catalog.policies for p in pol.purposes} - set(granted)
        )
        purpose = self.rng.choice(others) if others else STRAY_PURPOSE
        return _with(planned, intent=Intent.WRONG_PURPOSE, purpose=purpose)

    def invalid_payload(self) -> Planned:
        planned = self.allowed(0.0)
        other = self.rng.choice([s for s in SERVICE_WEIGHTS if s != planned.service])
        payload, _ = self.subjects.payload(other, unknown=False)
        return _with(planned, intent=Intent.INVALID_PAYLOAD, payload=payload, payload_service=other)

    def _purposes(self, requester: str, service: str) -> frozenset[str]:
        agency, _, subsystem = requester.partition("/")
        return self.catalog.allowed_purposes(agency, subsystem or None, service)

    def _own_purpose(self, requester: str) -> str:
        mine = sorted(
            p
            for granted in self.grants.values()
            for r, purposes in granted
            if r == requester
            for p in purposes
        )
        return self.rng.choice(mine) if mine else STRAY_PURPOSE

    def _planned(
        self,
        requester: str,
        service: str,
        purpose: str,
        payload: dict[str, Any],
        subject: tuple[str, str] | None,
    ) -> Planned:
        agency = requester.partition("/")[0]
        number = self.case_numbers[agency] = self.case_numbers.get(agency, 0) + 1
        return Planned(
            requester=requester,
            service=service,
            purpose=purpose,
            payload=payload,
            intent=Intent.ASK,
            subject=subject,
            case_reference=f"{agency}-{SOLAR_YEAR}-{number:06d}",
            end_user_id=f"{agency.lower()}-officer-{self.rng.randrange(1, 60):03d}",
        )


def _with(planned: Planned, **changes: Any) -> Planned:
    values = {name: getattr(planned, name) for name in Planned.__dataclass_fields__}
    return Planned(**{**values, **changes})


class _Subjects:
    """Request payloads about records of the registers, or about records nobody holds."""

    def __init__(self, registers: Registers, rng: random.Random) -> None:
        self.r = registers
        self.rng = rng
        self.people = list(registers.people.values())
        self.lists: dict[str, list[Any]] = {
            "companies": list(registers.companies),
            "taxpayers": list(registers.taxpayers.values()),
            "vehicles": list(registers.vehicles),
            "addresses": list(registers.addresses),
            "accounts": list(registers.accounts.values()),
        }
        self.makers: dict[str, Callable[[bool], tuple[dict[str, Any], tuple[str, str]]]] = {
            "nocr.person.verify.v1": self._person,
            "companies.company.standing.v1": self._company,
            "tax.clearance.status.v1": self._taxpayer,
            "police.vehicle.ownership.v1": self._vehicle,
            "post.address.lookup.v1": self._address,
            "bankmelli.account.ownership.v1": self._account,
        }

    def payload(self, service: str, *, unknown: bool) -> tuple[dict[str, Any], tuple[str, str]]:
        return self.makers[service](unknown)

    def _fresh(self, make: Callable[[random.Random], str], taken: dict[str, Any]) -> str:
        while True:
            code = make(self.rng)
            if code not in taken:
                return code

    def _person(self, unknown: bool) -> tuple[dict[str, Any], tuple[str, str]]:
        rng = self.rng
        if unknown:
            national_id = self._fresh(_ids.national_id, self.r.people)
            payload = {
                "national_id": national_id,
                "birth_date": dt.date(1960, 1, 1) + dt.timedelta(days=rng.randrange(16_000)),
                "first_name": rng.choice(FEMALE_NAMES + MALE_NAMES),
                "last_name": rng.choice(LAST_NAMES),
                "father_name": None,
            }
            return payload, ("PERSON", national_id)
        person = rng.choice(self.people)
        first = person.first_name
        if rng.random() < 0.08:  # typed by hand: case and spelling drift
            first = first.lower().replace("ou", "u")
        born = person.birth_date
        if rng.random() < 0.03:
            born += dt.timedelta(days=rng.choice((-365, -1, 1, 30)))
        payload = {
            "national_id": person.national_id,
            "birth_date": born,
            "first_name": first,
            "last_name": person.last_name,
            "father_name": person.father_name if rng.random() < 0.5 else None,
        }
        return payload, ("PERSON", person.national_id)

    def _company(self, unknown: bool) -> tuple[dict[str, Any], tuple[str, str]]:
        companies = self.lists["companies"]
        code = (
            self._fresh(_ids.company_id, self.r.companies)
            if unknown
            else self.rng.choice(companies)
        )
        return {"national_company_id": code, "as_of": None}, ("COMPANY", code)

    def _taxpayer(self, unknown: bool) -> tuple[dict[str, Any], tuple[str, str]]:
        if unknown:
            kind, code = "PERSON", self._fresh(_ids.national_id, self.r.taxpayers)
        else:
            taxpayer = self.rng.choice(self.lists["taxpayers"])
            kind, code = taxpayer.kind, taxpayer.taxpayer_id
        up_to = self.rng.choice((None, None, SOLAR_YEAR - 1))
        payload = {"taxpayer_kind": kind, "taxpayer_id": code, "up_to_year": up_to}
        return payload, (kind, code)

    def _vehicle(self, unknown: bool) -> tuple[dict[str, Any], tuple[str, str]]:
        plates = self.lists["vehicles"]
        plate = self._fresh(_ids.plate, self.r.vehicles) if unknown else self.rng.choice(plates)
        return {"plate_number": plate, "on_date": None}, ("VEHICLE", plate)

    def _address(self, unknown: bool) -> tuple[dict[str, Any], tuple[str, str]]:
        codes = self.lists["addresses"]
        code = (
            self._fresh(_ids.postal_code, self.r.addresses) if unknown else self.rng.choice(codes)
        )
        return {"postal_code": code}, ("ADDRESS", code)

    def _account(self, unknown: bool) -> tuple[dict[str, Any], tuple[str, str]]:
        rng = self.rng
        if unknown:
            iban = self._fresh(_ids.iban, self.r.accounts)
            holder = rng.choice(self.people).national_id
        else:
            account = rng.choice(self.lists["accounts"])
            iban = account.iban
            holder = (
                rng.choice(account.holders)
                if rng.random() < 0.8
                else rng.choice(self.people).national_id
            )
        return {"iban": iban, "holder_id": holder}, ("ACCOUNT", iban)


def plan_workload(
    catalog: Catalog, registers: Registers, count: int, *, seed: int = 0, mix: Mix | None = None
) -> Workload:
    """``count`` inquiries in a shuffled order, and the number of garbage records."""
    if count < 1:
        raise ConfigError("the workload needs at least one inquiry")
    mix = mix or Mix()
    rng = random.Random(seed)  # noqa: S311  # a reproducible workload, not security
    planner = _Planner(catalog, registers, rng)
    special = [
        (round(count * mix.not_allowed), planner.not_allowed),
        (round(count * mix.wrong_purpose), planner.wrong_purpose),
        (round(count * mix.invalid_payload), planner.invalid_payload),
    ]
    inquiries = [make() for amount, make in special for _ in range(amount)]
    inquiries += [planner.allowed(mix.unknown_subject) for _ in range(count - len(inquiries))]
    rng.shuffle(inquiries)
    garbage = max(1, round(count * mix.garbage)) if mix.garbage > 0 else 0
    return Workload(inquiries[:count], garbage)
