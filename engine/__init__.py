"""Pure, synchronous, deterministic matching engine.

Imports nothing of ours and does no I/O. Commands in, ``Result`` (code + events) out.

Exception tree (only for broken invariants, never for expected rejections)::

    EngineError
    ├── InvariantError          raised by ``Engine.validate()``
    ├── UnknownInstrumentError  ``Engine.l2()`` of an unknown symbol (also a ``LookupError``)
    └── SnapshotError           ``Engine.from_snapshot()`` of invalid data (also a ``ValueError``)
"""

from engine.codes import CancelReason, ResultCode
from engine.engine import Engine
from engine.errors import EngineError, InvariantError, SnapshotError, UnknownInstrumentError
from engine.instrument import InstrumentSpec, InstrumentStatus
from engine.messages import (
    AddInstrument,
    AdvanceTime,
    AmendOrder,
    BookDelta,
    CancelOrder,
    Command,
    Event,
    Fill,
    InstrumentAdded,
    InstrumentStatusChanged,
    L2Snapshot,
    Level,
    MassCancel,
    NewOrder,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderExpired,
    OrderRejected,
    OrderType,
    OrderView,
    Result,
    SetInstrumentStatus,
    Side,
    StpMode,
    TimeInForce,
)
from engine.version import RULES_VERSION

__all__ = [
    "RULES_VERSION",
    "AddInstrument",
    "AdvanceTime",
    "AmendOrder",
    "BookDelta",
    "CancelOrder",
    "CancelReason",
    "Command",
    "Engine",
    "EngineError",
    "Event",
    "Fill",
    "InstrumentAdded",
    "InstrumentSpec",
    "InstrumentStatus",
    "InstrumentStatusChanged",
    "InvariantError",
    "L2Snapshot",
    "Level",
    "MassCancel",
    "NewOrder",
    "OrderAccepted",
    "OrderAmended",
    "OrderCancelled",
    "OrderExpired",
    "OrderRejected",
    "OrderType",
    "OrderView",
    "Result",
    "ResultCode",
    "SetInstrumentStatus",
    "Side",
    "SnapshotError",
    "StpMode",
    "TimeInForce",
    "UnknownInstrumentError",
]
