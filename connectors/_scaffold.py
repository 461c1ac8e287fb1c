"""``exchange connector new NAME --path DIR [--kind requester]``: write a working skeleton.

The skeleton (templates under ``connectors/_templates/<kind>``) is a small package with a
typed config, a pure mapping module, the connector class, an example config, a README and
tests: unit tests of the mapping and the conformance kit against a legacy stand-in the tests
start. Its tests pass as generated; the author then changes the parts marked ``TODO``.

- ``provider`` (default): answers ``post.address.lookup.v1`` from a legacy JSON API; tested
  with the provider kit (answers, outage).
- ``requester``: polls a legacy case system's pending requests and writes outcomes back;
  tested with the requester kit (every outcome once, SIGKILL, outage, malformed requests).

Placeholders: ``__NAME__`` (``acme``), ``__PACKAGE__`` (``acme_connector``), ``__CLASS__``
(``Acme``), ``__CATALOG__`` / ``__SCHEMAS__`` (the catalog the skeleton is generated against,
absolute, so its tests find it from anywhere).
"""

from __future__ import annotations

import re
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Literal

from exchange._errors import ConfigError
from exchange._settings import ExchangeSettings

__all__ = ["scaffold"]

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,40}$")
Kind = Literal["provider", "requester"]
KINDS: tuple[Kind, ...] = ("provider", "requester")


def names(name: str) -> dict[str, str]:
    """Placeholder values: ``acme-bank`` → ``acme_bank_connector``, ``AcmeBank`` …"""
    if not _NAME.match(name):
        raise ConfigError(
            f"connector name {name!r}: start with a letter; letters, digits, '_' or '-' only"
        )
    words = [word for word in re.split(r"[-_]+", name) if word]
    return {
        "__NAME__": "-".join(words).lower(),
        "__PACKAGE__": "_".join(words).lower() + "_connector",
        "__CLASS__": "".join(word[:1].upper() + word[1:] for word in words),
    }


def scaffold(
    name: str,
    path: Path,
    *,
    settings: ExchangeSettings,
    force: bool = False,
    kind: str = "provider",
) -> list[Path]:
    """Write the ``kind`` skeleton into ``path``; the files written, in order."""
    if kind not in KINDS:
        raise ConfigError(f"connector kind {kind!r}: one of {', '.join(KINDS)}")
    values = names(name)
    values["__CATALOG__"] = str(settings.catalog_path.resolve())
    values["__SCHEMAS__"] = str(settings.schemas_path.resolve())
    if path.exists() and any(path.iterdir()) and not force:
        raise ConfigError(f"{path} is not empty (use --force to write into it anyway)")
    root = resources.files("connectors") / "_templates" / kind
    written = []
    for source, relative in _walk(root, ""):
        target = path / _fill(relative.removesuffix(".tmpl"), values)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(_fill(source.read_text(encoding="utf-8"), values), encoding="utf-8")
        written.append(target)
    return written


def _walk(folder: Traversable, prefix: str) -> list[tuple[Traversable, str]]:
    found = []
    for entry in sorted(folder.iterdir(), key=lambda item: item.name):
        relative = f"{prefix}{entry.name}"
        if entry.is_dir():
            if entry.name != "__pycache__":
                found += _walk(entry, relative + "/")
        elif entry.name.endswith(".tmpl"):
            found.append((entry, relative))
    return found


def _fill(text: str, values: dict[str, str]) -> str:
    for placeholder, value in values.items():
        text = text.replace(placeholder, value)
    return text
