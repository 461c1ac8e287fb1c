"""Settings become a Kafka address and client options; an unreachable cluster is one line."""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from exchange import BrokerError, ConfigError, ExchangeSettings
from exchange._kafka import check_reachable, client_options, resolve_bootstrap

EXCHANGE = Path(sys.executable).with_name("exchange")


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port that is bound but not listening: connections are refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def _settings(tmp_path: Path, **fields: Any) -> ExchangeSettings:
    fields.setdefault("kafka_bootstrap", None)
    return ExchangeSettings(state_dir=tmp_path / "state", **fields)


def test_explicit_bootstrap_wins(tmp_path: Path) -> None:
    """EXCHANGE_KAFKA_BOOTSTRAP is used as given, local broker or not."""
    settings = _settings(tmp_path, kafka_bootstrap="kafka-1:9092,kafka-2:9092")
    assert resolve_bootstrap(settings) == "kafka-1:9092,kafka-2:9092"


def test_bootstrap_is_read_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The EXCHANGE_ prefix maps the environment variable onto the setting."""
    monkeypatch.setenv("EXCHANGE_KAFKA_BOOTSTRAP", "10.0.0.5:9093")
    assert resolve_bootstrap(ExchangeSettings(state_dir=tmp_path)) == "10.0.0.5:9093"


def test_no_bootstrap_and_no_local_broker_says_what_to_run(tmp_path: Path) -> None:
    """Without a cluster or a running local broker, the error names `exchange broker start`."""
    with pytest.raises(BrokerError, match="run `exchange broker start`") as caught:
        resolve_bootstrap(_settings(tmp_path))
    assert caught.value.retriable is False


def test_recorded_broker_that_died_is_not_used(tmp_path: Path) -> None:
    """A running.json left behind by a broker that is gone does not resolve."""
    home = tmp_path / "state" / "broker"
    home.mkdir(parents=True)
    record = {
        "pid": os.getpid(),
        "bootstrap": "127.0.0.1:1",
        "kafka_version": "4",
        "started_at": "",
    }
    (home / "running.json").write_text(json.dumps(record))
    with pytest.raises(BrokerError, match="exchange broker start"):
        resolve_bootstrap(_settings(tmp_path))


def test_plaintext_needs_no_security_options(tmp_path: Path) -> None:
    """The local default passes only the protocol to aiokafka."""
    assert client_options(_settings(tmp_path)) == {"security_protocol": "PLAINTEXT"}


def test_sasl_ssl_gives_credentials_and_a_tls_context(tmp_path: Path) -> None:
    """SASL_SSL yields SCRAM credentials (secret revealed only here) and an SSL context."""
    options = client_options(
        _settings(
            tmp_path,
            security_protocol="SASL_SSL",
            sasl_mechanism="SCRAM-SHA-512",
            sasl_username="agency-tax",
            sasl_password=SecretStr("s3cret"),
        )
    )
    assert isinstance(options.pop("ssl_context"), ssl.SSLContext)
    assert options == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "agency-tax",
        "sasl_plain_password": "s3cret",
    }


def test_sasl_without_credentials_names_the_missing_settings(tmp_path: Path) -> None:
    """A SASL protocol without mechanism/user/password lists the variables to set."""
    settings = _settings(tmp_path, security_protocol="SASL_PLAINTEXT")
    with pytest.raises(ConfigError, match="EXCHANGE_SASL_MECHANISM, EXCHANGE_SASL_USERNAME"):
        client_options(settings)


def test_missing_ca_file_is_a_config_error(tmp_path: Path) -> None:
    """An EXCHANGE_SSL_CAFILE that does not exist is reported, not passed to OpenSSL."""
    settings = _settings(tmp_path, security_protocol="SSL", ssl_cafile=tmp_path / "nope.pem")
    with pytest.raises(ConfigError, match="EXCHANGE_SSL_CAFILE"):
        client_options(settings)


async def test_unreachable_cluster_is_one_line(closed_port: int) -> None:
    """A refused connection becomes a BrokerError with one line naming the address."""
    with pytest.raises(BrokerError) as caught:
        await check_reachable(f"127.0.0.1:{closed_port}", timeout=5.0)
    assert f"cannot reach Kafka at 127.0.0.1:{closed_port}" in caught.value.message
    assert "\n" not in caught.value.message


def test_cli_status_reports_unreachable_bootstrap_in_one_line(
    tmp_path: Path, closed_port: int
) -> None:
    """`exchange broker status` against a dead EXCHANGE_KAFKA_BOOTSTRAP: exit 1, one line."""
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "EXCHANGE_STATE_DIR": str(tmp_path / "state"),
        "EXCHANGE_KAFKA_BOOTSTRAP": f"127.0.0.1:{closed_port}",
    }
    done = subprocess.run(
        [str(EXCHANGE), "broker", "status"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.startswith(f"error: cannot reach Kafka at 127.0.0.1:{closed_port}")
    assert done.stderr.count("\n") == 1


def test_cli_status_of_a_stopped_local_broker(tmp_path: Path) -> None:
    """`exchange broker status` with nothing running prints `stopped` and exits 3."""
    env = {"PATH": os.environ["PATH"], "EXCHANGE_STATE_DIR": str(tmp_path / "state")}
    done = subprocess.run(
        [str(EXCHANGE), "broker", "status"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout) == (3, "stopped\n")
