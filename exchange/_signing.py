"""Optional end-to-end Ed25519 signatures on requests and responses (non-repudiation).

Pure values and functions, no I/O (keys are read from files in :mod:`exchange._signing_keys`).
The layout below is the contract with clients in other languages and is documented in
``docs/wire-format.md`` ("Signatures"); changing it is a breaking change, hence the version.

What is signed (version 1)::

    "inquiry-exchange/signature/v1" 0x00      context, 30 bytes: domain separation
    len(type)      1 byte   type       ASCII  "request" or "response"
    len(id)        1 byte   inquiry id ASCII  36-character lower-case text form
    len(agency)    1 byte   agency     ASCII  the signer: the requester of a request, the
                                              responder (provider) of a response
    len(value)     4 bytes  big-endian
    value                   the record's Kafka value, byte for byte

Each field is length-prefixed, so no two different inputs give the same bytes. The bus fills
type, id and agency from what it trusts (the decoded record type, the envelope's inquiry id,
which must equal the key, and the agency of the ``out`` topic), not from headers.

The header ``exchange-signature`` carries ``v1:<key id>:<signature>``, ASCII: the key id is 16
lower-case hex digits (the first 8 bytes of SHA-256 over the 32-byte raw public key, so it
names exactly one key), the signature is the 64-byte Ed25519 signature in standard base64 with
padding (88 characters).
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from exchange._wire import HEADER_SIGNATURE, RecordType, header_value

__all__ = [
    "CONTEXT",
    "SIGNATURE_VERSION",
    "SignatureCheck",
    "SignaturePolicy",
    "SignedProof",
    "Signer",
    "check_signature",
    "format_header",
    "key_id_of",
    "parse_header",
    "public_key_from_text",
    "signature_text",
    "signed_bytes",
]

#: The version tag of the layout and of the header; a new layout gets a new tag.
SIGNATURE_VERSION: Final = "v1"
CONTEXT: Final = b"inquiry-exchange/signature/v1\x00"
_KEY_ID_BYTES: Final = 8
_SIGNATURE_BYTES: Final = 64
_PUBLIC_KEY_BYTES: Final = 32


class SignaturePolicy(enum.StrEnum):
    """Whether the catalog demands signatures (``signatures:`` on an agency or a service)."""

    #: A record may be unsigned; a signature that is present is verified all the same.
    OPTIONAL = "optional"
    #: A record without a valid signature is refused.
    REQUIRED = "required"


def key_id_of(public_key: bytes) -> str:
    """The key id of a 32-byte raw Ed25519 public key: 16 hex digits of its SHA-256."""
    return hashlib.sha256(public_key).digest()[:_KEY_ID_BYTES].hex()


def public_key_from_text(text: str) -> bytes:
    """The 32 raw bytes of a public key written in standard base64; ValueError otherwise."""
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except binascii.Error as exc:
        raise ValueError(f"not base64: {exc}") from exc
    if len(raw) != _PUBLIC_KEY_BYTES:
        raise ValueError(f"an Ed25519 public key is 32 bytes, this one is {len(raw)}")
    return raw


def _short(text: str) -> bytes:
    raw = text.encode("ascii", errors="backslashreplace")
    if len(raw) > 255:  # the one-byte length prefix
        raise ValueError("identifying field longer than 255 bytes")
    return bytes((len(raw),)) + raw


def signed_bytes(record_type: RecordType, inquiry_id: str, agency: str, value: bytes) -> bytes:
    """The exact bytes an Ed25519 signature covers (see the module docstring)."""
    return b"".join(
        (
            CONTEXT,
            _short(record_type.value),
            _short(inquiry_id),
            _short(agency),
            len(value).to_bytes(4, "big"),
            value,
        )
    )


def format_header(key_id: str, signature: bytes) -> bytes:
    """The ``exchange-signature`` header value for a signature made with key ``key_id``."""
    return f"{SIGNATURE_VERSION}:{key_id}:{base64.b64encode(signature).decode()}".encode()


def parse_header(raw: bytes) -> tuple[str, bytes]:
    """The key id and signature of a header value; ValueError naming what is wrong."""
    try:
        version, key_id, encoded = raw.decode("ascii").split(":")
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValueError("the signature header is not 'v1:<key id>:<base64>'") from exc
    if version != SIGNATURE_VERSION:
        raise ValueError(f"unknown signature version {version!r}")
    try:
        signature = base64.b64decode(encoded, validate=True)
    except binascii.Error as exc:
        raise ValueError("the signature is not base64") from exc
    if len(signature) != _SIGNATURE_BYTES:
        raise ValueError(f"an Ed25519 signature is 64 bytes, this one is {len(signature)}")
    return key_id, signature


class Signer:
    """One agency's private key: signs the records it writes. Never printed or logged."""

    __slots__ = ("_key", "agency", "key_id", "public_key")

    def __init__(self, agency: str, key: Ed25519PrivateKey) -> None:
        self.agency = agency
        self._key = key
        self.public_key = key.public_key().public_bytes_raw()
        self.key_id = key_id_of(self.public_key)

    @classmethod
    def generate(cls, agency: str) -> Signer:
        """A signer with a new random key (tests, ``exchange keys new``)."""
        return cls(agency, Ed25519PrivateKey.generate())

    def sign(self, record_type: RecordType, inquiry_id: str, value: bytes) -> bytes:
        """The ``exchange-signature`` header value for one record this agency writes."""
        signature = self._key.sign(signed_bytes(record_type, inquiry_id, self.agency, value))
        return format_header(self.key_id, signature)

    def signed_headers(
        self,
        record_type: RecordType,
        inquiry_id: str,
        value: bytes,
        headers: list[tuple[str, bytes]],
    ) -> list[tuple[str, bytes]]:
        """``headers`` with this record's signature appended."""
        return [*headers, (HEADER_SIGNATURE, self.sign(record_type, inquiry_id, value))]

    def private_bytes(self) -> bytes:
        """The raw 32-byte private key (to write a key file); handle with care."""
        return self._key.private_bytes_raw()

    def __repr__(self) -> str:  # never the key itself
        return f"Signer(agency={self.agency!r}, key_id={self.key_id!r})"


