"""The connector conformance kit: pytest helpers any connector's tests reuse.

::

    case = ConformanceCase(connector=MyConnector(config), legacy=LegacyProcess([...], port),
                           service="x.y.v1", found={...}, expect={...})
    async with ConnectorHarness(case, settings) as harness:   # topics, worker, connector
        await check_answers(harness)
        await check_outage(harness)                           # kill, pause, restore, resume

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

__all__ = [
    "ConformanceCase",
    "ConnectorHarness",
    "Legacy",
    "LegacyProcess",
    "check_answers",
    "check_outage",
    "create_topics",
    "free_port",
    "running_worker",
]
