"""Metrics are made once per registry: components in one process share a registry's metrics."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge

from exchange import ExchangeSettings, Provider
from exchange._metrics import DlqMetrics, ProviderMetrics, WorkerMetrics, _metric

ROOT = Path(__file__).resolve().parents[2]


def test_two_providers_share_one_registry() -> None:
    """Two Providers built on one registry do not fail on a duplicate time series."""
    registry = CollectorRegistry()
    settings = ExchangeSettings(
        catalog_path=ROOT / "catalog" / "demo", schemas_path=ROOT / "schemas"
    )
    Provider(agency="NOCR", settings=settings, registry=registry)
    Provider(agency="POST", settings=settings, registry=registry)
    names = [family.name for family in registry.collect()]
    assert "exchange_provider_handled" in names
    assert len(names) == len(set(names))


def test_metrics_made_twice_on_a_registry_count_in_one_series() -> None:
    """Counts through either of two ProviderMetrics (or DlqMetrics) land in the same series."""
    registry = CollectorRegistry()
    first, second = ProviderMetrics(registry), ProviderMetrics(registry)
    first.duplicates.labels(agency="NOCR").inc()
    second.duplicates.labels(agency="NOCR").inc(2)
    WorkerMetrics(registry).dlq.records.labels(component="worker", reason="bad-framing").inc()
    DlqMetrics(registry).records.labels(component="worker", reason="bad-framing").inc()
    labels = {"component": "worker", "reason": "bad-framing"}
    assert registry.get_sample_value("exchange_provider_duplicates_total", {"agency": "NOCR"}) == 3
    assert registry.get_sample_value("exchange_dlq_records_total", labels) == 2


def test_registries_stay_apart() -> None:
    """A metric made on one registry is not the one another registry gets."""
    one, other = CollectorRegistry(), CollectorRegistry()
    ProviderMetrics(one).duplicates.labels(agency="NOCR").inc()
    ProviderMetrics(other)
    assert one.get_sample_value("exchange_provider_duplicates_total", {"agency": "NOCR"}) == 1
    assert other.get_sample_value("exchange_provider_duplicates_total", {"agency": "NOCR"}) is None


def test_one_name_with_two_meanings_is_refused() -> None:
    """A name made again as another kind, or with other labels, is a ValueError."""
    registry = CollectorRegistry()
    _metric(Counter, "exchange_test_things", "Things.", ["agency"], registry=registry)
    with pytest.raises(ValueError, match="exchange_test_things"):
        _metric(Gauge, "exchange_test_things", "Things.", ["agency"], registry=registry)
    with pytest.raises(ValueError, match="exchange_test_things"):
        _metric(Counter, "exchange_test_things", "Things.", ["service"], registry=registry)
