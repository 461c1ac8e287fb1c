"""``exchange keys``: make an agency's Ed25519 signing key pair.

``new AGENCY --out DIR`` writes ``<AGENCY>-<key id>.key`` (the private key, PEM, mode 0600;
point ``EXCHANGE_SIGNING_KEY_FILE`` at it) and ``.pub`` (the public key, base64), and prints
the ``keys:`` entry to add to the agency in ``agencies.yaml``. It never overwrites a file and
never prints the private key.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from pydantic import TypeAdapter, ValidationError

from exchange._catalog_ids import AgencyCode
from exchange._errors import ConfigError
from exchange._signing import Signer
from exchange._signing_keys import catalog_snippet, write_key_pair

app = typer.Typer(name="keys", help="Make agencies' signing keys.", no_args_is_help=True)

OutOption = typer.Option(..., "--out", help="Folder to write the key files into.")
JsonOption = typer.Option(False, "--json", help="Print JSON instead of text.")


@app.command()
def new(
    agency: str = typer.Argument(..., help="The agency's code in the catalog (TAX)."),
    out: Path = OutOption,
    as_json: bool = JsonOption,
) -> None:
    """Write a new key pair for AGENCY and print its catalog entry."""
    try:
        TypeAdapter(AgencyCode).validate_python(agency)
    except ValidationError as exc:
        raise ConfigError(
            f"{agency!r} is not an agency code (upper case, digits, hyphens)"
        ) from exc
    signer = Signer.generate(agency)
    try:
        private, public = write_key_pair(signer, out)
    except OSError as exc:
        raise ConfigError(f"cannot write the key files into {out}: {exc.strerror}") from exc
    if as_json:
        report = {
            "agency": agency,
            "key_id": signer.key_id,
            "private_key_file": str(private),
            "public_key_file": str(public),
            "public_key": public.read_text().strip(),
        }
        typer.echo(json.dumps(report, indent=2))
        return
    typer.echo(f"private key: {private} (keep it secret: EXCHANGE_SIGNING_KEY_FILE={private})")
    typer.echo(f"public key:  {public}")
    typer.echo("add to catalog agencies.yaml:")
    typer.echo(catalog_snippet(signer), nl=False)
