"""Identifiers of the catalog: their formats, validators, and conversions.

Identifiers::

    agency       NOCR, BANK-MELLI          upper-case letters/digits, single hyphens
    subsystem    identity, loans           lower-case letters/digits, single hyphens
    agency ref   TAX, TAX/registration     agency, optionally "/" subsystem
    service code nocr.person.verify        lower-case dotted segments, at least two
    service id   nocr.person.verify.v1     code + ".v" + version (version >= 1)
    purpose      tax-registration          lower-case words joined by hyphens
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, Field

__all__ = [
    "AgencyCode",
    "PurposeCode",
    "ServiceCode",
    "ServiceId",
    "SubsystemCode",
    "Text",
    "format_ref",
    "format_service_id",
    "split_ref",
    "split_ref_field",
    "split_service_id",
]

_AGENCY = re.compile(r"[A-Z][A-Z0-9]*(?:-[A-Z0-9]+)*")
_SUBSYSTEM = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*")
_SEGMENT = r"[a-z][a-z0-9_]*"
_SERVICE_CODE = re.compile(rf"{_SEGMENT}(?:\.{_SEGMENT})+")
_VERSION_SEGMENT = re.compile(r"v[0-9]+")
_SERVICE_ID = re.compile(rf"(?P<code>{_SEGMENT}(?:\.{_SEGMENT})+)\.v(?P<version>[1-9][0-9]*)")
_PURPOSE = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*")

# Agency codes name Kafka topics and principals; keep them short enough for both.
_MAX_AGENCY = 32
_MAX_CODE = 64
_MAX_SERVICE_CODE = 100


def _agency_code(value: str) -> str:
    if len(value) > _MAX_AGENCY or not _AGENCY.fullmatch(value):
        raise ValueError(
            f"agency code {value!r} must be upper-case letters and digits, optionally joined "
            f"by single hyphens, starting with a letter, at most {_MAX_AGENCY} characters "
            "(e.g. NOCR, BANK-MELLI)"
        )
    return value


def _subsystem_code(value: str) -> str:
    if len(value) > _MAX_CODE or not _SUBSYSTEM.fullmatch(value):
        raise ValueError(
            f"subsystem code {value!r} must be lower-case letters and digits, optionally "
            f"joined by single hyphens, starting with a letter (e.g. registration)"
        )
    return value


def _service_code(value: str) -> str:
    if len(value) > _MAX_SERVICE_CODE or not _SERVICE_CODE.fullmatch(value):
        raise ValueError(
            f"service code {value!r} must be at least two dot-separated lower-case segments "
            "of letters, digits and underscores, each starting with a letter "
            "(e.g. nocr.person.verify)"
        )
    # A segment like "v2" would make "<code>.v<version>" ambiguous to read back.
    if any(_VERSION_SEGMENT.fullmatch(part) for part in value.split(".")):
        raise ValueError(f"service code {value!r} must not contain a version-like segment")
    return value


def _service_id(value: str) -> str:
    if split_service_id(value) is None:
        raise ValueError(
            f"service id {value!r} must be a service code followed by .v and the version "
            "(e.g. nocr.person.verify.v1)"
        )
    return value


def _purpose_code(value: str) -> str:
    if len(value) > _MAX_CODE or not _PURPOSE.fullmatch(value):
        raise ValueError(
            f"purpose code {value!r} must be lower-case words of letters and digits joined "
            "by single hyphens (e.g. tax-registration)"
        )
    return value


AgencyCode = Annotated[str, AfterValidator(_agency_code)]
SubsystemCode = Annotated[str, AfterValidator(_subsystem_code)]
ServiceCode = Annotated[str, AfterValidator(_service_code)]
ServiceId = Annotated[str, AfterValidator(_service_id)]
PurposeCode = Annotated[str, AfterValidator(_purpose_code)]
Text = Annotated[str, Field(min_length=1)]


def split_service_id(service_id: str) -> tuple[str, int] | None:
    """``"nocr.person.verify.v1"`` → ``("nocr.person.verify", 1)``; None if malformed."""
    match = _SERVICE_ID.fullmatch(service_id)
    if match is None or any(_VERSION_SEGMENT.fullmatch(part) for part in match["code"].split(".")):
        return None
    return match["code"], int(match["version"])


def format_service_id(code: str, version: int) -> str:
    """``("nocr.person.verify", 1)`` → ``"nocr.person.verify.v1"``."""
    return f"{code}.v{version}"


def split_ref(ref: str) -> tuple[str, str | None]:
    """``"TAX/registration"`` → ``("TAX", "registration")``; ``"TAX"`` → ``("TAX", None)``."""
    agency, sep, subsystem = ref.partition("/")
    return agency, (subsystem if sep else None)


def format_ref(agency: str, subsystem: str | None) -> str:
    return agency if subsystem is None else f"{agency}/{subsystem}"


def split_ref_field(data: Any, field: str) -> Any:
    """Accept ``field: AGENCY/subsystem`` in a mapping, as the YAML files write it."""
    if isinstance(data, dict) and isinstance(data.get(field), str) and "/" in data[field]:
        sub_field = f"{field}_subsystem"
        if data.get(sub_field) is not None:
            raise ValueError(f"give the subsystem either in {field} or in {sub_field}")
        agency, subsystem = split_ref(data[field])
        return {**data, field: agency, sub_field: subsystem}
    return data
