"""The showcase of the bus: simulated agencies, a mixed workload, and its summary.

``exchange demo`` runs it (see ``docs/demo.md``); ``exchange provide exchange.demo:providers``
runs the six simulated provider agencies on their own.
"""

from exchange.demo._agencies import providers
from exchange.demo._run import DemoOptions, run_demo

__all__ = ["DemoOptions", "providers", "run_demo"]
