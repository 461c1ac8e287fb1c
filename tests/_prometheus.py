"""A real Prometheus for the tests: find (or install) it, run it on loopback, ask it PromQL.

::

    promtool = prometheus_tool("promtool")            # a path, or the test is skipped (loudly)
    with running_prometheus(tmp_path, {"worker": ["127.0.0.1:9400"]}) as prom:
        prom.wait_until("up", lambda r: r and all(s.value == 1 for s in r))
        prom.by("sum by (outcome) (exchange_inquiries_total)", "outcome")  # {"ANSWERED": 5.0}

Prometheus and promtool come from the Debian ``prometheus`` package (`make prometheus`, which
``make test`` runs first). When they are missing and this process may run apt-get (root), the
package is installed once per session; otherwise the tests that need them are skipped with a
reason that says how to get them, so a developer's bare ``pytest`` still works while
``make test`` (and so CI) always runs them.

:func:`metric_names` pulls the metric names out of a PromQL expression, for the tests that
check dashboards and alert rules only name metrics the bus exports.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from exchange._local_broker_os import parent_death_signal, terminate_child

#: Start-up on two busy cores, from an empty storage folder.
START_TIMEOUT = 60.0
INSTALL_HINT = (
    "run `make prometheus` (installs the Debian `prometheus` package with apt-get), "
    "or put Prometheus 2.x's `prometheus` and `promtool` on PATH"
)


# --- finding the tools ------------------------------------------------------------------------


def prometheus_tool(name: str) -> str:
    """The path of ``prometheus`` or ``promtool``; installs them if possible, else skips."""
    path = shutil.which(name) or (_install() and shutil.which(name))
    if not path:
        pytest.skip(f"PROMETHEUS TESTS SKIPPED: `{name}` not found; {INSTALL_HINT}")
    return path


@functools.cache
def _install() -> bool:
    """Install the Debian package once per session, when apt-get and root are at hand."""
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        return False
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["install", "-y", "-qq", "--no-install-recommends", "prometheus"]
    for args in (["update", "-qq"], install):
        done = subprocess.run([apt, *args], env=env, capture_output=True, check=False)
        if done.returncode != 0:
            return False
    return True


# --- running it -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """One series of an instant-query result."""

    labels: dict[str, str]
    value: float


class Prometheus:
    """A running Prometheus and a small PromQL client over its HTTP API."""

    def __init__(self, url: str, process: subprocess.Popen[bytes], log_file: Path) -> None:
        self.url = url
        self.process = process
        self.log_file = log_file
        self.http = httpx.Client(base_url=url, timeout=10.0)

    def query(self, expr: str, at: float | None = None) -> list[Sample]:
        """Evaluate ``expr`` (an instant query, now or at unix time ``at``)."""
        params = {"query": expr} if at is None else {"query": expr, "time": str(at)}
        data = self._get("/api/v1/query", params)
        if data["resultType"] == "scalar":
            return [Sample({}, float(data["result"][1]))]
        return [Sample(s["metric"], float(s["value"][1])) for s in data["result"]]

    def value(self, expr: str, at: float | None = None) -> float | None:
        """The value of a one-series result; None when the result is empty."""
        result = self.query(expr, at)
        assert len(result) <= 1, f"{expr} gave {len(result)} series: {result}"
        return result[0].value if result else None

    def by(self, expr: str, label: str) -> dict[str, float]:
        """The result as ``{value of label: sample value}``."""
        return {s.labels.get(label, ""): s.value for s in self.query(expr)}

    def wait_until(
        self, expr: str, done: Callable[[list[Sample]], bool], timeout: float = 30.0
    ) -> list[Sample]:
        """Poll ``expr`` until ``done(result)``; AssertionError with the last result if never."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.query(expr)
            if done(result):
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"{expr} never met the condition; last result: {result}")
            time.sleep(0.25)

    def names(self) -> set[str]:
        """The metric names Prometheus holds series of."""
        return set(self._get("/api/v1/label/__name__/values", {}))

    def targets(self) -> list[dict[str, Any]]:
        """The active scrape targets with their health and last error."""
        active: list[dict[str, Any]] = self._get("/api/v1/targets", {})["activeTargets"]
        return active

    def rules(self) -> list[dict[str, Any]]:
        """Every loaded rule, with its health and last evaluation error."""
        groups = self._get("/api/v1/rules", {})["groups"]
        return [rule for group in groups for rule in group["rules"]]

    def log(self, last: int = 40) -> str:
        """The end of Prometheus's own log, for failure messages."""
        with contextlib.suppress(OSError):
            return "\n".join(self.log_file.read_text().splitlines()[-last:])
        return "(no log)"

    def _get(self, path: str, params: dict[str, str]) -> Any:
        response = self.http.get(path, params=params)
        body = response.json()
        assert body.get("status") == "success", f"{path} {params}: {body}"
        return body["data"]

    def ready(self) -> bool:
        """Whether Prometheus answers ``/-/ready`` (config loaded, storage open)."""
        try:
            return self.http.get("/-/ready").status_code == 200
        except httpx.TransportError:
            return False


