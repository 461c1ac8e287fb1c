"""Typed, frozen settings, read from ``EXCHANGE_*`` environment variables.

Built once in an entry point (``main()``, a fixture), never at import time. Every setting is
listed in ``docs/settings.md``; durations are seconds as floats.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_state_dir() -> Path:
    return Path.home() / ".local" / "state" / "inquiry-exchange"


class ExchangeSettings(BaseSettings):
    """Settings shared by every process of the bus."""

    model_config = SettingsConfigDict(env_prefix="EXCHANGE_", frozen=True, extra="ignore")

    # --- Kafka connection -------------------------------------------------------------------
    kafka_bootstrap: str | None = Field(
        default=None,
        description="Bootstrap servers of an existing cluster; unset means the local broker "
        "started with `exchange broker start`.",
    )
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None
    request_timeout: float = Field(default=30.0, gt=0, description="Kafka request timeout, s.")
    fetch_max_wait: float = Field(
        default=0.1,
        gt=0,
        le=10,
        description="Longest a consumer's fetch waits at the broker for new records, s "
        "(the stream workers' intake, the client SDK's reply reader, the provider SDK's intake).",
    )

    # --- Topology -----------------------------------------------------------------------------
    topic_prefix: str = Field(default="exchange", pattern=r"^[A-Za-z0-9._-]+$")
    partitions: int = Field(default=6, ge=1, description="Partitions of every inquiry topic.")
    replication_factor: int = Field(default=1, ge=1)
    topic_retention: float = Field(
        default=604_800.0, gt=0, description="How long out/in/replies topics keep records, s."
    )
    audit_retention: float | None = Field(
        default=None, gt=0, description="How long the audit topic keeps records, s; unset: forever."
    )
    dlq_retention: float = Field(
        default=2_592_000.0, gt=0, description="How long the dead-letter topic keeps records, s."
    )
    compliance_retention: float | None = Field(
        default=34_560_000.0,
        gt=0,
        description="How long the compliance topic keeps a window's figures after they were "
        "last published, s (400 days); unset: forever.",
    )

    # --- Catalog and payloads -----------------------------------------------------------------
    catalog_path: Path = Field(
        default=Path("catalog/demo"), description="Folder of the catalog's YAML files."
    )
    schemas_path: Path = Field(default=Path("schemas"), description="Folder of .avsc files.")
    max_record_bytes: int = Field(
        default=1_048_576, gt=0, description="Largest inquiry record accepted, in bytes."
    )

    # --- Signatures (docs/architecture.md, "Signatures") -----------------------------------------
    signing_key_file: Path | None = Field(
        default=None,
        description="This agency's Ed25519 private key (PEM, PKCS#8): the SDK signs with it.",
    )
    signing_key: SecretStr | None = Field(
        default=None, description="The same key as text (PEM, or base64 of the 32-byte seed)."
    )

    # --- Stream workers -------------------------------------------------------------------------
    worker_tick_interval: float = Field(
        default=0.5,
        gt=0,
        le=60,
        description="How often the stream workers check pending inquiries against the wall "
        "clock, s: a timeout is written at most this long after its deadline.",
    )
    commit_interval: float = Field(
        default=0.05,
        ge=0,
        le=10,
        description="Least time between the starts of two transactions of one partition, s: "
        "records that arrive meanwhile gather into one transaction (less broker CPU per "
        "inquiry, more latency). 0: a partition commits again as soon as it can.",
    )
    settled_retention: float = Field(
        default=3600.0,
        ge=0,
        description="How long the stream workers remember a settled inquiry, s, to recognise "
        "late and duplicate records for it (a response after that is an unknown one).",
    )

    # --- Evaluation processor -------------------------------------------------------------------
    evaluation_stall: float = Field(
        default=60.0,
        gt=0,
        description="The evaluation processor exits with code 3 when it has audit records to "
        "process (or a rebalance or table recovery to finish) and makes no progress for this "
        "long, s, so that its supervisor restarts it.",
    )

    # --- Local state and operations -----------------------------------------------------------
    state_dir: Path = Field(
        default_factory=_default_state_dir,
        description="Where the local broker and workers keep their files.",
    )
    metrics_host: str = Field(
        default="127.0.0.1", description="Address /metrics binds to (0.0.0.0 in containers)."
    )
    metrics_port: int | None = Field(
        default=None, ge=0, le=65535, description="Serve /metrics on this port (0: any free)."
    )
    log_format: Literal["auto", "console", "json"] = "auto"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
