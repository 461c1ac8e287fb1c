"""The evaluation processor: windowed compliance figures from the audit trail, on faust.

faust-streaming is imported here and below only. Run it with ``exchange evaluation run`` or
``await run(settings, EvaluationOptions())`` (``run_process`` as a process's main program).
"""

from agents.evaluation._options import EvaluationOptions
from agents.evaluation._runner import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_STALLED,
    EXIT_STOP_TIMEOUT,
    run,
    run_process,
)

__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_STALLED",
    "EXIT_STOP_TIMEOUT",
    "EvaluationOptions",
    "run",
    "run_process",
]