@dataclass(frozen=True, slots=True)
class SignatureCheck:
    """What checking one record's signature found.

    ``key_id`` is the verified key's id, None when the record carried no signature;
    ``problem`` says why the record must be refused, None when it may go on.
    """

    key_id: str | None = None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        """True when the record may go on (verified, or unsigned where that is allowed)."""
        return self.problem is None


@dataclass(frozen=True, slots=True)
class SignedProof:
    """What a requester keeps to prove a provider's answer: the provider's ``key_id``, its
    ``exchange-signature`` header and the exact ``response`` record value it covers."""

    key_id: str
    signature: bytes
    response: bytes


_UNSIGNED = SignatureCheck()


def check_signature(
    headers: Iterable[tuple[str, bytes]] | None,
    *,
    keys: Mapping[str, Ed25519PublicKey],
    required: bool,
    record_type: RecordType,
    inquiry_id: str,
    agency: str,
    value: bytes,
) -> SignatureCheck:
    """Verify the record's ``exchange-signature`` against the agency's catalog ``keys``.

    A signature that is present is always verified, whatever the policy; a missing one is a
    problem only when ``required``. Costs nothing for an unsigned record where none is needed.
    """
    raw = header_value(headers, HEADER_SIGNATURE)
    if raw is None:
        if required:
            return SignatureCheck(problem=f"{agency} must sign its {record_type.value}s")
        return _UNSIGNED
    try:
        key_id, signature = parse_header(raw)
    except ValueError as exc:
        return SignatureCheck(problem=str(exc))
    key = keys.get(key_id)
    if key is None:
        return SignatureCheck(key_id, f"key {key_id!r} is not one of {agency}'s keys")
    try:
        key.verify(signature, signed_bytes(record_type, inquiry_id, agency, value))
    except (InvalidSignature, ValueError):  # ValueError: an id or code too long to lay out
        return SignatureCheck(key_id, f"the signature does not verify with {agency}'s key {key_id}")
    return SignatureCheck(key_id)


def signature_text(headers: Iterable[tuple[str, bytes]] | None) -> str | None:
    """The record's ``exchange-signature`` as text (for the audit record), or None."""
    raw = header_value(headers, HEADER_SIGNATURE)
    return None if raw is None else raw.decode("ascii", errors="replace")
