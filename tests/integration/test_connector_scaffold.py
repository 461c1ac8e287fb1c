"""``exchange connector new acme --path DIR`` writes a skeleton whose own tests pass."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def _exchange(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-c", "from exchange.cli import main; main()", *args]
    return subprocess.run(command, check=False, cwd=cwd, capture_output=True, text=True, timeout=60)


def test_the_generated_skeleton_passes_its_own_tests(kafka_bootstrap: str, tmp_path: Path) -> None:
    """Generated, then its mapping tests and its conformance test pass on the real broker."""
    _passes_its_own_tests(kafka_bootstrap, tmp_path / "x")


def test_the_generated_requester_skeleton_passes_its_own_tests(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """--kind requester: its mapping tests and the requester conformance kit pass."""
    target = tmp_path / "x"
    _passes_its_own_tests(kafka_bootstrap, target, "--kind", "requester")
    assert (target / "acme_connector" / "_source.py").is_file()


def _passes_its_own_tests(kafka_bootstrap: str, target: Path, *options: str) -> None:
    made = _exchange("connector", "new", "acme", "--path", str(target), *options)
    assert made.returncode == 0, made.stderr
    assert (target / "acme_connector" / "_mapping.py").is_file()
    env = {**os.environ, "EXCHANGE_KAFKA_BOOTSTRAP": kafka_bootstrap}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        check=False,
        cwd=target,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "4 passed" in run.stdout


def test_new_refuses_an_unknown_kind(tmp_path: Path) -> None:
    """--kind is provider or requester; anything else is one line naming both."""
    made = _exchange("connector", "new", "acme", "--path", str(tmp_path / "x"), "--kind", "sink")
    assert made.returncode == 1
    assert "provider, requester" in made.stderr
    assert not (tmp_path / "x").exists()


def test_new_refuses_a_folder_that_is_not_empty(tmp_path: Path) -> None:
    """Nothing is overwritten without --force; the error is one line."""
    (tmp_path / "keep.txt").write_text("mine")
    made = _exchange("connector", "new", "acme", "--path", str(tmp_path))
    assert made.returncode == 1
    assert made.stderr.strip().count("\n") == 0
    assert "not empty" in made.stderr
