"""The local broker refuses bad set-ups with one clear line, before any JVM starts."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from exchange._errors import LocalBrokerError
from exchange._kafka_jars import kafka_dist, pinned_version
from exchange._local_broker import LocalBroker
from exchange._local_broker_config import (
    BrokerLayout,
    new_cluster_id,
    parse_properties,
    render_config,
)

EXCHANGE = Path(sys.executable).with_name("exchange")
#: Looked up before any test empties PATH.
JAVA = shutil.which("java")


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port on 127.0.0.1 that another socket is listening on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.fixture
def path_without_java(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """PATH is an empty folder and JAVA_HOME is unset: no java, no mvn."""
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    return empty


def _run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(EXCHANGE), *args], capture_output=True, text=True, env=env, timeout=60, check=False
    )


def test_port_in_use_is_refused_naming_the_port(tmp_path: Path, busy_port: int) -> None:
    """A listener port taken by another process gives an error naming it and a way out."""
    with pytest.raises(LocalBrokerError, match=rf"port 127\.0\.0\.1:{busy_port} .* in use"):
        LocalBroker(tmp_path / "broker").start(port=busy_port)


def test_missing_java_is_reported(tmp_path: Path, path_without_java: Path) -> None:
    """Without java on PATH or JAVA_HOME the error says to install a Java runtime."""
    with pytest.raises(LocalBrokerError, match=r"java not found .* install a Java 17"):
        LocalBroker(tmp_path / "broker").start()


def test_missing_maven_is_reported_when_jars_are_not_cached(
    tmp_path: Path, path_without_java: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With java but no mvn and an empty jar cache, the error says to install Maven."""
    assert JAVA, "this test needs a java on the machine"
    (path_without_java / "java").symlink_to(Path(JAVA).resolve())
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with pytest.raises(LocalBrokerError, match=r"mvn not found .* install Maven"):
        LocalBroker(tmp_path / "broker").start()


def test_corrupt_data_dir_without_layout_is_refused(tmp_path: Path) -> None:
    """A data dir with no record of how it was formatted is called corrupt, with the fix."""
    home = tmp_path / "broker"
    (home / "data").mkdir(parents=True)
    (home / "data" / "meta.properties").write_text("garbage\x00\x01")
    with pytest.raises(LocalBrokerError, match=r"corrupt \(layout.json .*--fresh"):
        LocalBroker(home).start()


def test_data_dir_of_another_cluster_is_refused(tmp_path: Path) -> None:
    """meta.properties naming another cluster than layout.json is called corrupt."""
    home = tmp_path / "broker"
    (home / "data").mkdir(parents=True)
    layout = BrokerLayout(port=1, controller_port=2, cluster_id=new_cluster_id(), kafka_version="x")
    (home / "layout.json").write_text(json.dumps(layout.__dict__))
    (home / "data" / "meta.properties").write_text(f"cluster.id={new_cluster_id()}\nnode.id=1\n")
    with pytest.raises(LocalBrokerError, match=r"meta\.properties does not match"):
        LocalBroker(home).start()


def test_data_dir_of_another_node_is_refused(tmp_path: Path) -> None:
    """meta.properties of a node other than the local broker's one node is called corrupt."""
    home = tmp_path / "broker"
    (home / "data").mkdir(parents=True)
    layout = BrokerLayout(port=1, controller_port=2, cluster_id=new_cluster_id(), kafka_version="x")
    (home / "layout.json").write_text(json.dumps(layout.__dict__))
    (home / "data" / "meta.properties").write_text(f"cluster.id={layout.cluster_id}\nnode.id=7\n")
    with pytest.raises(LocalBrokerError, match="names node 7, not 1"):
        LocalBroker(home).start()


def test_a_broker_never_started_is_not_running(tmp_path: Path) -> None:
    """A home with no running broker reports none, and stopping it is a no-op."""
    broker = LocalBroker(tmp_path / "broker")
    assert broker.running() is None
    assert broker.stop() is False


def test_stale_record_of_a_dead_process_is_not_running(tmp_path: Path) -> None:
    """A running.json whose pid is not our broker (here: this test) counts as stopped."""
    home = tmp_path / "broker"
    home.mkdir()
    record = {
        "pid": os.getpid(),
        "bootstrap": "127.0.0.1:1",
        "kafka_version": "4",
        "started_at": "",
    }
    (home / "running.json").write_text(json.dumps(record))
    assert LocalBroker(home).running() is None


def test_cli_prints_one_error_line_without_java(tmp_path: Path) -> None:
    """`exchange broker start` without java exits 1 with a single line and no traceback."""
    empty = tmp_path / "bin"
    empty.mkdir()
    env = {"PATH": str(empty), "HOME": str(tmp_path), "EXCHANGE_STATE_DIR": str(tmp_path / "s")}
    done = _run_cli("broker", "start", env=env)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith("error: java not found")


def test_cluster_ids_are_22_url_safe_characters() -> None:
    """Cluster ids look like `kafka-storage random-uuid` output and never start with '-'."""
    ids = {new_cluster_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(len(i) == 22 and not i.startswith("-") for i in ids)
    assert all(
        set(i) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        for i in ids
    )


def test_config_is_single_node_kraft_on_loopback(tmp_path: Path) -> None:
    """The rendered config is a one-node KRaft broker on 127.0.0.1 with 1-replica internals."""
    layout = BrokerLayout(port=9092, controller_port=9093, cluster_id="x" * 22, kafka_version="4")
    config = parse_properties(render_config(layout, tmp_path / "data"))
    assert config["process.roles"] == "broker,controller"
    assert config["listeners"] == "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"
    assert config["controller.quorum.bootstrap.servers"] == "127.0.0.1:9093"
    assert config["log.dirs"] == str(tmp_path / "data")
    assert config["auto.create.topics.enable"] == "false"
    assert config["group.initial.rebalance.delay.ms"] == "0"
    for key in ("offsets.topic", "transaction.state.log", "share.coordinator.state.topic"):
        assert config[f"{key}.replication.factor"] == "1"
    assert config["transaction.state.log.min.isr"] == "1"


def test_pom_pins_a_kafka_4_release_that_names_the_jar_cache() -> None:
    """The pinned Kafka version is a 4.x release and the jar cache folder carries it."""
    dist = kafka_dist()
    assert pinned_version(dist.pom).startswith("4.")
    assert dist.libs_dir.parent.name == f"kafka-{dist.version}"
    assert dist.log4j_config.is_file()
