"""VenueCore with hand-written fakes around a real engine: the ordering guarantees of the core."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from engine import (
    AddInstrument,
    AmendOrder,
    Command,
    Engine,
    Fill,
    InstrumentSpec,
    NewOrder,
    OrderAccepted,
    OrderAmended,
    Result,
    ResultCode,
    Side,
)
from gateway.ports import Listing, SettlementState
from venue.core import VenueCore

SPEC = InstrumentSpec(symbol="OMN-T", tick_size=10_000, lot_size=1)
LISTING = Listing(spec=SPEC, name="t", token_address="0x" + "11" * 20, cash_token_address="0x" + "22" * 20,
                  token_decimals=0, cash_decimals=6)


class GatedSequencer:
    """Stamps and applies commands like the real one; ``gate`` holds commands in flight."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.listeners: list[Callable[[int, Command, Result], None]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.seq = 0
        self.tasks: set[asyncio.Future[None]] = set()

    @property
    def next_seq(self) -> int:
        return self.seq + 1

    def enqueue(self, cmd: Command) -> tuple[int, Command, asyncio.Future[Result]]:
        self.seq += 1
        seq, stamped = self.seq, dataclasses.replace(cmd, ts=self.seq)
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()

        async def apply() -> None:
            await self.gate.wait()
            result = self.engine.process(stamped)
            for listener in self.listeners:
                listener(seq, stamped, result)
            future.set_result(result)

        self.tasks.add(asyncio.ensure_future(apply()))
        return seq, stamped, future

    async def submit(self, cmd: Command) -> Result:
        return await self.enqueue(cmd)[2]

    def subscribe(self, listener: Callable[[int, Command, Result], None]) -> Callable[[], None]:
        self.listeners.append(listener)
        return lambda: self.listeners.remove(listener)


@dataclass(frozen=True)
class Decision:
    ok: bool
    hold: Any = None
    code: str | None = None
    message: str = ""


@dataclass
class RecordingGatekeeper:
    calls: list[tuple[Any, ...]] = field(default_factory=list)
    refuse_trades: bool = False

    holds: dict[int, Any] = field(default_factory=dict)  # command seq -> hold

    def check_new_order(self, **kw: Any) -> Decision:
        self.holds[kw["seq"]] = ("hold", kw["participant"], kw["qty"])
        return Decision(ok=True, hold=self.holds[kw["seq"]])

    def check_amend(self, **kw: Any) -> Decision:
        self.holds[kw["seq"]] = ("amend-hold", kw["order"].order_id)
        return Decision(ok=True, hold=self.holds[kw["seq"]])

    def release(self, hold: Any) -> None:
        self.calls.append(("release", hold[0]))

    def on_command(self, seq: int, events: Any) -> None:
        """Records what the ledger does with the seq's hold, then the fills it books."""
        hold = self.holds.pop(seq, None)
        if hold is not None:
            bound = next((e.order_id for e in events if isinstance(e, OrderAccepted | OrderAmended)), None)
            self.calls.append(("bind", hold[0], bound) if bound is not None else ("release", hold[0]))
        self.calls.append(("events", tuple(type(e).__name__ for e in events if isinstance(e, Fill))))

    def check_trade(self, fill: Fill, *, now_ts: int) -> Decision:
        if self.refuse_trades:
            return Decision(ok=False, code="WALLET_FROZEN", message="seller frozen on chain")
        return Decision(ok=True)

    def on_trade_finished(self, trade_id: int, **kw: Any) -> None:
        self.calls.append(("finished", trade_id, kw.get("failed")))


def make_core(gatekeeper: RecordingGatekeeper | None = None) -> tuple[VenueCore, GatedSequencer]:
    engine = Engine()
    engine.process(AddInstrument(ts=0, spec=SPEC))
    seq = GatedSequencer(engine)
    core = VenueCore(engine=engine, sequencer=seq, listings=[LISTING], compliance=gatekeeper)
    return core, seq


