"""Market-maker tools: dead-man switch, market-maker protection (MMP) and mass quote.

* ``cancel_after`` (as Kraken's ``cancelAllOrdersAfter``): arms, per participant, a timer of
  ``timeout_s`` seconds; when it runs out, all the participant's open orders are cancelled (one
  mass cancel). Every call re-arms it (the refresh); ``timeout_s = 0`` disarms. The timer is per
  participant, not per session: any of its sessions or REST calls refreshes the same timer, as on
  Kraken. It lives in the gateway process (a gateway restart disarms it).
* MMP (as Deribit's): per participant and instrument, ``qty_limit`` (notes, as a decimal) and/or
  ``fills_limit`` within ``interval_ms``, counted over the participant's maker fills. When a limit
  is reached, all the participant's open orders on that instrument are cancelled, new orders and
  mass quotes on it are refused with MMP_FROZEN for ``freeze_ms`` (0: until ``reset_mmp``), and an
  ``mmp_triggered`` event goes to the participant's private ``mmp`` channel.
* mass quote: one message replaces all the participant's open orders on one instrument by up to
  ``max_levels`` new limit orders (both sides, several levels) with one acknowledgement. The mass
  cancel and the new orders enter the sequencer as one uninterrupted run of consecutive seqs
  (``VenuePort.submit_batch``), so no other command reaches the book between them. Funding is
  checked for each new quote while the holds of the quotes it replaces are still in force.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Protocol

from pydantic import Field

from engine import (
    AmendOrder,
    CancelOrder,
    CancelReason,
    Event,
    Fill,
    MassCancel,
    NewOrder,
    OrderCancelled,
    OrderType,
    Side,
    TimeInForce,
)
from gateway.decimals import format_qty, parse_price, parse_qty
from gateway.errors import ApiError, error_body
from gateway.guards import GuardedVenue, VenueRefusals
from gateway.orders import OrderService, Reply
from gateway.ports import Listing, Outcome, VenuePort
from gateway.render import JSON
from gateway.schemas import DecimalText, MassCancelRequest, Strict, Symbol
from gateway.streams import Hub
from market.model import Rejection

log = logging.getLogger(__name__)

MAX_CANCEL_AFTER_S = 86_400
MAX_QUOTE_LEVELS = 20


# ---------------------------------------------------------------- requests


class CancelAfterRequest(Strict):
    timeout_s: int = Field(ge=0, le=MAX_CANCEL_AFTER_S, description="seconds until all orders are cancelled; 0 disarms")


class MmpConfigRequest(Strict):
    symbol: Symbol
    interval_ms: int = Field(ge=1, le=3_600_000, description="the window the limits count over")
    qty_limit: DecimalText | None = Field(default=None, description="maker quantity filled within the window")
    fills_limit: int | None = Field(default=None, ge=1, le=1_000_000, description="maker fills within the window")
    freeze_ms: int = Field(ge=0, le=86_400_000, description="how long quotes are refused once hit; 0: until reset")


class MmpResetRequest(Strict):
    symbol: Symbol


QuoteId = Annotated[str, Field(min_length=1, max_length=48, pattern=r"^[A-Za-z0-9._:-]+$")]


class QuoteLevel(Strict):
    side: Literal["buy", "sell"]
    price: DecimalText
    qty: DecimalText


class MassQuoteRequest(Strict):
    symbol: Symbol
    quote_id: QuoteId | None = Field(default=None, description="echoed in the acknowledgement")
    levels: list[QuoteLevel] = Field(max_length=MAX_QUOTE_LEVELS, description="new quotes; empty: pull all quotes")
    post_only: bool = True


# ---------------------------------------------------------------- dead-man switch


class Handle(Protocol):
    def cancel(self) -> None: ...


Scheduler = Callable[[float, Callable[[], None]], Handle]


def _call_later(delay: float, callback: Callable[[], None]) -> Handle:
    return asyncio.get_running_loop().call_later(delay, callback)


@dataclass(slots=True)
class _Mmp:
    interval_ns: int
    qty_limit: int | None
    fills_limit: int | None
    freeze_ns: int
    window: deque[tuple[int, int]] = field(default_factory=deque)  # (ts, qty) of maker fills
    frozen_until: int | None = None  # monotonic ns; -1: until reset


@dataclass(frozen=True, slots=True)
class MmpTrigger:
    participant: str
    symbol: str
    reason: str
    freeze_ms: int


class MmpBook:
    """MMP limits and state per (participant, instrument); pure bookkeeping, no I/O."""

    def __init__(self, clock: Callable[[], int] = time.monotonic_ns) -> None:
        self._clock = clock
        self._mmp: dict[tuple[str, str], _Mmp] = {}

    def configure(self, participant: str, symbol: str, *, interval_ms: int, qty_limit: int | None,
                  fills_limit: int | None, freeze_ms: int) -> None:
        self._mmp[(participant, symbol)] = _Mmp(interval_ns=interval_ms * 1_000_000, qty_limit=qty_limit,
                                                fills_limit=fills_limit, freeze_ns=freeze_ms * 1_000_000)

    def reset(self, participant: str, symbol: str) -> None:
        state = self._mmp.get((participant, symbol))
        if state is not None:
            state.frozen_until = None
            state.window.clear()

    def config(self, participant: str, symbol: str) -> tuple[int, int | None, int | None, int] | None:
        """(interval_ms, qty_limit, fills_limit, freeze_ms), or None when not configured."""
        state = self._mmp.get((participant, symbol))
        if state is None:
            return None
        return (state.interval_ns // 1_000_000, state.qty_limit, state.fills_limit, state.freeze_ns // 1_000_000)

    def frozen(self, participant: str, symbol: str) -> bool:
        state = self._mmp.get((participant, symbol))
        if state is None or state.frozen_until is None:
            return False
        if state.frozen_until >= 0 and self._clock() >= state.frozen_until:
            state.frozen_until = None
            return False
        return True

    def refusal(self, participant: str, symbol: str) -> Rejection | None:
        """MMP_FROZEN while MMP has frozen this participant's quoting on ``symbol``."""
        if not self.frozen(participant, symbol):
            return None
        until_reset = self._mmp[(participant, symbol)].frozen_until == -1
        return Rejection(code="MMP_FROZEN", message=f"market-maker protection froze quoting on {symbol}; "
                         + ("reset it" if until_reset else "wait for the freeze to end"))

    def on_fill(self, fill: Fill) -> MmpTrigger | None:
        """Counts a maker fill; returns the trigger when it reaches a limit (the state freezes)."""
        state = self._mmp.get((fill.maker_participant, fill.symbol))
        if state is None or self.frozen(fill.maker_participant, fill.symbol):
            return None
        now = self._clock()
        state.window.append((now, fill.qty))
        while state.window and state.window[0][0] <= now - state.interval_ns:
            state.window.popleft()
        hit_qty = state.qty_limit is not None and sum(q for _, q in state.window) >= state.qty_limit
        hit_fills = state.fills_limit is not None and len(state.window) >= state.fills_limit
        if not (hit_qty or hit_fills):
            return None
        state.frozen_until = now + state.freeze_ns if state.freeze_ns else -1
        state.window.clear()
        return MmpTrigger(participant=fill.maker_participant, symbol=fill.symbol,
                          reason="qty_limit" if hit_qty else "fills_limit", freeze_ms=state.freeze_ns // 1_000_000)


class MmpVenue(GuardedVenue):
    """The gateway's venue port with MMP's refusal of new orders on a frozen instrument."""

    def __init__(self, venue: VenuePort, refusals: VenueRefusals, mmp: MmpBook) -> None:
        super().__init__(venue, refusals)
        self.mmp = mmp

    async def submit(self, participant: str, cmd: NewOrder | AmendOrder | CancelOrder | MassCancel) -> Outcome:
        if isinstance(cmd, NewOrder):
            refusal = self.mmp.refusal(participant, cmd.symbol)
            if refusal is not None:
                return Outcome(rejection=refusal)
        return await super().submit(participant, cmd)

    async def submit_batch(self, participant: str,
                           cmds: Sequence[NewOrder | CancelOrder | MassCancel]) -> list[Outcome]:
        """Each new order on a frozen instrument is refused on its own (the websocket's batches of
        independent orders); the rest of the batch goes to the venue as one run."""
        refused = {i: Outcome(rejection=refusal) for i, cmd in enumerate(cmds)
                   if isinstance(cmd, NewOrder) and (refusal := self.mmp.refusal(participant, cmd.symbol)) is not None}
        if not refused:
            return await super().submit_batch(participant, cmds)
        rest = [cmd for i, cmd in enumerate(cmds) if i not in refused]
        outcomes = iter(await super().submit_batch(participant, rest) if rest else [])
        return [refused[i] if i in refused else next(outcomes) for i in range(len(cmds))]


class MarketMakerTools:
    def __init__(self, venue: VenuePort, orders: OrderService, hub: Hub, mmp: MmpBook, *,
                 scheduler: Scheduler = _call_later) -> None:
        self._venue = venue
        self._orders = orders
        self._hub = hub
        self.scheduler = scheduler  # replaceable (tests drive the dead-man timer by hand)
        self.mmp = mmp
        self._timers: dict[str, tuple[Handle, float]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._unsubscribe: Callable[[], None] | None = None
        self.dead_man_fired = 0

    def start(self) -> None:
        if self._unsubscribe is None:
            self._unsubscribe = self._venue.subscribe_events(self._on_event)

    def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        for handle, _ in self._timers.values():
            handle.cancel()
        self._timers.clear()

    def _spawn(self, coro: Coroutine[Any, Any, Reply]) -> None:
        task = asyncio.get_running_loop().create_task(self._quietly(coro))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _quietly(coro: Coroutine[Any, Any, Reply]) -> None:
        try:
            reply = await coro
        except ApiError as err:
            log.warning("market-maker mass cancel refused: %s", err.code)
            return
        if not reply.ok:
            log.warning("market-maker mass cancel refused: %s", reply.body.get("error"))

    # ------------------------------------------------------------ dead-man switch

    def cancel_after(self, participant: str, timeout_s: int) -> JSON:
        old = self._timers.pop(participant, None)
        if old is not None:
            old[0].cancel()
        now = time.time()
        if timeout_s == 0:
            return {"armed": False, "current_time": now, "trigger_time": None}
        handle = self.scheduler(float(timeout_s), lambda: self._fire(participant))
        self._timers[participant] = (handle, now + timeout_s)
        return {"armed": True, "current_time": now, "trigger_time": now + timeout_s}

    def _fire(self, participant: str) -> None:
        self._timers.pop(participant, None)
        self.dead_man_fired += 1
        log.info("cancel_after ran out for %s: cancelling all its orders", participant)
        self._spawn(self._orders.mass_cancel(participant, MassCancelRequest(), reason=CancelReason.MASS_CANCEL))

    # ------------------------------------------------------------ market-maker protection

    def set_mmp(self, participant: str, req: MmpConfigRequest) -> JSON:
        listing = self._orders.listing(req.symbol)
        if req.qty_limit is None and req.fills_limit is None:
            raise ApiError("MISSING_FIELD", "give qty_limit and/or fills_limit")
        qty = parse_qty(req.qty_limit, listing) if req.qty_limit is not None else None
        self.mmp.configure(participant, req.symbol, interval_ms=req.interval_ms, qty_limit=qty,
                           fills_limit=req.fills_limit, freeze_ms=req.freeze_ms)
        return self.mmp_state(participant, req.symbol)

    def reset_mmp(self, participant: str, symbol: str) -> JSON:
        self._orders.listing(symbol)
        self.mmp.reset(participant, symbol)
        return self.mmp_state(participant, symbol)

    def mmp_state(self, participant: str, symbol: str) -> JSON:
        listing = self._orders.listing(symbol)
        config = self.mmp.config(participant, symbol)
        if config is None:
            return {"symbol": symbol, "configured": False, "frozen": False}
        interval_ms, qty_limit, fills_limit, freeze_ms = config
        return {"symbol": symbol, "configured": True, "frozen": self.mmp.frozen(participant, symbol),
                "interval_ms": interval_ms, "freeze_ms": freeze_ms, "fills_limit": fills_limit,
                "qty_limit": None if qty_limit is None else format_qty(qty_limit, listing)}

    def _on_event(self, event: Event) -> None:
        if isinstance(event, Fill):
            trigger = self.mmp.on_fill(event)
            if trigger is not None:
                self._triggered(trigger)

    def _triggered(self, trigger: MmpTrigger) -> None:
        log.info("MMP triggered for %s on %s (%s)", trigger.participant, trigger.symbol, trigger.reason)
        self._hub.publish_private(trigger.participant, "mmp", {
            "channel": "mmp", "type": "mmp_triggered", "symbol": trigger.symbol, "reason": trigger.reason,
            "freeze_ms": trigger.freeze_ms, "ts": time.time_ns()})
        self._spawn(self._orders.mass_cancel(trigger.participant, MassCancelRequest(symbol=trigger.symbol),
                                             reason=CancelReason.MASS_CANCEL))

    # ------------------------------------------------------------ mass quote

    async def mass_quote(self, participant: str, req: MassQuoteRequest, *, session: str = "") -> Reply:
        listing = self._orders.listing(req.symbol)
        refusal = self.mmp.refusal(participant, req.symbol)
        if refusal is not None:
            raise ApiError(refusal.code, refusal.message)
        quotes = [self._quote(participant, req, level, listing, session, i) for i, level in enumerate(req.levels)]
        bids = [q.price for q in quotes if q.side is Side.BUY and q.price is not None]
        asks = [q.price for q in quotes if q.side is Side.SELL and q.price is not None]
        if bids and asks and max(bids) >= min(asks):
            raise ApiError("QUOTE_CROSSED", f"the best bid {max(bids)} is not below the best ask {min(asks)} "
                           "(in price ticks)")
        cancel = MassCancel(ts=0, participant=participant, symbol=req.symbol, reason=CancelReason.MASS_CANCEL)
        outcomes = await self._venue.submit_batch(participant, [cancel, *quotes])
        return self._quote_reply(req, listing, outcomes)

    @staticmethod
    def _quote(participant: str, req: MassQuoteRequest, level: QuoteLevel, listing: Listing, session: str,
               index: int) -> NewOrder:
        side = Side.BUY if level.side == "buy" else Side.SELL
        coid = f"{req.quote_id}-{index}" if req.quote_id else ""
        return NewOrder(ts=0, participant=participant, symbol=req.symbol, side=side,
                        qty=parse_qty(level.qty, listing), price=parse_price(level.price, listing),
                        order_type=OrderType.LIMIT, tif=TimeInForce.GTC, post_only=req.post_only,
                        client_order_id=coid, session=session)

    def _quote_reply(self, req: MassQuoteRequest, listing: Listing, outcomes: list[Outcome]) -> Reply:
        cancelled_outcome, *quote_outcomes = outcomes
        refused = OrderService.refusal(cancelled_outcome)
        if refused is not None:
            return refused
        assert cancelled_outcome.result is not None
        cancelled = [ev.order_id for ev in cancelled_outcome.result.events if isinstance(ev, OrderCancelled)]
        results: list[JSON] = []
        for outcome in quote_outcomes:
            refusal = OrderService.refusal(outcome)
            if refusal is not None:
                results.append({"ok": False, **refusal.body})
            elif outcome.ack is None:
                results.append({"ok": False, **error_body("VENUE_ERROR", "no acknowledgement")})
            else:
                results.append({"ok": True, **OrderService.ack_body(outcome.ack, listing)})
        return Reply(200, {"symbol": req.symbol, "quote_id": req.quote_id, "cancelled": cancelled,
                           "quotes": results, "accepted": sum(1 for r in results if r["ok"]),
                           "ts": time.time_ns()})
