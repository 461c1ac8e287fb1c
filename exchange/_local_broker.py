"""A real single-node Apache Kafka broker run by the project itself, without Docker.

One implementation serves ``exchange broker start|stop|status``, the test suite's session
fixture and ``make demo``. A broker lives in one folder (its *home*)::

    <home>/layout.json         ports, cluster id and Kafka version the data dir was formatted with
    <home>/server.properties   the KRaft config, rewritten on every start
    <home>/data/               Kafka's log dir (formatted once, kept across restarts)
    <home>/logs/server.log     the broker's log (the project's log4j2 config)
    <home>/logs/stdout.log     the JVM's own output (crashes before logging is up)
    <home>/running.json        pid and bootstrap address while it runs

The CLI's home is ``<state_dir>/broker``; tests use a temporary folder. Start-up: find java,
check the data dir and the ports, fetch the jars once (Maven), format a fresh data dir, start
``java -Xms512m -Xmx512m … kafka.Kafka``, and wait until an admin client can describe the
cluster. Stop: SIGTERM (Kafka shuts down cleanly), SIGKILL if it has not exited in time.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

from exchange._errors import LocalBrokerError
from exchange._kafka_jars import KafkaDist, ensure_jars, find_java, kafka_dist
from exchange._local_broker_config import (
    NODE_ID,
    BrokerLayout,
    new_cluster_id,
    parse_properties,
    render_config,
)
from exchange._local_broker_os import (
    answers,
    check_port_free,
    exclusive,
    free_ports,
    parent_death_signal,
    terminate_child,
)
from exchange._settings import ExchangeSettings

if TYPE_CHECKING:
    from exchange._local_broker_security import BrokerSecurity

__all__ = ["LocalBroker", "RunningBroker", "local_broker_home"]

#: Kafka's own main class: it is the marker that a recorded pid is still our broker.
_MAIN_CLASS = "kafka.Kafka"
_JVM_OPTIONS = (
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.awt.headless=true",
)


def local_broker_home(settings: ExchangeSettings) -> Path:
    """The folder of the local broker that ``exchange broker start`` manages."""
    return settings.state_dir / "broker"


@dataclass(frozen=True)
class RunningBroker:
    """A started local broker, as recorded in ``running.json``."""

    pid: int
    bootstrap: str
    kafka_version: str
    started_at: str


class LocalBroker:
    """The local broker whose files live in ``home``; see the module docstring."""

    def __init__(
        self,
        home: Path,
        *,
        heap: str = "512m",
        tied_to_parent: bool = False,
        security: BrokerSecurity | None = None,
    ) -> None:
        """``tied_to_parent``: the broker gets SIGTERM when the starting thread dies (tests).

        ``security``: listen with SASL_SSL and an authorizer instead of PLAINTEXT
        (exchange._local_broker_security); set it before the data dir is first formatted.
        """
        self.home = home
        self.heap = heap
        self.tied_to_parent = tied_to_parent
        self.security = security
        self.data_dir = home / "data"
        self.log_file = home / "logs" / "server.log"
        self._proc: subprocess.Popen[bytes] | None = None

    # --- queries ------------------------------------------------------------------------------
    def running(self) -> RunningBroker | None:
        """The recorded broker if its process is still alive, else ``None``."""
        record = _read_json(self.home / "running.json")
        if record is None:
            return None
        try:
            running = RunningBroker(**record)
        except TypeError:
            return None
        return running if self._is_our_process(running.pid) else None

    def log_tail(self, lines: int = 60) -> str:
        """The last lines of the broker's log and of the JVM's output, for diagnosis."""
        parts = []
        for path in (self.log_file, self.home / "logs" / "stdout.log"):
            if path.is_file():
                tail = path.read_text(errors="replace").splitlines()[-lines:]
                parts.append(f"--- {path} ---\n" + "\n".join(tail))
        return "\n".join(parts) or f"(no log in {self.home / 'logs'})"

    # --- start --------------------------------------------------------------------------------
    def start(
        self, *, port: int | None = None, fresh: bool = False, timeout: float = 90.0
    ) -> RunningBroker:
        """Start the broker (or return it if already running) and wait until it serves."""
        with exclusive(self.home / ".lock"):
            current = self.running()
            if current is not None:
                return current
            java = find_java()
            if fresh:
                self._wipe()
            dist = kafka_dist()
            layout = self._layout(dist, port)
            check_port_free(layout.port, "Kafka listener")
            check_port_free(layout.controller_port, "KRaft controller")
            ensure_jars(dist)
            self._configure(java, dist, layout)
            return self._launch(java, dist, layout, timeout)

    def _launch(
        self, java: str, dist: KafkaDist, layout: BrokerLayout, timeout: float
    ) -> RunningBroker:
        proc = self._proc = self._spawn(java, dist)
        try:
            self._wait_ready(layout.bootstrap, timeout)
        except BaseException:
            self._kill_spawned()
            raise
        started = RunningBroker(
            pid=proc.pid,
            bootstrap=layout.bootstrap,
            kafka_version=dist.version,
            started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        (self.home / "running.json").write_text(json.dumps(asdict(started), indent=2) + "\n")
        return started

    def _wipe(self) -> None:
        shutil.rmtree(self.data_dir, ignore_errors=True)
        (self.home / "layout.json").unlink(missing_ok=True)

    def _layout(self, dist: KafkaDist, port: int | None) -> BrokerLayout:
        """The recorded layout of a formatted data dir, or a new one for a fresh dir."""
        if not self.data_dir.exists():
            listener, controller = free_ports(2, avoid=port)
            return BrokerLayout(
                port=port or listener,
                controller_port=controller,
                cluster_id=new_cluster_id(),
                kafka_version=dist.version,
            )
        layout = self._recorded_layout()
        # The controller's address is in the formatted metadata log; the listener may move.
        return layout if port is None else BrokerLayout(**{**asdict(layout), "port": port})

    def _recorded_layout(self) -> BrokerLayout:
        layout = _layout_from(_read_json(self.home / "layout.json"))
        problem = (
            "layout.json is missing or unreadable"
            if layout is None
            else _meta_problem(self.data_dir / "meta.properties", layout)
        )
        if problem is not None or layout is None:
            raise LocalBrokerError(
                f"the local broker's data dir {self.data_dir} is corrupt ({problem}); "
                "run `exchange broker start --fresh` to wipe it and start over"
            )
        return layout

    def _configure(self, java: str, dist: KafkaDist, layout: BrokerLayout) -> None:
        (self.home / "logs").mkdir(parents=True, exist_ok=True)
        config = self.home / "server.properties"
        extra = self.security.properties(layout) if self.security else None
        config.write_text(render_config(layout, self.data_dir, extra))
        if not self.data_dir.exists():
            self._format(java, dist, layout, config)
        (self.home / "layout.json").write_text(json.dumps(asdict(layout), indent=2) + "\n")

    def _format(self, java: str, dist: KafkaDist, layout: BrokerLayout, config: Path) -> None:
        command = [
            *self._java_command(java, dist, "kafka.tools.StorageTool"),
            "format",
            "--standalone",
            "--cluster-id",
            layout.cluster_id,
            "--config",
            str(config),
            *(self.security.format_args() if self.security else ()),
        ]
        done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
        if done.returncode != 0:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            output = (done.stdout + done.stderr).strip().splitlines()
            raise LocalBrokerError(
                f"formatting {self.data_dir} failed: {output[-1] if output else done.returncode}"
            )

    def _java_command(self, java: str, dist: KafkaDist, main_class: str) -> list[str]:
        return [
            java,
            f"-Xms{self.heap}",
            f"-Xmx{self.heap}",
            *_JVM_OPTIONS,
            f"-Dlog4j2.configurationFile={dist.log4j_config}",
            f"-Dkafka.logs.dir={self.home / 'logs'}",
            "-cp",
            dist.classpath,
            main_class,
        ]

    def _spawn(self, java: str, dist: KafkaDist) -> subprocess.Popen[bytes]:
        command = [
            *self._java_command(java, dist, _MAIN_CLASS),
            str(self.home / "server.properties"),
        ]
        with (self.home / "logs" / "stdout.log").open("ab") as out:
            # A session of its own: Ctrl-C in the terminal that started it must not kill it.
            return subprocess.Popen(  # noqa: S603
                command,
                cwd=self.home,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=parent_death_signal() if self.tied_to_parent else None,  # noqa: PLW1509
            )

    def _wait_ready(self, bootstrap: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        assert self._proc is not None  # set by start() just before
        while True:
            exit_code = self._proc.poll()
            if exit_code is not None:
                raise LocalBrokerError(
                    f"the local broker exited during start-up (exit code {exit_code}): "
                    f"{self._failure_hint()}; full log: {self.log_file}; if its data is "
                    "damaged, `exchange broker start --fresh` starts over"
                )
            if answers(bootstrap, self.security.admin_options() if self.security else None):
                return
            if time.monotonic() > deadline:
                raise LocalBrokerError(
                    f"the local broker did not become ready within {timeout:g} s "
                    f"({self._failure_hint()}); full log: {self.log_file}"
                )
            time.sleep(0.5)

    def _failure_hint(self) -> str:
        """The last error the broker logged, as a one-line reason."""
        for path in (self.log_file, self.home / "logs" / "stdout.log"):
            if path.is_file():
                lines = path.read_text(errors="replace").splitlines()
                errors = [ln for ln in lines if " ERROR " in ln or "Exception" in ln]
                if errors:
                    return errors[-1].strip()[:300]
        return "no error logged"

    # --- stop ---------------------------------------------------------------------------------
    def stop(self, timeout: float = 30.0) -> bool:
        """Stop the broker (SIGTERM, then SIGKILL after ``timeout``); ``False`` if not running."""
        running = self.running()
        (self.home / "running.json").unlink(missing_ok=True)
        if self._proc is not None and self._proc.poll() is None:
            terminate_child(self._proc, timeout)
            return True
        if running is None:
            return False
        try:
            process = psutil.Process(running.pid)
            process.terminate()
            try:
                process.wait(timeout)
            except psutil.TimeoutExpired:
                process.kill()
                process.wait(10)
        except psutil.NoSuchProcess:
            pass
        return True

    def _kill_spawned(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            terminate_child(self._proc, 10.0)

    def _is_our_process(self, pid: int) -> bool:
        try:
            process = psutil.Process(pid)
            command = process.cmdline()
            alive = process.status() != psutil.STATUS_ZOMBIE
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return False
        return alive and _MAIN_CLASS in command and str(self.home / "server.properties") in command


def _layout_from(record: dict[str, Any] | None) -> BrokerLayout | None:
    try:
        return BrokerLayout(**record) if record is not None else None
    except TypeError:
        return None


def _meta_problem(meta: Path, layout: BrokerLayout) -> str | None:
    """What is wrong with Kafka's ``meta.properties`` for this layout, if anything."""
    if not meta.is_file():
        return "meta.properties is missing"
    found = parse_properties(meta.read_text(errors="replace"))
    if found.get("cluster.id") != layout.cluster_id:
        return "meta.properties does not match layout.json"
    if found.get("node.id") != NODE_ID:
        return f"meta.properties names node {found.get('node.id')}, not {NODE_ID}"
    return None


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        loaded = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return loaded if isinstance(loaded, dict) else None
