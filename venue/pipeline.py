"""The order path, declared in one place and read top to bottom.

    1. gate        eligibility + funding (``compliance``), synchronous and in memory; the funding
                   hold is reserved under the command seq the sequencer is about to give the
                   command. A refusal answers the caller and is never journaled.
    2. sequencer   stamp, number, journal (group commit), then the engine applies it
                   (``journal.Sequencer``; one writer, in seq order)
    3. post-trade  in the sequencer's listener, in seq order, after durability:
                   the gate settles the seq's hold from the command's own events (bound to the new
                   order, or released) and books fills as obligations; the trade book records
                   each trade and queues it for settlement
    4. fan-out     every event to subscribers (gateway streams), the command to the store projection
    5. answer      a typed ``OrderAck`` for new orders and amends (``Outcome.ack``)

Negotiated trades (``venue.rfq``, ``venue.blocks``) take the same road: each side passes
``check_side`` (venue guards, NAV collar, eligibility, funding: a hold under a private id), then
``submit_cross`` journals one ``Cross``; post-trade books its fill as obligations and, in the same
step, releases the sides' holds.

Steps 1 and the seq assignment of step 2 run in one synchronous stretch on the event loop, so the
seq read before the gate is the seq the command gets, and no other command can interleave.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from compliance.model import Hold
from engine import (
    AmendOrder,
    CancelOrder,
    Command,
    Cross,
    Event,
    Fill,
    MassCancel,
    NewOrder,
    OrderView,
    Result,
    ResultCode,
    Side,
)
from market.codes import engine_message, message
from market.model import Listing, OrderAck, Outcome, Rejection, RejectionRecord
from venue.trades import Fanout, TradeBook

OrderCommand = NewOrder | AmendOrder | CancelOrder | MassCancel

_RECENT_REJECTIONS = 2_000


class Sequencing(Protocol):
    """``journal.Sequencer`` as the pipeline uses it."""

    @property
    def next_seq(self) -> int: ...

    def enqueue(self, cmd: Command) -> tuple[int, Command, asyncio.Future[Result]]: ...

    def subscribe(self, listener: Callable[[int, Command, Result], None]) -> Callable[[], None]: ...


class GateDecision(Protocol):
    @property
    def ok(self) -> bool: ...
    @property
    def code(self) -> object: ...
    @property
    def message(self) -> str: ...
    @property
    def hold(self) -> Hold | None: ...


class Gate(Protocol):
    """The pre-trade gate and its reservation ledger (``compliance.Gatekeeper``)."""

    def check_new_order(self, *, participant: str, symbol: str, side: Side, qty: int, price: int | None,
                        now_ts: int, seq: int | None = None) -> GateDecision: ...

    def check_amend(self, *, participant: str, order: OrderView, new_price: int | None, new_qty: int | None,
                    now_ts: int, seq: int | None = None) -> GateDecision: ...

    def release(self, hold: Hold) -> None: ...

    def on_command(self, seq: int, events: tuple[Event, ...]) -> None: ...


class EntryGuard(Protocol):
    """Venue-wide refusals before the gate (``venue.guards``: chain staleness, settlement backlog)."""

    def refuse(self, cmd: NewOrder | AmendOrder, order: OrderView | None) -> Rejection | None: ...


class OrderReader(Protocol):
    def order(self, order_id: int) -> OrderView | None: ...


class Listings(Protocol):
    def listing(self, symbol: str) -> Listing | None: ...


class SignedCheck(Protocol):
    """Investor-signed orders (``venue.signed.SignedOrders``)."""

    def check(self, cmd: OrderCommand) -> Rejection | None: ...

    async def verify(self, cmd: OrderCommand) -> Rejection | None:
        """The chain's part of the signature check (ERC-1271 contract wallets), awaited before ``check``."""
        ...

    def on_command(self, cmd: Command, result: Result) -> None: ...

    def after_command(self, result: Result) -> None: ...


class Projection(Protocol):
    def enqueue(self, cmd_seq: int, cmd: Command, result: Result) -> None: ...


