"""``exchange provide MODULE[:ATTR]``: run the providers a Python module defines.

``ATTR`` names a :class:`~exchange.Provider`, a list of them, or a factory called as
``factory(settings=..., registry=...)`` that returns one or a list (the factory is how several
providers share the ``/metrics`` this command serves: ``exchange.demo:providers`` is one).
Without ``ATTR`` the module's ``providers`` factory is used if it has one, else every
``Provider`` defined at its top level. The current directory is importable, as for
``python -m``. Runs until SIGTERM or Ctrl-C (exit 0 once every provider drained and
committed); exit 1 when a provider fails (the others are stopped first).
"""

from __future__ import annotations

import asyncio
import importlib
import os
import signal
import sys
from collections.abc import Iterable
from typing import Any

import structlog
import typer
from prometheus_client import CollectorRegistry

from exchange._errors import ConfigError, ExchangeError
from exchange._metrics import serve_metrics
from exchange._provider import Provider
from exchange._settings import ExchangeSettings
from exchange.cli._common import load_settings

log = structlog.get_logger("exchange.provide")


def provide(
    target: str = typer.Argument(..., metavar="MODULE[:ATTR]", help="Where the providers are."),
    metrics_port: int | None = typer.Option(
        None, "--metrics-port", min=0, max=65535, help="Serve /metrics here (0: any free port)."
    ),
) -> None:
    """Run the providers of a Python module until SIGTERM or Ctrl-C."""
    settings = load_settings(quiet=False, metrics_port=metrics_port)
    registry = CollectorRegistry()
    providers = load_providers(target, settings, registry)
    if settings.metrics_port is not None:
        port = serve_metrics(registry, host=settings.metrics_host, port=settings.metrics_port)
        log.info("serving metrics", url=f"http://{settings.metrics_host}:{port}/metrics")
    log.info("providing", target=target, agencies=[p.agency for p in providers])
    sys.exit(asyncio.run(run_providers(providers)))


def load_providers(
    target: str, settings: ExchangeSettings, registry: CollectorRegistry
) -> list[Provider]:
    """The providers ``MODULE[:ATTR]`` names (see the module docstring)."""
    module_name, _, attr = target.partition(":")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"cannot import {module_name}: {exc}") from exc
    if attr:
        if not hasattr(module, attr):
            raise ConfigError(f"{module_name} has no attribute {attr!r}")
        found: Any = getattr(module, attr)
    elif callable(getattr(module, "providers", None)):
        found = module.providers
    else:
        found = [value for value in vars(module).values() if isinstance(value, Provider)]
    if callable(found) and not isinstance(found, Provider):
        found = found(settings=settings, registry=registry)
    providers = _as_list(found)
    if not providers:
        raise ConfigError(f"{target} defines no Provider")
    return providers


def _as_list(found: Any) -> list[Provider]:
    items = [found] if isinstance(found, Provider) else found
    if not isinstance(items, Iterable):
        raise ConfigError(f"expected a Provider or a list of them, not {type(found).__name__}")
    providers = list(items)
    strangers = [type(p).__name__ for p in providers if not isinstance(p, Provider)]
    if strangers:
        raise ConfigError(f"not a Provider: {', '.join(strangers)}")
    return providers


async def run_providers(providers: list[Provider]) -> int:
    """Run every provider until a signal (0) or until one fails (1, the others stopped)."""
    loop = asyncio.get_running_loop()
    tasks = [asyncio.create_task(p.run(), name=f"provider-{p.agency}") for p in providers]

    stopping: set[asyncio.Task[None]] = set()  # held so they are not collected mid-way

    def stop_all() -> None:
        for provider in providers:
            stopping.add(asyncio.create_task(provider.stop()))

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop_all)
    done, _pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    failed = [task for task in done if task.exception() is not None]
    if failed:
        stop_all()
    await asyncio.wait(tasks)
    for task in failed:
        exc = task.exception()
        message = exc.message if isinstance(exc, ExchangeError) else repr(exc)
        log.error("provider failed", provider=task.get_name(), error=message)
    return 1 if failed else 0
