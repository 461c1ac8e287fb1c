"""Ed25519 signatures: the signed byte layout, the header, verification, keys and the catalog."""

from __future__ import annotations

import base64
import hashlib
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from hypothesis import given
from hypothesis import strategies as st

from exchange._catalog_model import Agency, AgencyKey, Catalog
from exchange._errors import ConfigError
from exchange._settings import ExchangeSettings
from exchange._signing import (
    CONTEXT,
    SignatureCheck,
    Signer,
    check_signature,
    format_header,
    key_id_of,
    parse_header,
    signed_bytes,
)
from exchange._signing_keys import (
    catalog_snippet,
    load_signer,
    signer_for,
    signer_from_text,
    write_key_pair,
)
from exchange._wire import HEADER_SIGNATURE, RecordType

ID = "3f1c9a52-7b4e-4d1a-9c2e-5a8b6d0e4f17"
VALUE = b"\xc3\x01" + bytes(range(8)) + b"a request body"
SEED = bytes(range(32))  # a fixed key, so the known-answer test below is stable
SIGNER = Signer("TAX", Ed25519PrivateKey.from_private_bytes(SEED))
ROTATED = Signer.generate("TAX")


def keys(*signers: Signer) -> dict[str, Ed25519PublicKey]:
    return {s.key_id: Ed25519PublicKey.from_public_bytes(s.public_key) for s in signers}


def check(
    headers: list[tuple[str, bytes]],
    *,
    known: dict[str, Ed25519PublicKey] | None = None,
    required: bool = False,
    record_type: RecordType = RecordType.REQUEST,
    inquiry_id: str = ID,
    agency: str = "TAX",
    value: bytes = VALUE,
) -> SignatureCheck:
    return check_signature(
        headers,
        keys=keys(SIGNER) if known is None else known,
        required=required,
        record_type=record_type,
        inquiry_id=inquiry_id,
        agency=agency,
        value=value,
    )


def signed(signer: Signer = SIGNER, value: bytes = VALUE) -> list[tuple[str, bytes]]:
    return signer.signed_headers(RecordType.REQUEST, ID, value, [("exchange-type", b"request")])


# --- layout and header ---------------------------------------------------------------------------


def test_signed_bytes_follow_the_documented_layout() -> None:
    """Context, three length-prefixed ASCII fields, a 4-byte big-endian length, the value."""
    data = signed_bytes(RecordType.RESPONSE, ID, "NOCR", b"xyz")
    expected = (
        b"inquiry-exchange/signature/v1\x00"
        + b"\x08response"
        + b"\x24"
        + ID.encode()
        + b"\x04NOCR"
        + b"\x00\x00\x00\x03xyz"
    )
    assert data == expected
    assert data.startswith(CONTEXT)
    assert len(CONTEXT) == 30


def test_known_answer_for_other_language_clients() -> None:
    """The seed 00 01 .. 1f signs the request value c3 01 of the documented inquiry to these
    exact bytes (Ed25519 is deterministic): docs/wire-format.md quotes them."""
    assert base64.b64encode(SIGNER.public_key) == b"A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg="
    assert SIGNER.key_id == "56475aa75463474c"
    assert SIGNER.sign(RecordType.REQUEST, ID, b"\xc3\x01") == (
        b"v1:56475aa75463474c:8cNU8g1j6AjIjs1Zw43/UCgLxtr/oomJrJ9METGEXd0cTNAvUat734ZTIx95EJ7W"
        b"bdgIbFdem24r9Va+5qu2Cg=="
    )


def test_the_key_id_is_sha256_of_the_raw_public_key() -> None:
    """16 hex digits: the first 8 bytes of SHA-256 over the 32-byte public key."""
    assert SIGNER.key_id == key_id_of(SIGNER.public_key)
    assert SIGNER.key_id == hashlib.sha256(SIGNER.public_key).digest()[:8].hex()