class RejectionLog:
    """Every refusal (gate or engine), counted by code and kept for the operator console."""

    def __init__(self, clock: Callable[[], int]) -> None:
        self._clock = clock
        self._recent: deque[RejectionRecord] = deque(maxlen=_RECENT_REJECTIONS)
        self._counts: dict[str, int] = {}

    def record(self, participant: str, symbol: str, code: str, text: str) -> None:
        self._counts[code] = self._counts.get(code, 0) + 1
        self._recent.append(RejectionRecord(ts=self._clock(), participant=participant, symbol=symbol,
                                            code=code, message=text))

    def counts(self) -> dict[str, int]:
        return dict(sorted(self._counts.items()))

    def recent(self, limit: int = 100) -> list[RejectionRecord]:
        return list(itertools.islice(reversed(self._recent), limit))


class OrderPipeline:
    def __init__(
        self,
        *,
        sequencer: Sequencing,
        orders: OrderReader,
        listings: Listings,
        trades: TradeBook,
        gate: Gate | None = None,
        projection: Projection | None = None,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self._sequencer = sequencer
        self._orders = orders
        self._listings = listings
        self._trades = trades
        self._gate = gate
        self._projection = projection
        self._clock = clock
        self._amending: set[int] = set()  # one amend per order in flight: its funding delta is from the current order
        # per participant, the client order ids of the new orders the journal held at recovery: the
        # gateway answers retries within one process, these refuse retries of orders from before it
        self._recovered_ids: dict[str, set[str]] = {}
        self._cross_holds: dict[int, tuple[Hold, ...]] = {}  # command seq of a Cross -> its sides' holds
        self.guard: EntryGuard | None = None  # set by the runtime wiring (``venue.safeguards``)
        self.events: Fanout[Event] = Fanout()
        self.command_seq = sequencer.next_seq - 1  # the command whose events are fanned out now (or last)
        self.rejections = RejectionLog(clock)
        self._unsubscribe = sequencer.subscribe(self._post_trade)
        self.price_check: Callable[[OrderCommand], Rejection | None] | None = None  # NAV collar (venue.attestations)
        self.intake: Callable[[], Rejection | None] | None = None  # store backlog pause of off-book sides (runtime)
        self.signed: SignedCheck | None = None  # investor-signed orders (venue.signed)

    async def submit(self, participant: str, cmd: OrderCommand) -> Outcome:
        if cmd.participant != participant:
            raise ValueError("command participant does not match the authenticated participant")
        symbol = self._symbol_of(cmd)
        # ---- 1. gate (a contract wallet's signature is asked of the chain first, off the event loop)
        refusal, hold = await self._wallet_signature(cmd) or self._guarded(cmd) or self._gate_check(cmd)
        if refusal is not None:
            self.rejections.record(participant, symbol, refusal.code, refusal.message)
            return Outcome(rejection=refusal, ack=OrderAck.rejected(refusal, client_order_id=_coid(cmd),
                                                                     symbol=symbol, order_id=_order_id(cmd)))
        # ---- 2. sequencer (journal + engine); 3. and 4. run in its listener before this returns
        try:
            _, _, future = self._sequencer.enqueue(cmd)
        except BaseException:
            if hold is not None and self._gate is not None:
                self._gate.release(hold)
            raise
        amend_coid = ""
        if isinstance(cmd, AmendOrder):
            self._amending.add(cmd.order_id)
            view = self._orders.order(cmd.order_id)
            amend_coid = view.client_order_id if view is not None else ""
        try:
            result = await future
        finally:
            if isinstance(cmd, AmendOrder):
                self._amending.discard(cmd.order_id)
        # ---- 5. answer
        if result.code is not ResultCode.OK:
            self.rejections.record(participant, symbol, result.code.name, engine_message(result.code))
        return Outcome(result=result, ack=self._priced(OrderAck.answer(cmd, result, amend_client_order_id=amend_coid)))

    # ------------------------------------------------------------ negotiated trades (RFQ, blocks)

    def check_side(self, *, participant: str, symbol: str, side: Side, qty: int,
                   price: int) -> tuple[Rejection | None, Hold | None]:
        """One side of a negotiated trade, checked like a limit order at ``price``: the venue guards,
        the NAV collar, eligibility and funding. The hold is under a private id (never a command
        seq); ``submit_cross`` consumes it, or the caller gives it back with ``release``."""
        if self.intake is not None and (paused := self.intake()) is not None:
            return paused, None
        probe = NewOrder(ts=self._clock(), participant=participant, symbol=symbol, side=side, qty=qty, price=price)
        if self.signed is not None and (unsigned := self.signed.check(probe)) is not None:
            # a negotiated side carries no signed order: a wallet in signed mode (or a listing that
            # requires it) would have the contract refuse the trade, so it is refused here
            return Rejection(code=unsigned.code, message=f"{unsigned.message} (requests for quotes and block "
                                                         "trades carry no signed order)"), None
        guarded = self._guarded(probe)
        if guarded is not None:
            return guarded
        if self.price_check is not None and (collar := self.price_check(probe)) is not None:
            return collar, None
        if self._gate is None:
            return None, None
        decision = self._gate.check_new_order(participant=participant, symbol=symbol, side=side, qty=qty,
                                              price=price, now_ts=self._clock(), seq=None)
        if not decision.ok:
            code = str(decision.code)
            return Rejection(code=code, message=decision.message or message(code)), None
        return None, decision.hold

    def release(self, hold: Hold | None) -> None:
        if hold is not None and self._gate is not None:
            self._gate.release(hold)

    async def submit_cross(self, cross: Cross, holds: Sequence[Hold | None] = ()) -> Result:
        """Journal and apply one negotiated trade. ``holds`` (from ``check_side``) are released in
        post-trade right after the gate has booked the cross's fill as obligations (or its refusal)."""
        kept = tuple(h for h in holds if h is not None)
        try:
            seq, _, future = self._sequencer.enqueue(cross)
        except BaseException:
            for hold in kept:
                self.release(hold)
            raise
        if kept:
            self._cross_holds[seq] = kept  # post-trade of ``seq`` runs after this (it waits for the journal)
        result = await future
        if result.code is not ResultCode.OK:
            self.rejections.record(cross.buyer, cross.symbol, result.code.name, engine_message(result.code))
        return result

    def remember_client_ids(self, ids: Iterable[tuple[str, str]]) -> int:
        """Recovery: ``(participant, client_order_id)`` of every journaled new order (``Journal.
        client_order_ids``; all of them, not only open ones), so a retry after a restart cannot
        create a second order. Returns how many were read."""
        seen = 0
        for participant, coid in ids:
            self._recovered_ids.setdefault(participant, set()).add(coid)
            seen += 1
        return seen

    def _reused(self, cmd: NewOrder) -> Rejection | None:
        known = self._recovered_ids.get(cmd.participant)
        if not cmd.client_order_id or known is None or cmd.client_order_id not in known:
            return None
        return Rejection(code="CLIENT_ORDER_ID_REUSED",
                         message=f"client_order_id {cmd.client_order_id!r} was already used before the venue "
                                 "restarted; query the order instead of resending it")

    async def submit_batch(self, participant: str, cmds: Sequence[OrderCommand]) -> list[Outcome]:
        """Several commands as one uninterrupted run of consecutive seqs (mass quote): each is gated
        and enqueued in one synchronous stretch, so no other command can come between them. A
        command the gate refuses is left out of the run; amends are not batched."""
        entered: list[Outcome | asyncio.Future[Result]] = []
        for cmd in cmds:
            if cmd.participant != participant or isinstance(cmd, AmendOrder):
                raise ValueError("a batch holds the authenticated participant's new orders and cancels")
            refusal, hold = self._guarded(cmd) or self._gate_check(cmd)  # the same checks as ``submit``
            if refusal is not None:
                symbol = self._symbol_of(cmd)
                self.rejections.record(participant, symbol, refusal.code, refusal.message)
                entered.append(Outcome(rejection=refusal, ack=OrderAck.rejected(
                    refusal, client_order_id=_coid(cmd), symbol=symbol, order_id=_order_id(cmd))))
                continue
            try:
                entered.append(self._sequencer.enqueue(cmd)[2])
            except BaseException:
                if hold is not None and self._gate is not None:
                    self._gate.release(hold)
                raise
        outcomes: list[Outcome] = []
        for cmd, item in zip(cmds, entered, strict=True):
            if isinstance(item, Outcome):
                outcomes.append(item)
                continue
            result = await item
            if result.code is not ResultCode.OK:
                self.rejections.record(participant, self._symbol_of(cmd), result.code.name,
                                       engine_message(result.code))
            outcomes.append(Outcome(result=result, ack=self._priced(OrderAck.answer(cmd, result))))
        return outcomes

    def _priced(self, ack: OrderAck | None) -> OrderAck | None:
        """The ack's fills with their premium/discount to the NAV, as the trade book stamped them."""
        if ack is None or not ack.fills:
            return ack
        fills = []
        for f in ack.fills:
            trade = self._trades.trade(f.trade_id)
            fills.append(f if trade is None else dataclasses.replace(f, premium_bps=trade.premium_bps))
        return dataclasses.replace(ack, fills=tuple(fills))

    def _gate_check(self, cmd: OrderCommand) -> tuple[Rejection | None, Hold | None]:
        if isinstance(cmd, NewOrder) and (reused := self._reused(cmd)) is not None:
            return reused, None
        if isinstance(cmd, AmendOrder) and cmd.order_id in self._amending:
            return Rejection(code="AMEND_IN_FLIGHT", message=f"order {cmd.order_id} has an amend in flight; "
                             "retry when it is answered"), None
        if self.price_check is not None and (collar := self.price_check(cmd)) is not None:
            return collar, None
        if self.signed is not None and (unsigned := self.signed.check(cmd)) is not None:
            return unsigned, None
        if self._gate is None:
            return None, None
        seq = self._sequencer.next_seq
        if isinstance(cmd, NewOrder):
            if self._listings.listing(cmd.symbol) is None:
                return None, None  # the engine answers UNKNOWN_INSTRUMENT
            decision = self._gate.check_new_order(participant=cmd.participant, symbol=cmd.symbol, side=cmd.side,
                                                  qty=cmd.qty, price=cmd.price, now_ts=self._clock(), seq=seq)
        elif isinstance(cmd, AmendOrder):
            order = self._orders.order(cmd.order_id)
            if order is None or order.participant != cmd.participant:
                return None, None  # the engine answers UNKNOWN_ORDER
            decision = self._gate.check_amend(participant=cmd.participant, order=order, new_price=cmd.price,
                                              new_qty=cmd.qty, now_ts=self._clock(), seq=seq)
        else:
            return None, None  # cancels only reduce risk
        if not decision.ok:
            code = str(decision.code)
            return Rejection(code=code, message=decision.message or message(code)), None
        return None, decision.hold

    async def _wallet_signature(self, cmd: OrderCommand) -> tuple[Rejection, None] | None:
        if self.signed is None or not isinstance(cmd, NewOrder) or not cmd.attachment:
            return None
        refusal = await self.signed.verify(cmd)
        return None if refusal is None else (refusal, None)

    def _guarded(self, cmd: OrderCommand) -> tuple[Rejection, None] | None:
        if self.guard is None or not isinstance(cmd, NewOrder | AmendOrder):
            return None  # cancels always pass
        order = self._orders.order(cmd.order_id) if isinstance(cmd, AmendOrder) else None
        if isinstance(cmd, AmendOrder) and (order is None or order.participant != cmd.participant):
            return None  # the engine answers UNKNOWN_ORDER
        refusal = self.guard.refuse(cmd, order)
        return None if refusal is None else (refusal, None)

    def _symbol_of(self, cmd: OrderCommand) -> str:
        if isinstance(cmd, NewOrder):
            return cmd.symbol
        if isinstance(cmd, MassCancel):
            return cmd.symbol or ""
        order = self._orders.order(cmd.order_id)
        return order.symbol if order is not None else ""

    # ------------------------------------------------------------ 3. post-trade, 4. fan-out

    def _post_trade(self, seq: int, cmd: Command, result: Result) -> None:
        self.command_seq = seq
        if self._gate is not None:
            self._gate.on_command(seq, result.events)
            for hold in self._cross_holds.pop(seq, ()):
                self._gate.release(hold)
        if self.signed is not None:
            self.signed.on_command(cmd, result)  # before the fills: their trades carry the signed orders
        for event in result.events:
            if isinstance(event, Fill):
                self._trades.on_fill(event)
            self.events.emit(event)
        if self.signed is not None:
            self.signed.after_command(result)
        if self._projection is not None:
            self._projection.enqueue(seq, cmd, result)


def _coid(cmd: OrderCommand) -> str:
    return cmd.client_order_id if isinstance(cmd, NewOrder) else ""


def _order_id(cmd: OrderCommand) -> int | None:
    return cmd.order_id if isinstance(cmd, AmendOrder | CancelOrder) else None
