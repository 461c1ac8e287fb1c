"""docs/metrics.md lists every metric the bus defines, with its type and labels, and no other."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from _prometheus import MetricDef, metric_definitions

DOC = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"
DEFINED = metric_definitions()


def _documented() -> dict[str, tuple[str, frozenset[str], str]]:
    """Documented metric -> (type, labels, meaning), from the tables' rows."""
    rows = {}
    for line in DOC.read_text().splitlines():
        if not re.match(r"\| `exchange_[a-z_]+` \|", line):
            continue
        name, kind, labels, meaning = (cell.strip() for cell in line.strip("|").split("|", 3))
        assert name.strip("`") not in rows, f"{name} is documented twice"
        rows[name.strip("`")] = (kind, frozenset(re.findall(r"`([a-z_]+)`", labels)), meaning)
    return rows


DOCUMENTED = _documented()


def test_the_bus_defines_metrics_and_the_doc_has_rows() -> None:
    """The parsers find something on both sides (an empty match would pass vacuously)."""
    assert len(DEFINED) >= 20
    assert len(DOCUMENTED) >= 20


@pytest.mark.parametrize("metric", [DEFINED[name] for name in sorted(DEFINED)], ids=str)
def test_every_metric_is_documented_with_its_type_and_labels(metric: MetricDef) -> None:
    """Each metric has a row under the name operators query, with its type, labels, meaning."""
    row = DOCUMENTED.get(metric.documented_name)
    assert row is not None, f"{metric.documented_name} ({metric.where}) is not in docs/metrics.md"
    kind, labels, meaning = row
    assert kind == metric.kind, metric.documented_name
    assert labels == metric.labels, metric.documented_name
    assert len(meaning) > 20, metric.documented_name


def test_no_row_documents_a_metric_that_does_not_exist() -> None:
    """Every documented metric is defined in the code."""
    defined = {metric.documented_name for metric in DEFINED.values()}
    assert set(DOCUMENTED) - defined == set()


def test_no_label_can_carry_an_inquiry_id_or_personal_data() -> None:
    """Label names stay within the bounded vocabulary (codes, kinds, reasons)."""
    allowed = {
        "agency", "requester", "provider", "service", "outcome", "reason", "mode", "kind",
        "hop", "result", "component", "topic", "partition", "connector", "step",
    }  # fmt: skip
    used = {label for metric in DEFINED.values() for label in metric.labels}
    assert used <= allowed, used - allowed