def test_header_round_trips() -> None:
    """format_header and parse_header are inverse: key id and 64 signature bytes."""
    signature = bytes(range(64))
    raw = format_header("00112233aabbccdd", signature)
    assert raw.startswith(b"v1:00112233aabbccdd:")
    assert parse_header(raw) == ("00112233aabbccdd", signature)


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (b"v1:abc", "not 'v1:"),
        (b"v2:abc:" + base64.b64encode(bytes(64)), "unknown signature version"),
        (b"v1:abc:not base64!", "not base64"),
        (b"v1:abc:" + base64.b64encode(bytes(63)), "64 bytes"),
        ("v1:é:x".encode(), "not 'v1:"),
    ],
)
def test_malformed_headers_are_refused(raw: bytes, problem: str) -> None:
    """A header that does not parse is refused with a reason, whatever the policy."""
    found = check([(HEADER_SIGNATURE, raw)])
    assert not found.ok
    assert problem in str(found.problem)


# --- verification --------------------------------------------------------------------------------


def test_a_signed_record_verifies_and_names_its_key() -> None:
    """The signer's own record verifies with its catalog key; the key id is reported."""
    assert check(signed()) == SignatureCheck(SIGNER.key_id)


@pytest.mark.parametrize(
    ("record_type", "inquiry_id", "agency", "value"),
    [
        (RecordType.REQUEST, ID, "TAX", VALUE + b"!"),
        (RecordType.REQUEST, ID.replace("3f", "4f"), "TAX", VALUE),
        (RecordType.REQUEST, ID, "NOCR", VALUE),
        (RecordType.RESPONSE, ID, "TAX", VALUE),
    ],
    ids=["value", "inquiry-id", "agency", "type"],
)
def test_any_change_to_what_is_signed_fails(
    record_type: RecordType, inquiry_id: str, agency: str, value: bytes
) -> None:
    """The value and each identifying field are covered: changing one breaks the signature."""
    found = check(
        signed(), record_type=record_type, inquiry_id=inquiry_id, agency=agency, value=value
    )
    assert not found.ok
    assert "does not verify" in str(found.problem)


def test_an_unknown_key_id_is_refused() -> None:
    """A signature by a key the catalog does not list for the agency is refused."""
    found = check(signed(ROTATED))
    assert (found.key_id, found.ok) == (ROTATED.key_id, False)
    assert "not one of TAX's keys" in str(found.problem)


def test_rotated_keys_both_verify_while_both_are_listed() -> None:
    """During a rotation the catalog lists the old and the new key; either signature passes."""
    both = keys(SIGNER, ROTATED)
    assert check(signed(SIGNER), known=both).key_id == SIGNER.key_id
    assert check(signed(ROTATED), known=both).key_id == ROTATED.key_id


def test_a_forged_signature_with_a_listed_key_id_is_refused() -> None:
    """Another key's signature under the listed key id does not verify."""
    forged = ROTATED.sign(RecordType.REQUEST, ID, VALUE).replace(
        ROTATED.key_id.encode(), SIGNER.key_id.encode()
    )
    assert not check([(HEADER_SIGNATURE, forged)]).ok


def test_missing_signature_is_a_problem_only_when_required() -> None:
    """Optional: unsigned passes with no key id; required: unsigned is refused."""
    assert check([]) == SignatureCheck()
    found = check([], required=True)
    assert found.problem == "TAX must sign its requests"


def test_a_bad_signature_is_refused_even_where_optional() -> None:
    """A signature that is present is always verified."""
    assert not check(signed(), required=False, value=b"other").ok


