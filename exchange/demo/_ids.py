"""Identifiers as Iranian registers write them, with their check digits (pure).

The demo's data sets use these so that every id looks and validates like a real one:

- **national id** (*kod-e melli*, ten digits): the last digit checks the first nine:
  ``s = Σ dᵢ·(10-i) mod 11`` for i = 0..8; the check digit is ``s`` if ``s < 2``, else ``11 - s``.
- **national company id** (*shenase-ye melli*, eleven digits): with ``k = d₉ + 2`` and weights
  29, 27, 23, 19, 17 repeated, ``s = Σ (dᵢ + k)·wᵢ mod 11`` for i = 0..9 (10 counts as 0).
- **IBAN** (ISO 13616): ``IR``, two check digits (mod 97), then 22 digits: ``0``, the bank's
  two-digit code (Bank Melli: 17) and the account.
- **postal code**: ten digits, the first five without 0 or 2, as Iran Post assigns them.
- **plate**: two digits, the series letter, three digits, ``-``, the province code
  (``12ب345-67``), the register's normalised form.
- **VIN**: 17 characters, with the check digit in position 9 as North American VINs carry it.
"""

from __future__ import annotations

import random
import string

__all__ = [
    "PLATE_LETTERS",
    "certificate_number",
    "company_id",
    "iban",
    "is_company_id",
    "is_iban",
    "is_national_id",
    "national_id",
    "plate",
    "postal_code",
    "vin",
]

#: Series letters on civilian plates.
PLATE_LETTERS = "بجدسصطقلمنوهی"
_COMPANY_WEIGHTS = (29, 27, 23, 19, 17, 29, 27, 23, 19, 17)
_VIN_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)
_VIN_VALUES = {
    **{str(d): d for d in range(10)},
    **dict(zip("ABCDEFGH", range(1, 9), strict=True)),
    **dict(zip("JKLMN", range(1, 6), strict=True)),
    "P": 7,
    "R": 9,
    **dict(zip("STUVWXYZ", range(2, 10), strict=True)),
}
_VIN_CHARS = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"  # I, O and Q are never used
_MELLI_BANK = "17"


def _national_check(first9: str) -> int:
    s = sum(int(d) * (10 - i) for i, d in enumerate(first9)) % 11
    return s if s < 2 else 11 - s


def national_id(rng: random.Random) -> str:
    """A valid ten-digit national id (never one digit repeated, which registers refuse)."""
    while True:
        first9 = f"{rng.randrange(1, 10**9):09d}"
        code = first9 + str(_national_check(first9))
        if len(set(code)) > 1:
            return code


def is_national_id(code: str) -> bool:
    """Whether ``code`` is ten digits whose check digit is right."""
    if len(code) != 10 or not code.isdigit() or len(set(code)) == 1:
        return False
    return int(code[9]) == _national_check(code[:9])


def _company_check(first10: str) -> int:
    k = int(first10[9]) + 2
    s = sum((int(d) + k) * w for d, w in zip(first10, _COMPANY_WEIGHTS, strict=True)) % 11
    return 0 if s == 10 else s


def company_id(rng: random.Random) -> str:
    """A valid eleven-digit national company id (they start with 10 or 14)."""
    first10 = rng.choice(("10", "14")) + f"{rng.randrange(10**8):08d}"
    return first10 + str(_company_check(first10))


def is_company_id(code: str) -> bool:
    """Whether ``code`` is eleven digits whose check digit is right."""
    if len(code) != 11 or not code.isdigit():
        return False
    return int(code[10]) == _company_check(code[:10])


def _iban_check(bban: str) -> str:
    # Letters count as 10..35: I = 18, R = 27; "IR00" moves to the end.
    number = int(bban + "1827" + "00")
    return f"{98 - number % 97:02d}"


def iban(rng: random.Random) -> str:
    """A valid Iranian IBAN at Bank Melli: ``IR`` + check + ``017`` + 19 digits."""
    bban = "0" + _MELLI_BANK + f"{rng.randrange(10**19):019d}"
    return "IR" + _iban_check(bban) + bban


def is_iban(code: str) -> bool:
    """Whether ``code`` is an Iranian IBAN whose check digits are right."""
    if len(code) != 26 or not code.startswith("IR") or not code[2:].isdigit():
        return False
    return code[2:4] == _iban_check(code[4:])


def postal_code(rng: random.Random) -> str:
    """Ten digits, the first five drawn from 1 and 3-9."""
    head = "".join(rng.choice("13456789") for _ in range(5))
    return head + f"{rng.randrange(1, 10**5):05d}"


def plate(rng: random.Random) -> str:
    """A civilian plate in the register's form, e.g. ``12ب345-67``."""
    letter = rng.choice(PLATE_LETTERS)
    return f"{rng.randrange(11, 100)}{letter}{rng.randrange(111, 1000)}-{rng.randrange(10, 100)}"


def vin(rng: random.Random, wmi: str) -> str:
    """A 17-character VIN of the manufacturer ``wmi`` (``NAA`` IKCO, ``NAS`` SAIPA …)."""
    body = list(wmi + "".join(rng.choice(_VIN_CHARS) for _ in range(14)))
    body[8] = "0"
    total = sum(_VIN_VALUES[c] * w for c, w in zip(body, _VIN_WEIGHTS, strict=True)) % 11
    body[8] = "X" if total == 10 else str(total)
    return "".join(body)


def certificate_number(rng: random.Random, year: int) -> str:
    """A tax clearance certificate number: solar year, office and a serial."""
    office = rng.choice(string.ascii_uppercase[:6])
    return f"TC-{year}-{office}{rng.randrange(10**6):06d}"
