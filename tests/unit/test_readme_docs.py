"""The README links every documentation page, and every page it links exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINK = re.compile(r"\]\((docs/[^)#\s]+\.md)")


def test_readme_links_every_doc_page_and_only_existing_ones() -> None:
    """A page added under docs/ is listed in the README; a renamed page breaks no link there."""
    linked = set(LINK.findall((ROOT / "README.md").read_text(encoding="utf-8")))
    pages = {f"docs/{page.name}" for page in (ROOT / "docs").glob("*.md")}
    assert sorted(pages - linked) == []
    assert sorted(linked - pages) == []