def order(participant: str, side: Side, qty: int, price: int, coid: str = "") -> NewOrder:
    return NewOrder(ts=0, participant=participant, symbol="OMN-T", side=side, qty=qty, price=price,
                    client_order_id=coid)


async def test_hold_is_bound_before_the_same_commands_fills_are_booked() -> None:
    gk = RecordingGatekeeper()
    core, _ = make_core(gk)
    await core.submit("mm", order("mm", Side.SELL, 5, 100))
    gk.calls.clear()
    outcome = await core.submit("inv", order("inv", Side.BUY, 2, 100))
    assert outcome.result is not None and outcome.result.code is ResultCode.OK
    assert gk.calls == [("bind", "hold", outcome.result.order_id), ("events", ("Fill",))]


async def test_a_rejected_order_releases_its_hold() -> None:
    gk = RecordingGatekeeper()
    core, _ = make_core(gk)
    outcome = await core.submit("inv", order("inv", Side.BUY, 2, 0))  # zero price: engine rejects
    assert outcome.result is not None and outcome.result.code is ResultCode.INVALID_PRICE
    assert ("release", "hold") in gk.calls and not any(c[0] == "bind" for c in gk.calls)
    assert core.rejection_counts() == {"INVALID_PRICE": 1}


async def test_one_amend_per_order_in_flight() -> None:
    gk = RecordingGatekeeper()
    core, seq = make_core(gk)
    placed = await core.submit("mm", order("mm", Side.SELL, 5, 100))
    assert placed.result is not None and placed.result.order_id is not None
    oid = placed.result.order_id
    seq.gate.clear()
    first = asyncio.create_task(core.submit("mm", AmendOrder(ts=0, participant="mm", order_id=oid, price=101)))
    await asyncio.sleep(0)
    second = await core.submit("mm", AmendOrder(ts=0, participant="mm", order_id=oid, price=102))
    assert second.rejection is not None and second.rejection.code == "AMEND_IN_FLIGHT"
    seq.gate.set()
    done = await first
    assert done.result is not None and done.result.code is ResultCode.OK
    assert ("bind", "amend-hold", oid) in gk.calls
    third = await core.submit("mm", AmendOrder(ts=0, participant="mm", order_id=oid, price=103))
    assert third.result is not None and third.result.code is ResultCode.OK


async def test_trade_refused_at_the_pre_settlement_check_fails_with_its_reason() -> None:
    gk = RecordingGatekeeper(refuse_trades=True)
    core, _ = make_core(gk)
    await core.submit("mm", order("mm", Side.SELL, 1, 100))
    await core.submit("inv", order("inv", Side.BUY, 1, 100))
    [notice] = core.settlements()
    assert notice.state is SettlementState.FAILED and notice.reason == "WALLET_FROZEN: seller frozen on chain"
    assert ("finished", 1, True) in gk.calls
    assert core.settlement_counts() == {"pending": 0, "submitted": 0, "confirmed": 0, "failed": 1, "final": 0}


async def test_terminal_settlement_states_never_move_back() -> None:
    core, _ = make_core()
    await core.submit("mm", order("mm", Side.SELL, 1, 100))
    await core.submit("inv", order("inv", Side.BUY, 1, 100))
    seen: list[SettlementState] = []
    core.subscribe_settlements(lambda n: seen.append(n.state))
    core.on_settlement_update(1, SettlementState.SUBMITTED, tx_hash="0xab")
    core.on_settlement_update(1, SettlementState.CONFIRMED, block=7, gas_used=120_000)
    core.on_settlement_update(1, SettlementState.SUBMITTED, tx_hash="0xcd")  # late duplicate
    assert seen == [SettlementState.SUBMITTED, SettlementState.CONFIRMED]
    [notice] = core.settlements()
    assert (notice.state, notice.tx_hash, notice.block) == (SettlementState.CONFIRMED, "0xab", 7)
    record = core.trade(1)
    assert record is not None and (record.buyer, record.seller) == ("inv", "mm")
