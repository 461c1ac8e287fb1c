"""The bus's metrics through a real Prometheus: a real worker and provider, scraped every second.

One scenario serves the module (start-up is the slow part): a real ``exchange worker``
subprocess and an SDK provider (in this process, its own registry on ``/metrics`` through
``serve_metrics``) are scraped by Prometheus on loopback, with the repository's alert rules
loaded. A client asks one warm-up inquiry, waits until Prometheus holds the counters at 1,
then asks ``N`` more. The tests then ask Prometheus, at one fixed instant, what it saw.

Why the warm-up: a labelled counter exists only from its first increment, and Prometheus 2.x
cannot tell that a series first seen at ``N`` started at 0, so ``increase()`` over a fresh
series misses everything before its first scrape. After the warm-up the series exist at a
known value, and the exact increase is the difference of two instant values.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from _grafana import FILES, load, queries, substitute
from _prometheus import Prometheus, finite, metric_names, running_prometheus
from _worker_proc import WorkerProcess, bus_settings, create_bus_topics, running_worker
from prometheus_client import CollectorRegistry
from samples import PERSON, verdict

from exchange import (
    Answer,
    ExchangeClient,
    ExchangeSettings,
    Inquiry,
    InquirySpec,
    OutcomeKind,
    Provider,
)
from exchange._metrics import serve_metrics

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "docker" / "prometheus" / "alerts.yml"
#: Inquiries asked after the warm-up one.
N = 50
VERIFY = "nocr.person.verify.v1"
PURPOSE = "tax-registration"
SUBJECT = ("PERSON", "P-88127731")
END_USER = "officer-4711"
#: Values that must never reach a log line: payload values, the subject and end-user ids.
PERSONAL = ["0012345678", "1990-03-21", "Sara", "Ahmadi", SUBJECT[1], END_USER]
JOBS = ("exchange-worker", "exchange-provider")
#: Grafana's variables for the dashboards' queries: TAX asks, NOCR answers, recent traffic.
GRAFANA_VALUES = {"__rate_interval": "1m", "__interval": "1m", "__range": "2m", "connector": ".*"}
#: Dashboard queries with no data in this scenario although their metrics have series.
QUIET_HERE = {("exchange-agency", "panel 5 'Timed out'")}
T = TypeVar("T")


@dataclass
class Scenario:
    """What the module's run left behind, and the instant the tests evaluate PromQL at."""

    prom: Prometheus
    worker: WorkerProcess
    provider_registry: CollectorRegistry
    client_registry: CollectorRegistry
    warmed_at: float
    settled_at: float
    inquiry_ids: list[str]
    #: Seconds per phase (start-up, warm-up, traffic, scraped), printed with -s.
    timings: dict[str, float]


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` in a thread of its own, so pytest-asyncio's loop stays untouched."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _spec() -> InquirySpec:
    return InquirySpec(VERIFY, PERSON, PURPOSE, end_user_id=END_USER, subject=SUBJECT)


@pytest.fixture(scope="module")
def scenario(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    """Worker + provider scraped by Prometheus; one warm-up inquiry, then ``N`` more."""
    started = time.monotonic()
    base = ExchangeSettings(
        kafka_bootstrap=kafka_bootstrap,
        state_dir=tmp_path_factory.mktemp("worker"),
        topic_prefix=f"prom-{uuid.uuid4().hex[:8]}",
    )
    settings = bus_settings(base)
    _run(create_bus_topics(settings, ["TAX", "NOCR"]))
    provider_registry = CollectorRegistry()
    # As a provider process serves it. serve_metrics has no stop: its daemon thread outlives
    # the module, still serving this registry, which nothing else uses.
    provider_port = serve_metrics(provider_registry, host="127.0.0.1", port=0)
    # DEBUG: the worker then logs every routed and settled inquiry, which the log test reads.
    env = {"EXCHANGE_LOG_LEVEL": "DEBUG"}
    with running_worker(settings, args=["--metrics-port", "0"], env=env) as worker:
        url = worker.wait_for(lambda e: e.get("event") == "serving metrics")["url"]
        worker_target = re.sub(r"^http://([^/]+)/metrics$", r"\1", url)
        jobs = {JOBS[0]: [worker_target], JOBS[1]: [f"127.0.0.1:{provider_port}"]}
        workdir = tmp_path_factory.mktemp("prometheus")
        with running_prometheus(workdir, jobs, rule_files=[ALERTS]) as prom:
            prom.wait_until("up == 1", lambda r: len(r) == len(JOBS))
            timings = {"start-up": time.monotonic() - started}
            client_registry = CollectorRegistry()
            drive = _drive(settings, prom, provider_registry, client_registry, timings)
            warmed_at, ids = _run(drive)
            mark = time.monotonic()
            prom.wait_until("sum(exchange_inquiries_total)", _equals(N + 1))
            prom.wait_until("sum(exchange_provider_handled_total)", _equals(N + 1))
            timings["scraped"] = time.monotonic() - mark
            settled_at = time.time()
            yield Scenario(
                prom,
                worker,
                provider_registry,
                client_registry,
                warmed_at,
                settled_at,
                ids,
                timings,
            )
            print(f"prometheus scenario timings (s): {timings}")


async def _drive(
    settings: ExchangeSettings,
    prom: Prometheus,
    provider_registry: CollectorRegistry,
    client_registry: CollectorRegistry,
    timings: dict[str, float],
) -> tuple[float, list[str]]:
    """The warm-up inquiry, the wait until it is scraped, then ``N`` inquiries at once."""
    provider = Provider(agency="NOCR", settings=settings, registry=provider_registry)

    @provider.handles(VERIFY)
    async def verify(inquiry: Inquiry) -> Answer:
        return Answer.found(verdict(inquiry.payload["national_id"]))

    client = ExchangeClient.connect(
        agency="TAX", subsystem="registration", settings=settings, registry=client_registry
    )
    async with provider, client as tax:
        mark = time.monotonic()
        first = await tax.inquire(VERIFY, PERSON, purpose=PURPOSE, timeout=30.0)
        assert first.kind is OutcomeKind.ANSWERED, first
        # Both processes' counters must be in Prometheus at 1 before the measured traffic.
        for expr in ("sum(exchange_inquiries_total)", "sum(exchange_provider_handled_total)"):
            await asyncio.to_thread(prom.wait_until, expr, _equals(1))
        warmed_at = time.time()
        timings["warm-up"] = time.monotonic() - mark
        mark = time.monotonic()
        outcomes = await tax.inquire_many([_spec() for _ in range(N)], timeout=30.0)
        timings["traffic"] = time.monotonic() - mark
    assert [o.kind for o in outcomes] == [OutcomeKind.ANSWERED] * N, outcomes
    return warmed_at, [str(first.inquiry_id)] + [str(o.inquiry_id) for o in outcomes]


def _equals(expected: float) -> Any:
    return lambda result: len(result) == 1 and result[0].value == expected


def test_worker_and_provider_targets_are_up(scenario: Scenario) -> None:
    """Prometheus scrapes both processes' /metrics without errors."""
    targets = {t["labels"]["job"]: t for t in scenario.prom.targets()}
    assert set(targets) == set(JOBS)
    for job, target in targets.items():
        assert (target["health"], target["lastError"]) == ("up", ""), job
    assert scenario.prom.by("up", "job") == dict.fromkeys(JOBS, 1.0)


def test_answered_increase_equals_the_inquiries_sent(scenario: Scenario) -> None:
    """Every inquiry sent after the warm-up shows up once, as ANSWERED, in the worker's counter."""
    prom, at = scenario.prom, scenario.settled_at
    total = "sum by (outcome) (exchange_inquiries_total)"
    assert prom.by(total, "outcome") == {"ANSWERED": N + 1.0}
    exact = f"{total} - sum by (outcome) (exchange_inquiries_total @ {scenario.warmed_at:.3f})"
    assert {s.labels["outcome"]: s.value for s in prom.query(exact, at)} == {"ANSWERED": N}
    # increase() extrapolates to the window's edges: at least N, at most twice (the exact
    # figure is the difference test above; this one checks the rate query works at all).
    window = round(at - scenario.warmed_at) + 3
    increase = prom.value(
        f'sum(increase(exchange_inquiries_total{{outcome="ANSWERED"}}[{window}s]))', at
    )
    assert increase is not None
    assert N <= round(increase) <= N * 2, increase


def test_answered_rate_is_above_zero(scenario: Scenario) -> None:
    """The per-second rate of answered inquiries over the traffic is positive."""
    rate = scenario.prom.value(
        'sum(rate(exchange_inquiries_total{outcome="ANSWERED",requester="TAX",'
        'provider="NOCR",service="nocr.person.verify.v1"}[1m]))',
        scenario.settled_at,
    )
    assert rate is not None
    assert rate > 0


def test_p99_latencies_are_finite(scenario: Scenario) -> None:
    """The end-to-end and per-hop p99 from the histograms are finite, positive and plausible."""
    prom, at = scenario.prom, scenario.settled_at
    end_to_end = prom.value(
        "histogram_quantile(0.99, sum by (le) (rate(exchange_inquiry_latency_seconds_bucket[1m])))",
        at,
    )
    assert finite(end_to_end), end_to_end
    assert end_to_end is not None
    assert 0 < end_to_end < 30
    hops = {
        s.labels["hop"]: s.value
        for s in prom.query(
            "histogram_quantile(0.99, sum by (hop, le) "
            "(rate(exchange_hop_latency_seconds_bucket[1m])))",
            at,
        )
    }
    assert {"request", "provider"} <= set(hops), hops
    assert all(finite(hops[hop]) for hop in ("request", "provider")), hops


def test_provider_counts_match_the_worker_and_the_client(scenario: Scenario) -> None:
    """Provider handled, worker answered and client received agree: N + 1 each."""
    prom, at = scenario.prom, scenario.settled_at
    handled = prom.value(
        'sum(exchange_provider_handled_total{agency="NOCR",service="nocr.person.verify.v1",'
        'result="FOUND",mode="automatic"})',
        at,
    )
    in_registry = scenario.provider_registry.get_sample_value(
        "exchange_provider_handled_total",
        {"agency": "NOCR", "service": VERIFY, "result": "FOUND", "mode": "automatic"},
    )
    answers = prom.value('sum(exchange_answers_total{provider="NOCR",mode="automatic"})', at)
    timed = prom.value("sum(exchange_provider_handler_seconds_count)", at)
    received = scenario.client_registry.get_sample_value(
        "exchange_client_inquiries_total",
        {"agency": "NOCR", "service": VERIFY, "outcome": "ANSWERED"},
    )
    assert handled == in_registry == answers == timed == received == N + 1


def test_pending_drains_and_lag_is_sampled(scenario: Scenario) -> None:
    """No inquiry is left pending; lag is sampled per partition; the engine counts every record."""
    prom = scenario.prom
    assert prom.value("sum(exchange_pending_inquiries)", scenario.settled_at) == 0
    # The worker samples lag every few seconds: wait for a sample after the traffic.
    lag = prom.wait_until(
        'exchange_consumer_lag{topic=~".+[.]out[.].+"}',
        lambda r: len(r) >= 2 and all(s.value == 0 for s in r),
        timeout=30.0,
    )
    assert {s.labels["partition"] for s in lag} >= {"0", "1"}
    # The engine's counters are copied to the metrics every second: wait for the copy.
    prom.wait_until(
        "sum(exchange_engine_records_total)",
        _equals(2 * (N + 1)),  # a request and a response per inquiry
    )


def test_alert_rules_evaluate_against_real_series(scenario: Scenario) -> None:
    """The shipped alert rules load, evaluate without errors, and stay quiet on a healthy bus."""
    prom = scenario.prom
    deadline = time.monotonic() + 30.0
    # Before its first evaluation a rule's lastEvaluation is Go's zero time, year 0001.
    while any(r["lastEvaluation"].startswith("0001") for r in prom.rules()):
        assert time.monotonic() < deadline, prom.rules()
        time.sleep(0.25)
    loaded = prom.rules()
    assert loaded
    assert [(r["name"], r.get("lastError")) for r in loaded if r["health"] != "ok"] == []
    assert prom.query('ALERTS{alertstate="firing"}') == []


def test_dashboard_queries_run_on_the_real_series(scenario: Scenario) -> None:
    """Every dashboard query evaluates; those over metrics the bus has exported return data."""
    prom, at = scenario.prom, scenario.settled_at
    present = prom.names()
    empty = []
    for path in FILES:
        for query in queries(load(path)):
            agency = "NOCR" if query.row.startswith("As provider") else "TAX"
            expr = substitute(query.expr, {**GRAFANA_VALUES, "agency": agency})
            result = prom.query(expr, at)  # raises unless Prometheus accepts the query
            quiet = (query.dashboard, query.where) in QUIET_HERE
            if not result and not quiet and metric_names(query.expr) <= present:
                empty.append(f"{query.dashboard} {query.where}: {expr}")
    assert empty == []


def test_worker_logs_inquiry_ids_and_no_personal_data(scenario: Scenario) -> None:
    """The worker's log names each inquiry by id and never carries payload or subject values."""
    worker = scenario.worker
    logged = {event.get("inquiry_id") for event in worker.events}
    assert set(scenario.inquiry_ids) <= logged
    text = worker.log(last=len(worker.lines))
    leaked = [value for value in PERSONAL if value in text]
    assert leaked == []
