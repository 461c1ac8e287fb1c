"""`exchange topics` and `exchange dlq` without a reachable Kafka: one clear line, exit 1."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXCHANGE = Path(sys.executable).with_name("exchange")


@pytest.mark.parametrize("command", [["topics", "plan"], ["topics", "list"], ["dlq", "show"]])
def test_unreachable_kafka_is_one_error_line(command: list[str], tmp_path: Path) -> None:
    """A refused connection ends the command with `error: cannot reach Kafka…`, no traceback."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXCHANGE_")}
    env |= {
        "EXCHANGE_KAFKA_BOOTSTRAP": "127.0.0.1:1",
        "EXCHANGE_STATE_DIR": str(tmp_path),
        "EXCHANGE_CATALOG_PATH": str(ROOT / "catalog" / "demo"),
        "EXCHANGE_SCHEMAS_PATH": str(ROOT / "schemas"),
    }
    done = subprocess.run(
        [str(EXCHANGE), *command], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines()[-1].startswith("error: cannot reach Kafka")
