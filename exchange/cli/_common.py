"""What the inquire, provide, tail, desk and demo commands share: settings and requesters."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from exchange._catalog_ids import split_ref
from exchange._errors import ConfigError
from exchange._logging import configure_logging
from exchange._settings import ExchangeSettings

__all__ = ["load_settings", "parse_requester"]


def load_settings(*, quiet: bool = True, **overrides: Any) -> ExchangeSettings:
    """``EXCHANGE_*`` settings (with ``overrides``); a bad value is one clear line.

    ``quiet``: log warnings only (on stderr), so that the command's own output stands alone;
    long-running commands pass False and log at ``EXCHANGE_LOG_LEVEL``.
    """
    try:
        settings = ExchangeSettings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        first = exc.errors()[0]
        field = "_".join(str(part) for part in first["loc"]).upper()
        raise ConfigError(f"EXCHANGE_{field}: {first['msg']}") from exc
    configure_logging(settings.log_format, "WARNING" if quiet else settings.log_level)
    return settings


def parse_requester(text: str) -> tuple[str, str | None]:
    """``TAX`` or ``TAX/registration`` -> (agency, subsystem)."""
    agency, subsystem = split_ref(text)
    if not agency or subsystem == "":
        raise ConfigError(f"--as {text!r}: give AGENCY or AGENCY/subsystem")
    return agency, subsystem
