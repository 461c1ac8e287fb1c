"""`exchange topics` on the real broker: apply creates, is idempotent, grows, fixes drift."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from topics_cli import DEMO, cli_env, describe, run, set_overrides

from exchange import ExchangeSettings

pytestmark = pytest.mark.integration

AGENCIES = ["NOCR", "COMPANIES", "TAX", "POLICE", "POST", "BANK-MELLI", "MCLS"]
PROVIDERS = set(AGENCIES) - {"MCLS"}
WEEK_MS, MONTH_MS = "604800000", "2592000000"


def expected(prefix: str) -> dict[str, tuple[int, dict[str, str]]]:
    """Every topic of the demo catalog with 2 partitions: partitions and overrides."""
    delete = {"cleanup.policy": "delete", "retention.ms": WEEK_MS, "min.insync.replicas": "1"}
    desk = {
        "cleanup.policy": "compact",
        "delete.retention.ms": "86400000",
        "min.insync.replicas": "1",
    }
    topics: dict[str, tuple[int, dict[str, str]]] = {}
    for agency in AGENCIES:
        for kind in ("out", "in", "replies"):
            topics[f"{prefix}.{kind}.{agency}"] = (2, delete)
        if agency in PROVIDERS:
            topics[f"{prefix}.desk.{agency}"] = (2, desk)
    topics[f"{prefix}.audit"] = (2, delete | {"retention.ms": "-1"})
    topics[f"{prefix}.dlq"] = (2, delete | {"retention.ms": MONTH_MS})
    topics[f"{prefix}.state"] = (
        2,
        {"cleanup.policy": "compact", "segment.ms": "3600000", "min.insync.replicas": "1"},
    )
    topics[f"{prefix}.compliance"] = (
        1,
        {
            "cleanup.policy": "compact,delete",
            "retention.ms": str(400 * 86_400_000),
            "min.compaction.lag.ms": "3600000",
            "min.insync.replicas": "1",
        },
    )
    topics[f"{prefix}.catalog"] = (
        1,
        {
            "cleanup.policy": "compact",
            "max.message.bytes": str(16 * 1024 * 1024),
            "min.insync.replicas": "1",
        },
    )
    return topics


async def test_apply_creates_every_topic_and_a_second_apply_does_nothing(
    settings: ExchangeSettings,
) -> None:
    """The demo catalog's topics appear with their partitions and configs; apply is idempotent."""
    env = cli_env(settings)
    want = expected(settings.topic_prefix)
    first = await run(env, "topics", "apply")
    assert first.code == 0, first.err
    assert sorted(line.split(":")[0] for line in first.out.splitlines()) == sorted(
        f"created {name}" for name in want
    )
    found = await describe(settings, list(want))
    assert {name: (t["partitions"], t["configs"]) for name, t in found.items()} == want
    second = await run(env, "topics", "apply")
    assert (second.code, second.out, second.err) == (0, "nothing to do\n", "")
    plan = await run(env, "topics", "plan", "--json")
    assert plan.json() == {"actions": [], "warnings": [], "notes": []}


async def test_plan_after_adding_an_agency_shows_exactly_its_topics(
    settings: ExchangeSettings, tmp_path: Path
) -> None:
    """A catalog copy with one more agency plans the creation of its three topics, nothing else."""
    env = cli_env(settings)
    assert (await run(env, "topics", "apply")).code == 0
    catalog = tmp_path / "catalog"
    shutil.copytree(DEMO, catalog)
    with (catalog / "agencies.yaml").open("a") as agencies:
        agencies.write("\n  - code: CUSTOMS\n    name: Customs Administration\n")
    plan = await run(env, "topics", "plan", "--catalog", str(catalog), "--json")
    assert plan.code == 0, plan.err
    actions = plan.json()["actions"]
    assert [(a["action"], a["topic"], a["partitions"]) for a in actions] == [
        ("create", f"{settings.topic_prefix}.{kind}.CUSTOMS", 2)
        for kind in ("out", "in", "replies")
    ]


async def test_more_partitions_are_added_only_with_yes(settings: ExchangeSettings) -> None:
    """Growing inquiry topics is refused (nothing changed) without --yes and done with it."""
    assert (await run(cli_env(settings, EXCHANGE_PARTITIONS="1"), "topics", "apply")).code == 0
    env = cli_env(settings, EXCHANGE_PARTITIONS="3")
    out_tax = f"{settings.topic_prefix}.out.TAX"
    refused = await run(env, "topics", "apply")
    assert refused.code == 1
    assert "co-partitioning" in refused.err
    assert "nothing changed" in refused.err
    assert (await describe(settings, [out_tax]))[out_tax]["partitions"] == 1
    grown = await run(env, "topics", "apply", "--yes")
    assert grown.code == 0, grown.err
    assert f"added partitions to {out_tax}: 1 -> 3" in grown.out.splitlines()
    single = (".compliance", ".catalog")  # one partition each, by design
    names = [n for n in expected(settings.topic_prefix) if not n.endswith(single)]
    assert {t["partitions"] for t in (await describe(settings, names)).values()} == {3}
    assert (await run(env, "topics", "apply")).out == "nothing to do\n"


async def test_apply_fixes_config_drift_and_keeps_other_overrides(
    settings: ExchangeSettings,
) -> None:
    """A managed config changed by hand is set back; an unmanaged override set by hand stays."""
    env = cli_env(settings)
    assert (await run(env, "topics", "apply")).code == 0
    dlq = f"{settings.topic_prefix}.dlq"
    await set_overrides(settings, dlq, {"retention.ms": "1000", "max.message.bytes": "2000000"})
    plan = await run(env, "topics", "plan")
    # Replacing the overrides dropped cleanup.policy and min.insync.replicas too, but their
    # effective values (the broker's defaults) are still the wanted ones: only retention differs.
    assert plan.out.splitlines() == [f"alter {dlq}: retention.ms 1000 -> {MONTH_MS}"]
    fixed = await run(env, "topics", "apply")
    assert fixed.code == 0, fixed.err
    assert f"retention.ms 1000 -> {MONTH_MS}" in fixed.out
    configs = (await describe(settings, [dlq]))[dlq]["configs"]
    assert configs["retention.ms"] == MONTH_MS
    assert configs["max.message.bytes"] == "2000000"


async def test_list_reports_each_topic_and_its_status(settings: ExchangeSettings) -> None:
    """`list --json` shows every topic of the catalog: missing before apply, ok after."""
    env = cli_env(settings)
    before = {
        row["topic"]: row["status"] for row in (await run(env, "topics", "list", "--json")).json()
    }
    assert set(before.values()) == {"missing"}
    assert (await run(env, "topics", "apply")).code == 0
    after = (await run(env, "topics", "list", "--json")).json()
    assert {row["status"] for row in after} == {"ok"}
    assert set(before) == {row["topic"] for row in after} == set(expected(settings.topic_prefix))
