"""Bring the demo's bus up and down: broker, topics, stream worker, providers, evaluation.

Up, in order: Kafka (``EXCHANGE_KAFKA_BOOTSTRAP`` if set, else the local broker, reused when
it runs and started otherwise), the catalog's topics (as ``exchange topics apply``), then
``exchange worker`` and ``exchange provide exchange.demo:providers`` as child processes with
``/metrics`` on free ports; ready once their consumer groups are stable. Down, in reverse:
every child gets SIGTERM (and drains), then the local broker stops if this demo started it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from exchange._admin import TopicAdmin, apply_plan, read_plan, settle
from exchange._catalog_model import Catalog
from exchange._errors import ConfigError
from exchange._local_broker import LocalBroker, local_broker_home
from exchange._local_broker_os import free_ports
from exchange._settings import ExchangeSettings
from exchange._topology import Topics, TopologyConfig, desired_topics
from exchange.demo._agencies import SERVICES
from exchange.demo._procs import Child, child_env, wait_for_groups, wait_for_partitions

__all__ = ["Stack"]

#: Start-up of the worker and providers (Python start, group joins) on two busy cores.
READY_TIMEOUT = 120.0
#: First start of a broker may download the Kafka jars.
BROKER_TIMEOUT = 300.0

Note = Callable[[str], None]


class Stack:
    """The processes and topics a demo run needs, and what it started itself."""

    def __init__(self, settings: ExchangeSettings, catalog: Catalog, note: Note) -> None:
        self.settings = settings
        self.catalog = catalog
        self._note = note
        self._broker: LocalBroker | None = None
        self.children: list[Child] = []
        self.metrics: dict[str, str] = {}
        self.logs = settings.state_dir / "demo"

    @property
    def provider_agencies(self) -> list[str]:
        """The agencies that provide the demo's services."""
        found = (self.catalog.service(service) for service in SERVICES)
        return sorted({service.provider for service in found if service is not None})

    async def up(self) -> ExchangeSettings:
        """Start everything; return the settings every component of the run uses."""
        bootstrap = await self._kafka()
        self.settings = self.settings.model_copy(update={"kafka_bootstrap": bootstrap})
        await self._topics()
        worker_port, providers_port = free_ports(2)
        worker = self._start("worker", ["worker", "--metrics-port", str(worker_port)])
        provide = ["provide", "exchange.demo:providers", "--metrics-port", str(providers_port)]
        self._start("providers", provide)
        self.metrics = {
            "worker": f"http://127.0.0.1:{worker_port}/metrics",
            "providers": f"http://127.0.0.1:{providers_port}/metrics",
        }
        topics = Topics.for_settings(self.settings)
        groups = [topics.worker_group, *map(topics.provider_group, self.provider_agencies)]
        self._note("waiting for the stream worker and the providers to join their groups")
        await wait_for_groups(self.settings, groups, self.children, READY_TIMEOUT)
        await wait_for_partitions(worker, self.settings.partitions, READY_TIMEOUT)
        return self.settings

    async def _kafka(self) -> str:
        if self.settings.kafka_bootstrap:
            self._note(f"using the Kafka cluster at {self.settings.kafka_bootstrap}")
            return self.settings.kafka_bootstrap
        broker = LocalBroker(local_broker_home(self.settings))
        running = broker.running()
        if running is not None:
            self._note(f"reusing the local broker at {running.bootstrap} (pid {running.pid})")
            return running.bootstrap
        self._note("starting the local Kafka broker (the first start fetches its jars)")
        running = await asyncio.to_thread(broker.start, timeout=BROKER_TIMEOUT)
        self._broker = broker
        self._note(f"local broker up at {running.bootstrap} (pid {running.pid})")
        return running.bootstrap

    async def _topics(self) -> None:
        settings = self.settings
        desired = desired_topics(self.catalog, TopologyConfig.from_settings(settings))
        async with TopicAdmin.for_settings(settings) as admin:
            plan = await read_plan(admin, desired, settings.topic_prefix)
            if plan.repartitions:
                raise ConfigError(
                    f"the topics under {settings.topic_prefix!r} have another partition count "
                    f"than EXCHANGE_PARTITIONS={settings.partitions}; see `exchange topics plan`"
                )
            if not plan.empty:
                await apply_plan(admin, plan)
                await settle(admin, desired, settings.topic_prefix)
        changed = len(plan.actions)
        self._note(
            f"topics under {settings.topic_prefix!r}: "
            + (f"{changed} created or updated" if changed else "already in place")
        )

    def _start(self, name: str, args: list[str]) -> Child:
        env = child_env(self.settings, self.settings.kafka_bootstrap or "")
        child = Child(name, args, env, self.logs / f"{name}.log")
        child.start()
        self.children.append(child)
        self._note(f"started {name} (pid {child.pid}); log: {_shown(child.log)}")
        return child

    def start_evaluation(self) -> str:
        """Start the evaluation processor; the URL of its compliance view."""
        (port,) = free_ports(1)
        self._start("evaluation", ["evaluation", "run", "--web-port", str(port)])
        url = f"http://127.0.0.1:{port}/compliance/"
        self.metrics["compliance"] = url
        return url

    def check(self) -> None:
        """Raise if a child process has died."""
        for child in self.children:
            child.check()

    def down(self) -> None:
        """Stop every child (all asked at once: the run is over), then the broker if this
        run started it."""
        for child in self.children:
            child.terminate()
        for child in reversed(self.children):
            code = child.stop()
            if code not in (0, None):
                self._note(f"{child.name} exited with code {code}; see {_shown(child.log)}")
        self.children.clear()
        if self._broker is not None:
            self._broker.stop()
            self._broker = None
            self._note("local broker stopped")


def _shown(path: Path) -> str:
    """A path as short as it can be said: relative to the working directory when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
