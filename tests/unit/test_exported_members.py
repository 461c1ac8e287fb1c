"""Each package's ``__all__`` is its whole public surface, honest and free of side effects."""

from __future__ import annotations

import importlib
import inspect
import json
import subprocess
import sys
import types

import pytest

import exchange
from exchange import _errors

PACKAGES = ["exchange", "agents", "connectors", "exchange.bench"]
#: Exported objects defined outside their package, on purpose: the connector SDK hands out
#: the exchange errors a connector raises, so connector code needs one import.
FOREIGN = {("connectors", "PermanentError"), ("connectors", "RetriableError")}


def _public_members(module: types.ModuleType) -> set[str]:
    """Public attributes that are not submodules nor ``from __future__`` features."""
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and type(value).__name__ != "_Feature"
    }


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_sorted_unique_and_public(name: str) -> None:
    """``__all__`` is sorted, has no duplicate and names no ``_private`` member."""
    exported = importlib.import_module(name).__all__
    assert exported == sorted(exported)
    assert len(set(exported)) == len(exported)
    assert [member for member in exported if member.startswith("_")] == []


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_exactly_the_public_members(name: str) -> None:
    """Every name in ``__all__`` resolves, and nothing public is left out of it."""
    module = importlib.import_module(name)
    assert all(hasattr(module, member) for member in module.__all__)
    assert _public_members(module) == set(module.__all__)


@pytest.mark.parametrize("name", PACKAGES)
def test_exports_are_defined_inside_their_package(name: str) -> None:
    """Each export's ``__module__`` lies under its package (or is a listed exception)."""
    module = importlib.import_module(name)
    outside = [
        member
        for member in module.__all__
        if (name, member) not in FOREIGN
        and not getattr(module, member).__module__.startswith(f"{name}.")
    ]
    assert outside == []


def test_every_error_of_the_tree_is_exported() -> None:
    """Every ExchangeError subclass defined in exchange/_errors.py is exported by exchange."""
    defined = {
        name
        for name, value in vars(_errors).items()
        if inspect.isclass(value)
        and issubclass(value, exchange.ExchangeError)
        and value.__module__ == _errors.__name__
    }
    assert defined - set(exchange.__all__) == set()


_IMPORT_PROBE = """
import json, os, sys
before = dict(os.environ)
import exchange, agents, connectors
loaded = sorted(m for m in sys.modules if m.split(".")[0] in {"faust", "mode"})
print(json.dumps({"loaded": loaded, "environ_changed": dict(os.environ) != before}))
"""


def test_importing_the_packages_has_no_side_effects() -> None:
    """Importing exchange, agents and connectors loads no faust/mode and keeps os.environ."""
    done = subprocess.run(
        [sys.executable, "-c", _IMPORT_PROBE], capture_output=True, text=True, check=True
    )
    assert json.loads(done.stdout) == {"loaded": [], "environ_changed": False}
