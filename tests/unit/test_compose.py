"""docker/compose.yml stays consistent with the settings, the pinned Kafka and the local broker."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from exchange import ExchangeSettings
from exchange._kafka_jars import kafka_dist

DOCKER = Path(__file__).resolve().parents[2] / "docker"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """The parsed compose file."""
    loaded = yaml.safe_load((DOCKER / "compose.yml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def _env(service: dict[str, Any]) -> dict[str, str]:
    return {key: str(value) for key, value in service.get("environment", {}).items()}


def test_has_kafka_workers_prometheus_and_grafana(compose: dict[str, Any]) -> None:
    """The four services users expect are defined."""
    assert {"kafka", "worker", "prometheus", "grafana"} <= set(compose["services"])


def test_kafka_is_the_official_image_of_the_pinned_release(compose: dict[str, Any]) -> None:
    """Docker users run the same Kafka release as the local broker and the tests."""
    assert compose["services"]["kafka"]["image"] == f"apache/kafka:{kafka_dist().version}"


def test_kafka_is_a_single_kraft_node(compose: dict[str, Any]) -> None:
    """KRaft combined mode, one voter, internal topics at replication factor 1."""
    env = _env(compose["services"]["kafka"])
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{env['KAFKA_NODE_ID']}@kafka:9093"
    assert re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_-]{21}", env["CLUSTER_ID"])
    for key in (
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR",
        "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR",
    ):
        assert env[key] == "1", key
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"


def test_workers_reach_kafka_on_its_internal_listener(compose: dict[str, Any]) -> None:
    """The workers' bootstrap is an advertised listener of the kafka service."""
    advertised = _env(compose["services"]["kafka"])["KAFKA_ADVERTISED_LISTENERS"]
    addresses = {entry.split("://", 1)[1] for entry in advertised.split(",")}
    worker = compose["services"]["worker"]
    assert _env(worker)["EXCHANGE_KAFKA_BOOTSTRAP"] in addresses
    assert worker["command"][0] == "worker"
    assert worker["depends_on"]["kafka"]["condition"] == "service_healthy"


def test_every_exchange_variable_is_a_setting(compose: dict[str, Any]) -> None:
    """Each EXCHANGE_* variable names a field of ExchangeSettings and parses as its type."""
    fields = set(ExchangeSettings.model_fields)
    for name, service in compose["services"].items():
        env = {k: v for k, v in _env(service).items() if k.startswith("EXCHANGE_")}
        unknown = {k for k in env if k.removeprefix("EXCHANGE_").lower() not in fields}
        assert not unknown, f"{name}: {unknown}"
        if env:
            values = {k.removeprefix("EXCHANGE_").lower(): v for k, v in env.items()}
            ExchangeSettings.model_validate(values)


def test_workers_use_the_local_broker_topic_conventions(compose: dict[str, Any]) -> None:
    """Topic prefix, partitions and replication match the settings' local defaults."""
    env = _env(compose["services"]["worker"])
    defaults = ExchangeSettings.model_fields
    assert env["EXCHANGE_TOPIC_PREFIX"] == defaults["topic_prefix"].default
    assert int(env["EXCHANGE_PARTITIONS"]) == defaults["partitions"].default
    assert int(env["EXCHANGE_REPLICATION_FACTOR"]) == defaults["replication_factor"].default
    assert int(_env(compose["services"]["kafka"])["KAFKA_NUM_PARTITIONS"]) == int(
        env["EXCHANGE_PARTITIONS"]
    )


def test_published_ports_bind_loopback_only(compose: dict[str, Any]) -> None:
    """Nothing is published beyond 127.0.0.1 on the host."""
    published = [
        str(port) for service in compose["services"].values() for port in service.get("ports", [])
    ]
    assert published
    assert all(port.startswith("127.0.0.1:") for port in published), published


def test_monitoring_mounts_come_from_the_docker_folder(compose: dict[str, Any]) -> None:
    """Prometheus and Grafana read their config from docker/prometheus and docker/grafana."""
    mounts = {
        name: [v.split(":")[0] for v in compose["services"][name]["volumes"] if v.startswith(".")]
        for name in ("prometheus", "grafana")
    }
    assert mounts["prometheus"] == ["./prometheus"]
    assert mounts["grafana"] == ["./grafana/provisioning", "./grafana/dashboards"]


def test_worker_image_builds_from_the_repository(compose: dict[str, Any]) -> None:
    """The worker image is built from docker/Dockerfile with the repository as context."""
    build = compose["services"]["worker"]["build"]
    assert (DOCKER / build["context"] / build["dockerfile"]).resolve() == DOCKER / "Dockerfile"
    assert 'ENTRYPOINT ["exchange"]' in (DOCKER / "Dockerfile").read_text()
