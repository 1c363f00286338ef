"""The trade book: every trade of the running venue, its settlement state machine, and the one
place that turns a trade into a ``TradeToSettle``.

    engine Fill -> Trade.from_fill -> pre-settlement re-check (gate) -> settlement queue
    settlement update -> state machine -> gate (release obligations)
                      -> store (durable) -> then: subscribers, venue ledger

The state machine: PENDING -> SUBMITTED -> CONFIRMED -> FINAL, or FAILED from any state before
CONFIRMED; a reorg sends a CONFIRMED trade back to PENDING (its ledger booking is reversed).
FAILED and FINAL never move; CONFIRMED is the last word when finality is not tracked. A state
already reached is not reported again, so a subscriber sees each transition once.

Decided once, durable before told: every transition goes to the recorder first, and subscribers
and the ledger hear of it only once the recorder says it is in the store (``then``).

After a restart ``restore_unsettled`` puts back the unfinished trades from the store, so their
late settlement updates land, and ``to_settle`` rebuilds what the settlement service needs.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, Protocol, TypeVar

from engine import Fill
from market.model import Listing, SettlementNotice, SettlementState, Trade
from market.signed import SignedOrder
from settlement.service import TradeToSettle

log = logging.getLogger(__name__)
T = TypeVar("T")
Unsubscribe = Callable[[], None]

_RECENT_TRADES = 10_000


class TradeCheck(Protocol):
    """What the trade book needs from the gate (``compliance.Gatekeeper``)."""

    def check_trade(self, fill: Fill, *, now_ts: int) -> TradeDecision: ...

    def on_trade_finished(self, trade_id: int, *, block: int | None = None, failed: bool = False) -> None: ...

    def adopt_trade(self, *, trade_id: int, symbol: str, price: int, qty: int, buyer: str, seller: str) -> None: ...


class TradeDecision(Protocol):
    @property
    def ok(self) -> bool: ...
    @property
    def code(self) -> object: ...
    @property
    def message(self) -> str: ...


class SettlementQueue(Protocol):
    def submit(self, trade: TradeToSettle) -> None: ...


class SettlementRecorder(Protocol):
    def record_settlement(self, notice: SettlementNotice, then: Callable[[], None] | None = None) -> None:
        """Write ``notice`` durably, in order with the others; call ``then`` (on the event loop)
        once it is in the store."""


class Parties(Protocol):
    """Reference data the trade book reads: listings and settlement wallets."""

    def listing(self, symbol: str) -> Listing | None: ...

    def wallet_of(self, participant: str) -> str | None: ...


class VenueLedger(Protocol):
    def apply_trade(
        self, token: str, cash_token: str, *, buyer: str, seller: str, quantity: int, cash: int
    ) -> None: ...


class Fanout(Generic[T]):
    """Listeners called in order; a broken listener is logged and never stops the venue."""

    def __init__(self) -> None:
        self._listeners: dict[int, Callable[[T], None]] = {}
        self._ids = itertools.count(1)

    def add(self, listener: Callable[[T], None]) -> Unsubscribe:
        key = next(self._ids)
        self._listeners[key] = listener

        def unsubscribe() -> None:
            self._listeners.pop(key, None)

        return unsubscribe

    def emit(self, item: T) -> None:
        for listener in list(self._listeners.values()):
            try:
                listener(item)
            except Exception:  # a broken subscriber must not stop the venue
                log.exception("subscriber failed")


_DONE = frozenset({SettlementState.FAILED, SettlementState.FINAL})


def allowed(previous: SettlementState, state: SettlementState, *, finality: bool) -> bool:
    """Whether a trade in ``previous`` may move to ``state`` (never to the state it is in)."""
    if state is previous or previous in _DONE:
        return False
    if previous is SettlementState.CONFIRMED:
        return finality and state in (SettlementState.FINAL, SettlementState.PENDING)
    return state is not SettlementState.FINAL  # FINAL only after CONFIRMED


def finished(state: SettlementState, *, finality: bool) -> bool:
    """Nothing more will happen to a trade in ``state`` (it needs no recovery after a restart)."""
    return state in _DONE or (state is SettlementState.CONFIRMED and not finality)


@dataclasses.dataclass(slots=True)
class _Entry:
    trade: Trade
    notice: SettlementNotice
    state: SettlementState  # the last accepted state (may not be in the store yet)


class TradeBook:
    def __init__(
        self,
        parties: Parties,
        *,
        gate: TradeCheck | None = None,
        settlement: SettlementQueue | None = None,
        recorder: SettlementRecorder | None = None,
        ledger: VenueLedger | None = None,
        finality: bool = False,
    ) -> None:
        self._parties = parties
        self.finality = finality  # CONFIRMED is followed by FINAL (or a reorg's PENDING)
        self.signed_orders: Callable[[int], SignedOrder | None] | None = None  # order id -> its signed order
        self._gate = gate
        self._settlement = settlement
        self._recorder = recorder
        self._ledger = ledger
        self._entries: deque[_Entry] = deque(maxlen=_RECENT_TRADES)
        self._index: dict[int, _Entry] = {}
        self._counts: dict[str, int] = {s.value: 0 for s in SettlementState}
        self.notices: Fanout[SettlementNotice] = Fanout()
        self.printed: Fanout[Trade] = Fanout()  # each new trade as it prints, before its notice is durable
        # premium/discount (bps) to the NAV in force, set by ``venue.attestations`` when NAVs are known
        self.stamp: Callable[[Fill], int | None] | None = None

    # ------------------------------------------------------------ trades in

    def on_fill(self, fill: Fill) -> Trade:
        """A new trade from the engine (called in command order, after durability)."""
        trade = Trade.from_fill(fill, premium_bps=None if self.stamp is None else self.stamp(fill))
        entry = self._add(trade)
        self.printed.emit(trade)  # risk (unsettled notional) counts a trade from the moment it prints
        self._publish(entry, entry.notice)
        self._send(fill, trade)
        return trade

    def restore(self, trade: Trade) -> None:
        """After a restart: an unsettled trade from the store, so its settlement updates land."""
        self._add(trade)

    def restore_unsettled(self, trades: Iterable[Trade]) -> list[TradeToSettle]:
        """After a restart: the trades not yet settled go back into the book and their obligations
        into the gate; returns what the settlement service must take up again (a trade without a
        wallet or listing now fails with ``NO_WALLET_AFTER_RESTART``)."""
        resend: list[TradeToSettle] = []
        for trade in trades:
            if finished(trade.settlement, finality=self.finality):
                continue
            self.restore(trade)
            if self._gate is not None:
                self._gate.adopt_trade(trade_id=trade.trade_id, symbol=trade.symbol, price=trade.price,
                                       qty=trade.qty, buyer=trade.buyer, seller=trade.seller)
            order = self.to_settle(trade)
            if order is None:
                self.on_settlement_update(trade.trade_id, SettlementState.FAILED, reason="NO_WALLET_AFTER_RESTART")
                continue
            resend.append(order)
        return resend

    def _add(self, trade: Trade) -> _Entry:
        notice = SettlementNotice(trade_id=trade.trade_id, symbol=trade.symbol, buyer=trade.buyer,
                                  seller=trade.seller, state=trade.settlement, origin=trade.origin)
        entry = _Entry(trade=trade, notice=notice, state=trade.settlement)
        if len(self._entries) == self._entries.maxlen:
            self._index.pop(self._entries[0].trade.trade_id, None)
        self._entries.append(entry)
        self._index[trade.trade_id] = entry
        self._counts[trade.settlement.value] += 1
        return entry

    def to_settle(self, trade: Trade) -> TradeToSettle | None:
        """What the settlement service needs for ``trade``; None when a wallet or the listing is missing."""
        listing = self._parties.listing(trade.symbol)
        buyer, seller = self._parties.wallet_of(trade.buyer), self._parties.wallet_of(trade.seller)
        if listing is None or buyer is None or seller is None:
            return None
        signed = self.signed_orders
        return TradeToSettle(
            trade_id=trade.trade_id, token=listing.token_address, seller=seller, buyer=buyer,
            quantity=listing.token_amount(trade.qty), cash_token=listing.cash_token_address,
            cash_amount=listing.cash_amount(trade.price, trade.qty),
            sell_order=signed(trade.sell_order_id) if signed is not None else None,
            buy_order=signed(trade.buy_order_id) if signed is not None else None,
        )

    def _send(self, fill: Fill, trade: Trade) -> None:
        if self._gate is not None:
            decision = self._gate.check_trade(fill, now_ts=fill.ts)
            if not decision.ok:
                self.on_settlement_update(trade.trade_id, SettlementState.FAILED,
                                          reason=f"{decision.code}: {decision.message}")
                return
        if self._settlement is None:
            return
        order = self.to_settle(trade)
        if order is None:
            self.on_settlement_update(trade.trade_id, SettlementState.FAILED, reason="NO_WALLET")
            return
        self._settlement.submit(order)

    # ------------------------------------------------------------ the settlement state machine

    def on_settlement_update(
        self,
        trade_id: int,
        state: SettlementState,
        *,
        tx_hash: str | None = None,
        block: int | None = None,
        gas_used: int | None = None,
        reason: str | None = None,
    ) -> None:
        """Every state change of a trade's settlement (on the event loop). A repeated or
        impossible transition is ignored; an accepted one is recorded, and published once stored."""
        entry = self._index.get(trade_id)
        if entry is None:
            log.warning("settlement update for unknown trade %s", trade_id)
            return
        previous = entry.state
        if not allowed(previous, state, finality=self.finality):
            if state is not previous:
                log.info("trade %s: ignored settlement %s after %s", trade_id, state.value, previous.value)
            return
        entry.state = state
        notice = dataclasses.replace(entry.notice, state=state, tx_hash=tx_hash or entry.notice.tx_hash,
                                     block=block, gas_used=gas_used, reason=reason)
        if self._gate is not None:
            if state in (SettlementState.CONFIRMED, SettlementState.FAILED):
                self._gate.on_trade_finished(trade_id, block=block, failed=state is SettlementState.FAILED)
            elif state is SettlementState.PENDING and previous is SettlementState.CONFIRMED:  # reorged away
                t = entry.trade
                self._gate.adopt_trade(trade_id=t.trade_id, symbol=t.symbol, price=t.price, qty=t.qty,
                                       buyer=t.buyer, seller=t.seller)
        self._publish(entry, notice, booked=previous)

    def _publish(self, entry: _Entry, notice: SettlementNotice, booked: SettlementState | None = None) -> None:
        """Record ``notice``; once it is durable, show it (trade state, counts), tell subscribers
        and book the ledger."""

        def told() -> None:
            shown = entry.notice.state
            if booked is not None:
                self._counts[shown.value] -= 1
                self._counts[notice.state.value] += 1
            entry.notice = notice
            entry.trade = dataclasses.replace(entry.trade, settlement=notice.state)
            self.notices.emit(notice)
            if notice.state is SettlementState.CONFIRMED:
                self._book(entry.trade)
            elif booked is SettlementState.CONFIRMED and notice.state is SettlementState.PENDING:
                self._book(entry.trade, reverse=True)

        if self._recorder is not None:
            self._recorder.record_settlement(notice, told)
        else:
            told()

    def _book(self, trade: Trade, *, reverse: bool = False) -> None:
        """Both legs of a settled trade into the venue's ledger (for reconciliation); ``reverse``
        takes them out again (the settlement was reorged away)."""
        settled = self.to_settle(trade) if self._ledger is not None else None
        if self._ledger is None or settled is None:
            return
        buyer, seller = (settled.seller, settled.buyer) if reverse else (settled.buyer, settled.seller)
        self._ledger.apply_trade(settled.token, settled.cash_token, buyer=buyer, seller=seller,
                                 quantity=settled.quantity, cash=settled.cash_amount)

    # ------------------------------------------------------------ reads

    def trade(self, trade_id: int) -> Trade | None:
        entry = self._index.get(trade_id)
        return entry.trade if entry is not None else None

    def recent(self) -> Iterator[Trade]:
        """The trades in memory, newest first (every trade of this process, up to the ring size)."""
        return (entry.trade for entry in reversed(self._entries))

    def trades(self, *, symbol: str | None = None, participant: str | None = None, limit: int = 100) -> list[Trade]:
        out: list[Trade] = []
        for entry in reversed(self._entries):
            t = entry.trade
            if symbol is not None and t.symbol != symbol:
                continue
            if participant is not None and participant not in (t.buyer, t.seller):
                continue
            out.append(t)
            if len(out) >= limit:
                break
        return out

    def settlements(self, limit: int = 200) -> list[SettlementNotice]:
        return [e.notice for e in itertools.islice(reversed(self._entries), limit)]

    def settlement_counts(self) -> dict[str, int]:
        return dict(self._counts)
