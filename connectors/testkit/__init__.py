"""The connector conformance kit: pytest helpers any connector's tests reuse.

Provider connectors::

    case = ConformanceCase(connector=MyConnector(config), legacy=LegacyProcess([...], port),
                           service="x.y.v1", found={...}, expect={...})
    async with ConnectorHarness(case, settings) as harness:   # topics, worker, connector
        await check_answers(harness)
        await check_outage(harness)                           # kill, pause, restore, resume

Requester connectors (an adapter drives the legacy side: ``emit``, ``outcomes``, ``break_``,
``heal``; see :mod:`connectors.testkit._requester`)::

    case = RequesterCase(config={...}, legacy=MyLegacy(...), service="x.y.v1", purpose="p")
    async with RequesterHarness(case, settings) as harness:   # topics, worker, provider, connector
        await check_requester(harness)                        # outcomes, SIGKILL, outage, once

``settings`` point at a real broker (the repository's suite fixture, or the ``exchange_settings``
fixture of :mod:`connectors.testkit.plugin` for a connector's own project). See
:mod:`connectors.testkit._conformance` for exactly what is asserted.
"""

from connectors.testkit._bus import create_topics, running_worker
from connectors.testkit._conformance import (
    ConformanceCase,
    ConnectorHarness,
    Legacy,
    check_answers,
    check_outage,
)
from connectors.testkit._legacy import LegacyProcess, free_port
from connectors.testkit._requester import (
    LegacyEvent,
    RequesterCase,
    RequesterHarness,
    RequesterLegacy,
    Written,
)
from connectors.testkit._requester_checks import (
    check_crash,
    check_once_on_the_bus,
    check_outcomes,
    check_requester,
    check_source_outage,
)
from connectors.testkit._script import Reply, ScriptedProvider

__all__ = [
    "ConformanceCase",
    "ConnectorHarness",
    "Legacy",
    "LegacyEvent",
    "LegacyProcess",
    "Reply",
    "RequesterCase",
    "RequesterHarness",
    "RequesterLegacy",
    "ScriptedProvider",
    "Written",
    "check_answers",
    "check_crash",
    "check_once_on_the_bus",
    "check_outage",
    "check_outcomes",
    "check_requester",
    "check_source_outage",
    "create_topics",
    "free_port",
    "running_worker",
]
