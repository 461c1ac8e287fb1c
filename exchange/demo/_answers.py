"""What each simulated agency answers, from its register (pure: no sleeping, no Kafka).

One function per service takes the register and the request payload and returns the
:class:`~exchange.Answer`; :mod:`exchange.demo._agencies` wraps them in handlers that add the
legacy systems' latency and failures.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from exchange._answer import Answer
from exchange.demo._data import (
    SOLAR_YEAR,
    Account,
    Address,
    Company,
    Person,
    Registers,
    Taxpayer,
    Vehicle,
)

__all__ = [
    "account_ownership",
    "address_lookup",
    "company_standing",
    "name_match",
    "person_verify",
    "tax_clearance",
    "vehicle_ownership",
]


def _normal(name: str) -> str:
    folded = unicodedata.normalize("NFKD", name).casefold()
    letters = "".join(c for c in folded if c.isalpha())
    return letters.replace("ou", "u").replace("ee", "i").replace("y", "i")


def name_match(asked: str, recorded: str) -> str:
    """``EXACT``, ``SIMILAR`` (same letters once case, accents and common spellings are
    folded: Kourosh/Kurosh) or ``DIFFERENT``."""
    if asked == recorded:
        return "EXACT"
    return "SIMILAR" if _normal(asked) == _normal(recorded) else "DIFFERENT"


def person_verify(person: Person | None, payload: dict[str, Any], now: dt.datetime) -> Answer:
    """``nocr.person.verify.v1``: match flags only, never the recorded values."""
    if person is None:
        return Answer.not_found()
    father = payload.get("father_name")
    return Answer.found(
        {
            "national_id": person.national_id,
            "national_id_status": "REVOKED" if person.revoked else "VALID",
            "birth_date_match": payload["birth_date"] == person.birth_date,
            "first_name_match": name_match(payload["first_name"], person.first_name),
            "last_name_match": name_match(payload["last_name"], person.last_name),
            "father_name_match": None if father is None else name_match(father, person.father_name),
            "alive": person.death_date is None,
            "death_date": person.death_date,
            "verified_at": now,
        }
    )


def company_standing(company: Company | None) -> Answer:
    """``companies.company.standing.v1``: registration data, standing and the board."""
    if company is None:
        return Answer.not_found()
    return Answer.found(
        {
            "national_company_id": company.national_company_id,
            "registration_number": company.registration_number,
            "registration_office": company.registration_office,
            "name": company.name,
            "legal_form": company.legal_form,
            "status": company.status,
            "registered_on": company.registered_on,
            "registered_capital": company.capital,
            "registered_address": company.address,
            "postal_code": company.postal_code,
            "directors": [
                {
                    "national_id": d.national_id,
                    "full_name": d.full_name,
                    "role": d.role,
                    "signing_authority": d.signing_authority,
                    "appointed_on": d.appointed_on,
                    "term_ends_on": d.term_ends_on,
                }
                for d in company.directors
            ],
            "last_change_on": company.last_change_on,
        }
    )


def tax_clearance(
    taxpayer: Taxpayer | None, payload: dict[str, Any], now: dt.datetime, certificate: str
) -> Answer:
    """``tax.clearance.status.v1``: cleared, or what is owed (debts up to ``up_to_year``)."""
    if taxpayer is None or taxpayer.kind != payload["taxpayer_kind"]:
        return Answer.not_found()
    up_to = payload.get("up_to_year") or SOLAR_YEAR
    debts = [d for d in taxpayer.debts if d.tax_year <= up_to]
    principal = sum((d.amount for d in debts), Decimal(0))
    penalties = (principal * Decimal("0.1")).quantize(Decimal(1))
    cleared = not debts and taxpayer.open_assessments == 0
    return Answer.found(
        {
            "taxpayer_id": taxpayer.taxpayer_id,
            "cleared": cleared,
            "certificate_number": certificate if cleared else None,
            "certificate_valid_until": (now + dt.timedelta(days=90)).date() if cleared else None,
            "principal_owed": principal,
            "penalties_owed": penalties,
            "total_owed": principal + penalties,
            "open_assessments": taxpayer.open_assessments,
            "installment_plan_active": taxpayer.installment_plan,
            "debts": [
                {"tax_kind": d.tax_kind, "tax_year": d.tax_year, "amount": d.amount} for d in debts
            ],
            "checked_at": now,
        }
    )


def vehicle_ownership(vehicle: Vehicle | None, today: dt.date) -> Answer:
    """``police.vehicle.ownership.v1``: the vehicle, its owner and its insurance."""
    if vehicle is None:
        return Answer.not_found()
    cover = vehicle.insurance
    insured = cover is not None and cover.valid_from <= today <= cover.valid_until
    return Answer.found(
        {
            "plate_number": vehicle.plate,
            "vin": vehicle.vin,
            "make": vehicle.make,
            "model": vehicle.model,
            "model_year": vehicle.model_year,
            "colour": vehicle.colour,
            "vehicle_status": vehicle.status,
            "owner": {
                "kind": vehicle.owner_kind,
                "national_id": vehicle.owner_id,
                "name": vehicle.owner_name,
                "owned_since": vehicle.owned_since,
            },
            "insurance": None
            if cover is None
            else {
                "insurer": cover.insurer,
                "insurer_code": cover.insurer_code,
                "policy_number": cover.policy_number,
                "valid_from": cover.valid_from,
                "valid_until": cover.valid_until,
            },
            "insured": insured,
        }
    )


def address_lookup(address: Address | None) -> Answer:
    """``post.address.lookup.v1``: the structured address of a postal code."""
    if address is None:
        return Answer.not_found()
    return Answer.found(
        {
            "postal_code": address.postal_code,
            "province": address.province,
            "county": address.county,
            "city": address.city,
            "locality": address.locality,
            "street": address.street,
            "alley": address.alley,
            "building_number": address.building_number,
            "floor": address.floor,
            "unit": address.unit,
            "location": {"latitude": address.latitude, "longitude": address.longitude},
            "last_verified_on": address.last_verified_on,
        }
    )


def account_ownership(account: Account | None, payload: dict[str, Any], now: dt.datetime) -> Answer:
    """``bankmelli.account.ownership.v1``: yes or no, joint or sole; never other holders."""
    if account is None:
        return Answer.not_found()
    return Answer.found(
        {
            "iban": account.iban,
            "owns": payload["holder_id"] in account.holders,
            "joint_account": len(account.holders) > 1,
            "account_status": account.status,
            "checked_at": now,
        }
    )


def lookup(registers: Registers, service: str, payload: dict[str, Any]) -> object | None:
    """The register record a request is about, or None when the register has none."""
    keys: dict[str, tuple[Mapping[str, object], str]] = {
        "nocr.person.verify.v1": (registers.people, "national_id"),
        "companies.company.standing.v1": (registers.companies, "national_company_id"),
        "tax.clearance.status.v1": (registers.taxpayers, "taxpayer_id"),
        "police.vehicle.ownership.v1": (registers.vehicles, "plate_number"),
        "post.address.lookup.v1": (registers.addresses, "postal_code"),
        "bankmelli.account.ownership.v1": (registers.accounts, "iban"),
    }
    table, field = keys[service]
    return table.get(payload[field])