def scrape_config(
    jobs: Mapping[str, Sequence[str]], *, interval: float, rule_files: Sequence[Path] = ()
) -> dict[str, Any]:
    """A Prometheus config scraping ``jobs`` (name -> host:port targets) every ``interval`` s."""
    every = f"{round(interval * 1000)}ms"
    return {
        "global": {"scrape_interval": every, "evaluation_interval": every},
        "rule_files": [str(path) for path in rule_files],
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": list(targets)}]}
            for job, targets in jobs.items()
        ],
    }


@contextlib.contextmanager
def running_prometheus(
    workdir: Path,
    jobs: Mapping[str, Sequence[str]],
    *,
    interval: float = 1.0,
    rule_files: Sequence[Path] = (),
) -> Iterator[Prometheus]:
    """Start Prometheus on a free loopback port with storage in ``workdir``; stop it after."""
    binary = prometheus_tool("prometheus")
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "prometheus.yml"
    config.write_text(yaml.safe_dump(scrape_config(jobs, interval=interval, rule_files=rule_files)))
    port = _free_port()
    log_file = workdir / "prometheus.log"
    with log_file.open("wb") as log_handle:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--web.enable-lifecycle",
            ],
            stdout=log_handle,
            stderr=subprocess.STDOUT,
            preexec_fn=parent_death_signal(),  # noqa: PLW1509 - prctl only, see that function
        )
    prom = Prometheus(f"http://127.0.0.1:{port}", process, log_file)
    try:
        _wait_ready(prom)
        yield prom
    finally:
        prom.http.close()
        terminate_child(process, timeout=10.0)


def _wait_ready(prom: Prometheus) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while not prom.ready():
        if prom.process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"Prometheus did not become ready:\n{prom.log()}")
        time.sleep(0.1)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def finite(value: float | None) -> bool:
    """A real number: not missing, NaN or infinite (what an empty histogram gives)."""
    return value is not None and math.isfinite(value)


# --- metric names in PromQL -------------------------------------------------------------------

#: Words that are PromQL syntax, not series names, where a name could stand.
_KEYWORDS = frozenset((
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
    "offset", "bool", "inf", "nan",
))  # fmt: skip
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(
    r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", re.IGNORECASE
)
_VARIABLE = re.compile(r"\$\{[^}]*\}|\$\w+|\[\[\w+\]\]")
_IDENT = re.compile(r"(?<![\w.:])([A-Za-z_:][\w:]*)(\s*\()?")


def metric_names(expr: str) -> set[str]:
    """The series names an expression reads (``rate(x_total{a="b"}[5m])`` -> ``{"x_total"}``).

    Not a full parser: strings, label matchers, ranges, grouping clauses and Grafana variables
    are blanked out, then every identifier that is not a function call or a keyword is a name.
    ``{__name__="..."}`` selectors are not supported (the tests reject them instead).
    """
    text = _STRING.sub('""', expr)
    text = _VARIABLE.sub("1", text)
    assert "__name__" not in text, f"selectors by __name__ are not checked: {expr}"
    text = _MATCHERS.sub("", text)
    text = _RANGE.sub("", text)
    text = _GROUPING.sub("", text)
    text = re.sub(r"@\s*(?:start|end)\s*\(\s*\)", "", text)
    return {
        name for name, call in _IDENT.findall(text) if not call and name.lower() not in _KEYWORDS
    }


# --- the metrics the bus defines --------------------------------------------------------------

#: Series names each metric type exposes, from its base name (prometheus_client's exposition).
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
    "info": ("_info",),
    "stateset": ("",),
}
#: The name a metric is documented and queried by: counters by their ``_total`` series.
_MAIN_SUFFIX = {"counter": "_total", "info": "_info"}
_CONSTRUCTORS = {
    "Counter": "counter",
    "Gauge": "gauge",
    "Histogram": "histogram",
    "Summary": "summary",
    "Info": "info",
    "Enum": "stateset",
}
ROOT = Path(__file__).resolve().parents[1]
SOURCE_PACKAGES = ("exchange", "agents", "connectors")


