"""The stream processors of the bus and the transactional engine they run on.

Import faust only below this package (the evaluation processor); the hot path runs on
:class:`Engine`, a batched aiokafka engine with one Kafka transaction per partition batch.
"""

from agents._assignor import CopartitionedAssignor
from agents._engine import (
    Engine,
    EngineConfig,
    EngineStats,
    InputRecord,
    OutputRecord,
    Processor,
    default_partition,
)
from agents._state_store import BytesCodec, PartitionState, StateCodec

__all__ = [
    "BytesCodec",
    "CopartitionedAssignor",
    "Engine",
    "EngineConfig",
    "EngineStats",
    "InputRecord",
    "OutputRecord",
    "PartitionState",
    "Processor",
    "StateCodec",
    "default_partition",
]
