"""Reading and writing Ed25519 key files: the I/O edge of :mod:`exchange._signing`.

A private key is an unencrypted PKCS#8 PEM file (what ``exchange keys new`` writes, and what
``openssl genpkey -algorithm ed25519`` writes too), or the same PEM text, or the base64 of the
32-byte raw seed, in ``EXCHANGE_SIGNING_KEY``. Error messages never quote key material.
"""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path

import structlog
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from exchange._catalog_model import Catalog
from exchange._errors import ConfigError
from exchange._settings import ExchangeSettings
from exchange._signing import Signer

__all__ = [
    "catalog_snippet",
    "load_signer",
    "signer_for",
    "signer_from_text",
    "write_key_pair",
]

log = structlog.get_logger("exchange.signing")

_SEED_BYTES = 32


def signer_from_text(agency: str, text: str | bytes) -> Signer:
    """A signer from PEM (PKCS#8) text or base64 of the raw seed; :class:`ConfigError`."""
    data = text.encode() if isinstance(text, str) else text
    if b"-----BEGIN" in data:
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError) as exc:
            raise ConfigError("the signing key is not an unencrypted PEM private key") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise ConfigError("the signing key is not an Ed25519 key")
        return Signer(agency, key)
    try:
        seed = base64.b64decode(data.strip(), validate=True)
    except binascii.Error as exc:
        raise ConfigError("the signing key is neither PEM nor base64") from exc
    if len(seed) != _SEED_BYTES:
        raise ConfigError("a base64 signing key must hold the 32-byte Ed25519 seed")
    return Signer(agency, Ed25519PrivateKey.from_private_bytes(seed))


def load_signer(agency: str, settings: ExchangeSettings) -> Signer | None:
    """The agency's signer from ``EXCHANGE_SIGNING_KEY`` or ``EXCHANGE_SIGNING_KEY_FILE``;
    None when neither is set (records go out unsigned)."""
    if settings.signing_key is not None:
        return signer_from_text(agency, settings.signing_key.get_secret_value())
    path = settings.signing_key_file
    if path is None:
        return None
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the signing key file {path}: {exc.strerror}") from exc
    return signer_from_text(agency, data)


def signer_for(
    agency: str, settings: ExchangeSettings, catalog: Catalog, signer: Signer | None = None
) -> Signer | None:
    """The SDK's signer: ``signer`` if given, else the one in ``settings`` (or None).

    :class:`ConfigError` if it belongs to another agency; a warning (not an error: the copy
    of the catalog may be older than the bus's) if the catalog does not list its key.
    """
    signer = signer if signer is not None else load_signer(agency, settings)
    if signer is None:
        return None
    if signer.agency != agency:
        raise ConfigError(f"the signing key is {signer.agency}'s, not {agency}'s")
    found = catalog.agency(agency)
    if found is None or signer.key_id not in found.verifiers:
        log.warning("signing key not in the catalog", agency=agency, key_id=signer.key_id)
    return signer


def write_key_pair(signer: Signer, folder: Path) -> tuple[Path, Path]:
    """Write ``<AGENCY>-<key id>.key`` (PEM, mode 0600) and ``.pub`` (base64) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / f"{signer.agency}-{signer.key_id}"
    private, public = stem.with_suffix(".key"), stem.with_suffix(".pub")
    pem = Ed25519PrivateKey.from_private_bytes(signer.private_bytes()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # O_EXCL: never overwrite a key; 0600 from the start, not chmod after the fact.
    fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    public.write_text(base64.b64encode(signer.public_key).decode() + "\n")
    return private, public


def catalog_snippet(signer: Signer) -> str:
    """The YAML an operator adds under the agency in ``agencies.yaml``."""
    key = base64.b64encode(signer.public_key).decode()
    return (
        f"  - code: {signer.agency}\n"
        "    # ...\n"
        "    keys:\n"
        f"      - id: {signer.key_id}\n"
        f"        public_key: {key}\n"
    )
