"""The SDK's public API type-checks in user code under mypy --strict, and misuse does not."""

from __future__ import annotations

from pathlib import Path

from mypy import api

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "tests" / "typing" / "example_user_code.py"

MISUSE = """
from exchange import Answer, ExchangeClient, Inquiry, Provider


async def wrong(client: ExchangeClient, provider: Provider) -> None:
    outcome = await client.inquire("nocr.person.verify.v1", ["not", "a", "dict"], purpose="x")
    outcome.kind = "ANSWERED"

    @provider.handles("nocr.person.verify.v1")
    async def handler(inquiry: Inquiry) -> Answer:
        return Answer.found(inquiry.id)
"""


def test_example_passes_and_misuse_fails_mypy_strict(tmp_path: Path) -> None:
    """The typed example is clean under --strict; each of three misuses is reported."""
    misuse = tmp_path / "misuse.py"
    misuse.write_text(MISUSE)
    stdout, stderr, _status = api.run(
        [
            "--strict",
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--cache-dir",
            str(ROOT / ".mypy_cache"),
            str(EXAMPLE),
            str(misuse),
        ]
    )
    errors = [line for line in stdout.splitlines() if ": error:" in line]
    assert not [line for line in errors if "example_user_code" in line], stdout + stderr
    misuse_lines = {int(line.split(":")[1]) for line in errors if "misuse.py" in line}
    assert misuse_lines == {6, 7, 11}, stdout + stderr
