"""The summary of a demo run: one JSON document built from the tally, and its tables (pure).

Definitions (also in ``docs/demo.md``):

- ``outcomes``: sent inquiries by the kind of the first outcome record on their requester's
  replies topic;
- ``lost``: sent inquiries that got no outcome at the requester: none on the replies topic,
  or (for inquiries sent through the SDK) none handed to the caller before its timeout;
- ``duplicates``: sent inquiries with more than one outcome record on the replies topics;
- ``dlq``: records dead-lettered during the run (the garbage records, and anything else);
- ``audit``: ``SETTLED`` audit records of the run's inquiries by kind; ``agrees`` when every
  sent inquiry has exactly one, of the kind its requester got;
- ``latency_ms``: nearest-rank percentiles of the time from sending to the outcome at the
  requester, over ``ANSWERED`` inquiries (``latency_ms_by_kind`` for every kind);
- ``throughput_per_s``: settled inquiries per second, from the first send to the last outcome.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from exchange._outcome import OutcomeKind
from exchange.demo._tally import Tally

__all__ = ["KINDS", "percentiles", "summarize"]

KINDS = tuple(kind.value for kind in OutcomeKind)


def percentiles(samples: Iterable[float]) -> dict[str, float | None]:
    """p50, p95 and p99 (nearest rank: each is a value some sample really had), rounded."""
    ordered = sorted(samples)
    result: dict[str, float | None] = {}
    for name, q in (("p50", 0.50), ("p95", 0.95), ("p99", 0.99)):
        if not ordered:
            result[name] = None
            continue
        rank = max(1, math.ceil(q * len(ordered)))
        result[name] = round(ordered[rank - 1], 1)
    return result


def _kinds(counter: Mapping[str, int]) -> dict[str, int]:
    return {kind: counter.get(kind, 0) for kind in KINDS}


def _latencies_ms(tally: Tally) -> dict[str, dict[str, list[float]]]:
    """Per kind and per service: milliseconds from send to outcome at the requester."""
    found: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for inquiry_id, sent in tally.sent.items():
        reply = tally.replies.get(inquiry_id)
        outcome = tally.client.get(inquiry_id)
        if sent.via_client and outcome is not None and not outcome.local:
            if outcome.elapsed is None:
                continue
            kind, ms = outcome.kind.value, outcome.elapsed * 1000
        elif not sent.via_client and reply is not None:
            kind, ms = reply.kind, (reply.at - sent.at) * 1000
        else:
            continue
        found[kind][sent.service].append(ms)
    return found


def _lost(tally: Tally) -> int:
    lost = 0
    for inquiry_id, sent in tally.sent.items():
        if inquiry_id not in tally.replies:
            lost += 1
        elif sent.via_client:
            outcome = tally.client.get(inquiry_id)
            lost += outcome is None or outcome.local
    return lost


def _by_service(
    tally: Tally, providers: Mapping[str, str], latencies: Mapping[str, Mapping[str, list[float]]]
) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for inquiry_id, sent in tally.sent.items():
        counts[sent.service]["sent"] += 1
        reply = tally.replies.get(inquiry_id)
        if reply is not None:
            counts[sent.service][reply.kind] += 1
    for service in sorted(counts):
        answered = latencies.get(OutcomeKind.ANSWERED.value, {}).get(service, [])
        rows[service] = {
            "provider": providers.get(service),
            "sent": counts[service]["sent"],
            **_kinds(counts[service]),
            "latency_ms": percentiles(answered),
        }
    return rows


def _details(tally: Tally) -> dict[str, Any]:
    status: Counter[str] = Counter()
    mode: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    by_intent: dict[str, Counter[str]] = defaultdict(Counter)
    for inquiry_id, sent in tally.sent.items():
        reply = tally.replies.get(inquiry_id)
        if reply is None:
            continue
        by_intent[sent.intent.value][reply.kind] += 1
        if reply.kind == OutcomeKind.ANSWERED:
            status[reply.status or "UNKNOWN"] += 1
            mode[reply.answered_by or "UNKNOWN"] += 1
        elif reply.kind == OutcomeKind.REJECTED:
            reasons[reply.reject_reason or "UNKNOWN"] += 1
        elif reply.kind == OutcomeKind.FAILED:
            errors[reply.error_code or "UNKNOWN"] += 1
    return {
        "answered_status": dict(status),
        "answered_by": dict(mode),
        "rejected_reasons": dict(reasons),
        "failed_codes": dict(errors),
        "by_intent": {intent: _kinds(kinds) for intent, kinds in sorted(by_intent.items())},
    }


def _audit(tally: Tally) -> dict[str, Any]:
    settled: Counter[str] = Counter()
    agrees = True
    for inquiry_id in tally.sent:
        kind = tally.audit.get(inquiry_id)
        reply = tally.replies.get(inquiry_id)
        if kind is not None:
            settled[kind] += 1
        if tally.audit_records[inquiry_id] != 1 or reply is None or reply.kind != kind:
            agrees = False
    return {"settled": _kinds(settled), "agrees": agrees, "anomalies": dict(tally.anomalies)}


def _timing(tally: Tally) -> dict[str, float | None]:
    first = tally.first_sent_at
    ends = [tally.replies[i].at for i in tally.sent if i in tally.replies]
    if first is None or not ends:
        return {"throughput_per_s": None, "wall_s": None, "send_s": None}
    wall = max(ends) - first
    send = (tally.last_sent_at or first) - first
    settled = tally.settled
    return {
        "throughput_per_s": round(settled / wall, 1) if wall > 0 else None,
        "wall_s": round(wall, 2),
        "send_s": round(send, 2),
    }


def summarize(
    tally: Tally, *, providers: Mapping[str, str], extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The summary document of a finished run (see the module docstring).

    ``providers`` maps each service to its provider agency; ``extra`` is merged in (where the
    metrics are, the bootstrap address …).
    """
    latencies = _latencies_ms(tally)
    by_kind = {
        kind: percentiles(
            ms for per_service in latencies.get(kind, {}).values() for ms in per_service
        )
        for kind in KINDS
    }
    duplicates = sum(1 for i in tally.sent if tally.reply_records[i] > 1)
    local = sum(1 for o in tally.client.values() if o.local)
    return {
        "sent": len(tally.sent),
        "garbage_records": tally.garbage_sent,
        "outcomes": _kinds(tally.kinds),
        **_details(tally),
        "by_service": _by_service(tally, providers, latencies),
        "lost": _lost(tally),
        "duplicates": duplicates,
        "client_local_timeouts": local,
        "dlq": sum(tally.dead_letters.values()),
        "dlq_reasons": dict(tally.dead_letters),
        "audit": _audit(tally),
        **_timing(tally),
        "latency_ms": by_kind[OutcomeKind.ANSWERED.value],
        "latency_ms_by_kind": by_kind,
        **(extra or {}),
    }


def healthy(summary: Mapping[str, Any]) -> bool:
    """No inquiry lost, none delivered twice, the audit trail agrees, garbage dead-lettered."""
    return bool(
        summary["lost"] == 0
        and summary["duplicates"] == 0
        and summary["audit"]["agrees"]
        and summary["dlq"] >= summary["garbage_records"]
    )
