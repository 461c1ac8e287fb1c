"""The ``exchange`` command line."""

from exchange.cli._app import main

__all__ = ["main"]