@given(st.data())
def test_any_single_bit_flip_fails_verification(data: st.DataObject) -> None:
    """Flipping any one bit of the value or of the signature header breaks verification."""
    value = data.draw(st.binary(min_size=1, max_size=64), label="value")
    header = SIGNER.sign(RecordType.REQUEST, ID, value)
    target = data.draw(st.sampled_from(["value", "header"]), label="target")
    original = value if target == "value" else header
    bit = data.draw(st.integers(0, len(original) * 8 - 1), label="bit")
    flipped = bytearray(original)
    flipped[bit // 8] ^= 1 << (bit % 8)
    if target == "value":
        found = check([(HEADER_SIGNATURE, header)], value=bytes(flipped))
    else:
        found = check([(HEADER_SIGNATURE, bytes(flipped))], value=value)
    assert not found.ok


# --- keys ----------------------------------------------------------------------------------------


def test_key_files_round_trip_and_stay_private(tmp_path: Path) -> None:
    """keys new writes a 0600 PEM and a base64 public key; both load back to the same key."""
    private, public = write_key_pair(SIGNER, tmp_path)
    assert private.name == f"TAX-{SIGNER.key_id}.key"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert base64.b64decode(public.read_text()) == SIGNER.public_key
    settings = ExchangeSettings(signing_key_file=private)
    loaded = load_signer("TAX", settings)
    assert loaded is not None
    assert loaded.key_id == SIGNER.key_id


def test_a_key_file_is_never_overwritten(tmp_path: Path) -> None:
    """Writing the same key pair twice fails instead of replacing the private key."""
    write_key_pair(SIGNER, tmp_path)
    with pytest.raises(FileExistsError):
        write_key_pair(SIGNER, tmp_path)


def test_the_key_may_come_from_the_environment_as_base64_seed() -> None:
    """EXCHANGE_SIGNING_KEY holds the base64 seed (or PEM); it wins over the file."""
    settings = ExchangeSettings(signing_key=base64.b64encode(SEED).decode())
    loaded = load_signer("TAX", settings)
    assert loaded is not None
    assert loaded.key_id == SIGNER.key_id
    assert load_signer("TAX", ExchangeSettings()) is None


@pytest.mark.parametrize(
    "text", ["not a key", base64.b64encode(bytes(31)).decode(), "-----BEGIN x"]
)
def test_unusable_keys_are_config_errors_without_key_material(text: str) -> None:
    """A broken key is a ConfigError whose message quotes nothing of it."""
    with pytest.raises(ConfigError) as caught:
        signer_from_text("TAX", text)
    assert text not in caught.value.message


def test_the_signer_never_shows_its_key() -> None:
    """repr names the agency and key id only."""
    shown = repr(SIGNER)
    assert shown == f"Signer(agency='TAX', key_id='{SIGNER.key_id}')"
    assert base64.b64encode(SEED).decode() not in shown


def test_a_key_of_another_agency_is_refused() -> None:
    """The SDK refuses to sign TAX's records with NOCR's key."""
    catalog_free = Signer.generate("NOCR")
    with pytest.raises(ConfigError, match="NOCR's, not TAX's"):
        signer_for("TAX", ExchangeSettings(), _catalog(), catalog_free)


# --- catalog -------------------------------------------------------------------------------------


def _catalog() -> Catalog:
    return Catalog(agencies=(Agency(code="TAX", name="Tax", keys=(_key(SIGNER),)),))


def _key(signer: Signer) -> AgencyKey:
    return AgencyKey(id=signer.key_id, public_key=base64.b64encode(signer.public_key).decode())


def test_the_catalog_snippet_is_a_valid_key_entry() -> None:
    """What keys new prints parses as the agency's key entry."""
    snippet = catalog_snippet(SIGNER)
    assert f"id: {SIGNER.key_id}" in snippet
    assert base64.b64encode(SIGNER.public_key).decode() in snippet


def test_a_key_id_that_does_not_match_its_key_is_refused() -> None:
    """The catalog checks each key id against its public key (a typo cannot slip in)."""
    with pytest.raises(ValueError, match="key id of this public key"):
        AgencyKey(id="0" * 16, public_key=base64.b64encode(SIGNER.public_key).decode())


def test_an_agency_lists_several_keys_for_rotation() -> None:
    """Every listed key verifies; they are looked up by key id."""
    agency = Agency(code="TAX", name="Tax", keys=(_key(SIGNER), _key(ROTATED)))
    assert set(agency.verifiers) == {SIGNER.key_id, ROTATED.key_id}
