"""Pure, synchronous, deterministic matching engine.

Imports nothing of ours and does no I/O. Commands in, ``Result`` (code + events) out.

Exception tree (only for broken invariants, never for expected rejections)::

    EngineError
    ├── InvariantError          raised by ``Engine.validate()``
    ├── UnknownInstrumentError  ``Engine.l2()`` of an unknown symbol (also a ``LookupError``)
    └── SnapshotError           ``Engine.from_snapshot()`` of invalid data (also a ``ValueError``)

Two implementations of one ``Engine`` API and one set of rules: the compiled core
(``engine/_core.pyx``, built by the normal install) and the pure-Python reference
(``engine/engine.py``). ``Engine`` is the compiled one when it is built, unless the environment
says ``VENUE_ENGINE=python``; without a build, the reference is used and a warning is logged once
at import. ``implementations()`` names both for tests and benchmarks.
"""

import logging
from typing import TYPE_CHECKING

from engine.batch import ResultBatch
from engine.codes import CancelReason, ResultCode
from engine.engine import Engine as ReferenceEngine
from engine.errors import EngineError, InvariantError, SnapshotError, UnknownInstrumentError
from engine.instrument import InstrumentSpec, InstrumentStatus
from engine.messages import (
    AddInstrument,
    AdvanceTime,
    AmendOrder,
    BookDelta,
    CancelOrder,
    Command,
    Cross,
    Event,
    Fill,
    IndicativeUncross,
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
    TradeOrigin,
    Uncross,
)
from engine.version import RULES_VERSION

try:
    from engine import _core  # type: ignore[attr-defined]
except ImportError as _exc:  # not built: no compiler at install time, or a source checkout
    _core = None
    logging.getLogger(__name__).warning(
        "compiled matching core not available (%s); using the pure-Python reference engine", _exc
    )

CompiledEngine: type[ReferenceEngine] | None = None if _core is None else _core.Engine
if TYPE_CHECKING:  # one API: type checkers see the reference, whose behaviour the compiled core matches
    from engine.engine import Engine
else:
    Engine = CompiledEngine if CompiledEngine is not None and _core.use_compiled() else ReferenceEngine


def implementations() -> dict[str, type[ReferenceEngine]]:
    """Every available implementation by name: ``python`` (reference) and, when built, ``compiled``."""
    found = {"python": ReferenceEngine}
    if CompiledEngine is not None:
        found["compiled"] = CompiledEngine
    return found


__all__ = [
    "RULES_VERSION",
    "AddInstrument",
    "AdvanceTime",
    "AmendOrder",
    "BookDelta",
    "CancelOrder",
    "CancelReason",
    "Command",
    "CompiledEngine",
    "Cross",
    "Engine",
    "EngineError",
    "Event",
    "Fill",
    "IndicativeUncross",
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
    "ReferenceEngine",
    "Result",
    "ResultBatch",
    "ResultCode",
    "SetInstrumentStatus",
    "Side",
    "SnapshotError",
    "StpMode",
    "TimeInForce",
    "TradeOrigin",
    "Uncross",
    "UnknownInstrumentError",
    "implementations",
]