@dataclass(frozen=True)
class MetricDef:
    """One metric the bus defines: base name, Prometheus type, label names, where."""

    name: str
    kind: str
    labels: frozenset[str]
    where: str

    @property
    def documented_name(self) -> str:
        """The name operators query: ``exchange_inquiries_total`` for a counter."""
        return self.name + _MAIN_SUFFIX.get(self.kind, "")

    @property
    def series(self) -> set[str]:
        """Every series name this metric exposes."""
        return {self.name + suffix for suffix in _SUFFIXES[self.kind]}


@functools.cache
def metric_definitions() -> dict[str, MetricDef]:
    """Every metric: those the classes of ``exchange._metrics`` register, and any other
    prometheus_client metric constructed anywhere in the bus's packages (found in the source)."""
    found = {m.name: m for m in _registered_by_metric_classes()}
    for metric in _constructed_elsewhere():
        found.setdefault(metric.name, metric)
    return found


@functools.cache
def known_series() -> frozenset[str]:
    """Every series name the bus can expose (``_bucket``, ``_total`` … included)."""
    return frozenset(name for metric in metric_definitions().values() for name in metric.series)


def _registered_by_metric_classes() -> list[MetricDef]:
    from prometheus_client import CollectorRegistry
    from prometheus_client.metrics import MetricWrapperBase

    from exchange import _metrics

    found = []
    for cls_name, cls in vars(_metrics).items():
        if not (isinstance(cls, type) and cls.__module__ == _metrics.__name__):
            continue
        registry = CollectorRegistry()
        instance = cls(registry)
        families = {family.name: family.type for family in registry.collect()}
        # prometheus_client has no public accessor for a metric's label names.
        labels = {
            m._name: frozenset(m._labelnames)
            for m in _walk(instance)
            if isinstance(m, MetricWrapperBase)
        }
        assert set(labels) == set(families), f"{cls_name}: metrics outside its attributes"
        where = f"exchange._metrics.{cls_name}"
        found += [MetricDef(n, kind, labels[n], where) for n, kind in families.items()]
    return found


def _walk(obj: Any) -> Iterator[Any]:
    """The attributes of a metrics object, nested metrics objects (``WorkerMetrics.dlq``) too."""
    for value in vars(obj).values():
        if type(value).__module__ == "exchange._metrics":
            yield from _walk(value)
        else:
            yield value


def _constructed_elsewhere() -> list[MetricDef]:
    """prometheus_client metrics built outside ``exchange/_metrics.py``, read from the source."""
    import ast

    found = []
    for package in SOURCE_PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if path == ROOT / "exchange" / "_metrics.py":
                continue
            tree = ast.parse(path.read_text(), str(path))
            names = _prometheus_imports(tree)
            for node in ast.walk(tree):
                metric = _metric_call(node, names, path.relative_to(ROOT).as_posix())
                if metric is not None:
                    found.append(metric)
    return found


def _prometheus_imports(tree: Any) -> dict[str, str]:
    """Local name -> metric type, for ``from prometheus_client import Counter as C``."""
    import ast

    names = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("prometheus_client"):
            for alias in node.names:
                if alias.name in _CONSTRUCTORS:
                    names[alias.asname or alias.name] = _CONSTRUCTORS[alias.name]
    return names


def _metric_call(node: Any, names: dict[str, str], where: str) -> MetricDef | None:
    import ast

    if not isinstance(node, ast.Call):
        return None
    func = node.func
    if isinstance(func, ast.Name) and func.id in names:
        kind = names[func.id]
    elif (
        isinstance(func, ast.Attribute)
        and isinstance(func.value, ast.Name)
        and func.value.id == "prometheus_client"
        and func.attr in _CONSTRUCTORS
    ):
        kind = _CONSTRUCTORS[func.attr]
    else:
        return None
    keywords = {k.arg: k.value for k in node.keywords}
    name_node = node.args[0] if node.args else keywords.get("name")
    assert isinstance(name_node, ast.Constant), f"{where}: a metric name must be a literal"
    labels_node = node.args[2] if len(node.args) > 2 else keywords.get("labelnames")
    labels = frozenset(ast.literal_eval(labels_node)) if labels_node is not None else frozenset()
    name = str(name_node.value)
    if kind == "counter":
        name = name.removesuffix("_total")
    return MetricDef(name, kind, labels, where)
