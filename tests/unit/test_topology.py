"""The topics the catalog implies: names, kinds, partitions, replication and configs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from exchange import ExchangeSettings
from exchange._catalog import Catalog, load_catalog
from exchange._compliance_source import compliance_topic_config
from exchange._topology import (
    COMPLIANCE_CONFIG,
    TopicKind,
    Topics,
    TopologyConfig,
    desired_topics,
    min_insync_replicas,
)

ROOT = Path(__file__).resolve().parents[2]
DEMO_AGENCIES = ["NOCR", "COMPANIES", "TAX", "POLICE", "POST", "BANK-MELLI", "MCLS"]
#: The demo agencies that provide no service: no desk topic for them.
NOT_PROVIDERS = {"MCLS"}


@pytest.fixture(scope="module")
def demo() -> Catalog:
    return load_catalog(ROOT / "catalog" / "demo", ROOT / "schemas")


def test_names_follow_the_documented_scheme() -> None:
    """Per-agency and bus-wide topics, groups and ids are named as architecture.md says."""
    t = Topics("bus")
    assert (t.out("NOCR"), t.in_("NOCR"), t.replies("NOCR"), t.desk("NOCR")) == (
        "bus.out.NOCR",
        "bus.in.NOCR",
        "bus.replies.NOCR",
        "bus.desk.NOCR",
    )
    assert (t.audit, t.dlq, t.state, t.compliance) == (
        "bus.audit",
        "bus.dlq",
        "bus.state",
        "bus.compliance",
    )
    assert t.provider_group("TAX") == "bus.provider.TAX"
    assert t.worker_group == "bus.workers"
    assert t.evaluation_group == "bus.evaluation"
    assert t.replay_transactional_id == "bus.dlq-replay"


def test_of_names_every_kind_and_insists_on_the_agency_where_needed() -> None:
    """`of(kind, agency)` agrees with the named helpers and refuses a missing/extra agency."""
    t = Topics("p")
    assert t.of(TopicKind.IN, "TAX") == t.in_("TAX")
    assert t.of(TopicKind.DLQ) == t.dlq
    with pytest.raises(ValueError, match="need"):
        t.of(TopicKind.OUT)
    with pytest.raises(ValueError, match="take no"):
        t.of(TopicKind.AUDIT, "TAX")


@pytest.mark.parametrize(
    ("name", "parsed"),
    [
        ("p.out.BANK-MELLI", (TopicKind.OUT, "BANK-MELLI")),
        ("p.in.TAX", (TopicKind.IN, "TAX")),
        ("p.desk.NOCR", (TopicKind.DESK, "NOCR")),
        ("p.audit", (TopicKind.AUDIT, None)),
        ("p.state", (TopicKind.STATE, None)),
        ("p.out.tax", None),  # agency codes are upper case
        ("p.out.", None),
        ("p.audit.X", None),
        ("p.evaluation-hour-changelog", None),
        ("q.out.TAX", None),
        ("p.x.out.TAX", None),
    ],
)
def test_parse_recognises_only_the_bus_topics(
    name: str, parsed: tuple[TopicKind, str | None] | None
) -> None:
    """`parse` gives kind and agency of a bus topic name and None for anything else."""
    assert Topics("p").parse(name) == parsed


def test_out_pattern_matches_every_out_topic_and_nothing_else() -> None:
    """The subscription regex takes out topics of any agency, and only of this prefix."""
    pattern = re.compile(Topics("a.b").out_pattern)
    assert pattern.match("a.b.out.TAX")
    assert pattern.match("a.b.out.BANK-MELLI")
    assert not pattern.match("a.b.in.TAX")
    assert not pattern.match("aXb.out.TAX")  # the dot of the prefix is literal
    assert not pattern.match("a.b.out.TAX.extra")


def test_demo_catalog_implies_three_topics_per_agency_a_desk_per_provider_and_five_more(
    demo: Catalog,
) -> None:
    """Every agency gets out/in/replies, providers a desk, the bus audit/dlq/state/compliance
    and catalog."""
    specs = desired_topics(demo, TopologyConfig("x"))
    names = [spec.name for spec in specs]
    for agency in DEMO_AGENCIES:
        for kind in ("out", "in", "replies"):
            assert f"x.{kind}.{agency}" in names
        assert (f"x.desk.{agency}" in names) == (agency not in NOT_PROVIDERS)
    assert names[-5:] == ["x.audit", "x.dlq", "x.state", "x.compliance", "x.catalog"]
    assert len(names) == len(set(names)) == 3 * 7 + 6 + 5


def test_partitions_and_replication_come_from_the_config(demo: Catalog) -> None:
    """Every topic has the configured partitions, except the one-partition compliance and
    catalog topics."""
    specs = desired_topics(demo, TopologyConfig("x", partitions=12, replication_factor=3))
    single = (TopicKind.COMPLIANCE, TopicKind.CATALOG)
    assert {s.partitions for s in specs if s.kind not in single} == {12}
    assert [s.partitions for s in specs if s.kind in single] == [1, 1]
    assert {s.replication_factor for s in specs} == {3}
    assert {s.configs["min.insync.replicas"] for s in specs} == {"2"}


def test_retention_and_cleanup_per_kind(demo: Catalog) -> None:
    """Inquiry topics delete after the topic retention, audit and dlq after their own,
    state/desk/catalog are compacted, compliance compacted and deleted after its own."""
    config = TopologyConfig("x", retention_ms=1000, audit_retention_ms=-1, dlq_retention_ms=5000)
    by_name = {spec.name: spec.configs for spec in desired_topics(demo, config)}
    assert by_name["x.out.TAX"]["retention.ms"] == "1000"
    assert by_name["x.replies.TAX"]["cleanup.policy"] == "delete"
    assert by_name["x.audit"]["retention.ms"] == "-1"
    assert by_name["x.dlq"]["retention.ms"] == "5000"
    for name in ("x.state", "x.desk.TAX", "x.catalog"):
        assert by_name[name]["cleanup.policy"] == "compact"
        assert "retention.ms" not in by_name[name]
    assert by_name["x.compliance"]["cleanup.policy"] == "compact,delete"
    assert by_name["x.compliance"]["retention.ms"] == str(400 * 86_400_000)


def test_config_from_settings_converts_seconds_to_milliseconds() -> None:
    """Retentions in seconds become retention.ms; an unset audit retention means forever."""
    settings = ExchangeSettings(
        topic_prefix="bus", partitions=3, replication_factor=2, topic_retention=1.5
    )
    config = TopologyConfig.from_settings(settings)
    assert config == TopologyConfig(
        "bus",
        partitions=3,
        replication_factor=2,
        retention_ms=1500,
        audit_retention_ms=-1,
        dlq_retention_ms=30 * 86_400_000,
    )
    assert TopologyConfig.from_settings(
        ExchangeSettings(audit_retention=60)
    ).audit_retention_ms == (60_000)


@pytest.mark.parametrize(("rf", "isr"), [(1, 1), (2, 1), (3, 2), (5, 4)])
def test_min_insync_replicas_tolerates_one_broker_down(rf: int, isr: int) -> None:
    """min.insync.replicas is one less than the replicas, and at least one."""
    assert min_insync_replicas(rf) == isr


@pytest.mark.parametrize("retention", [None, 86_400.0])
def test_compliance_config_is_the_one_the_evaluation_creates(
    demo: Catalog, retention: float | None
) -> None:
    """`topics apply` and the evaluation processor's fallback create compliance alike; an
    unset EXCHANGE_COMPLIANCE_RETENTION keeps it compacted only."""
    settings = ExchangeSettings(topic_prefix="x", compliance_retention=retention)
    by_name = {
        s.name: s.configs for s in desired_topics(demo, TopologyConfig.from_settings(settings))
    }
    wanted = {k: v for k, v in by_name["x.compliance"].items() if k != "min.insync.replicas"}
    assert wanted == compliance_topic_config(settings)
    assert (wanted == dict(COMPLIANCE_CONFIG)) == (retention is None)
