"""The funding reservation ledger: holds of orders in flight and on the book, and obligations of
trades not yet settled. Synchronous and in memory; amounts are integer base units.

Holds are keyed by the COMMAND SEQ the sequencer gives the command (exchange-core's R1/R2):
the gate reserves under the seq before the command is sequenced, and ``on_command(seq, events)``
(run in command order after the engine applied it) settles that reservation from the command's
own events, so no hold ever has to be matched to an order after the fact::

    reserve_order(seq)  -> on_command(seq): OrderAccepted binds it to the order id; no acceptance releases it
    reserve_amend(seq)  -> on_command(seq): always dropped (OrderAmended re-derives the order's hold)
    Fill            -> the filled part leaves the hold and becomes a pending-settlement obligation
    cancel / expiry -> the hold is released;  amend -> the hold follows the new price / remaining
    on_settled      -> obligation released once the cache has seen the settlement block
                       (block unknown: after two more completed watcher polls)
    on_settlement_failed -> obligation released at once (nothing moved on chain)

A buy reserves ``price * tick_size * remaining`` cash and counts ``remaining * lot_size`` notes
towards the holding cap; a sell reserves ``remaining * lot_size`` notes.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from compliance.cache import ChainStateCache
from compliance.errors import ConfigError, InvariantError, UnknownHoldError
from compliance.model import Hold, InstrumentRules, Participant
from engine import (
    Event,
    Fill,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderExpired,
    OrderView,
    Side,
)
from market.model import Trade


@dataclass(slots=True)
class Reservation:
    """One reservation: an order's hold, an amend's extra, or a trade's pending obligation."""

    participant: str
    symbol: str
    side: Side
    wallet: str
    token: str
    cash_token: str
    cash: int = 0  # cash reserved (buys)
    notes: int = 0  # buys: notes coming in (holding cap); sells: notes going out
    # order holds only: the reservation is derived from these
    price: int = 0
    remaining: int = 0
    order_id: int | None = None
    amend: bool = False  # an amend's provisional extra (dropped when its command is applied)


class CashPool(Protocol):
    """Cash reserved by other shards of a sharded venue (``venue.funding``): the gate reserves this
    shard's new total there before accepting a buy, and every change of the total is published."""

    def reserve(self, wallet: str, cash_token: str, total: int, limit: int) -> int | None: ...

    def publish(self, wallet: str, cash_token: str, total: int, *, settled: bool = False) -> None: ...


class Ledger:
    def __init__(self, cache: ChainStateCache, rules: Mapping[str, InstrumentRules],
                 participants: Mapping[str, Participant]) -> None:
        """``rules`` and ``participants`` are the gate's live maps (read, never written here)."""
        self.cache = cache
        self._rules = rules
        self._participants = participants
        self._holds: dict[int, Reservation] = {}  # by command seq (adopted orders: negative ids)
        self._by_order: dict[int, int] = {}  # order id -> hold id
        self._next_private = -1
        self._obligations: dict[tuple[int, Side], Reservation] = {}
        self._settled_heap: list[tuple[int, int]] = []  # (block, trade id) waiting for the cache
        self._settled_syncs: list[tuple[int, int]] = []  # (cache.syncs needed, trade id)
        # aggregates, kept incrementally (``validate`` recomputes them)
        self.cash_reserved: Counter[tuple[str, str]] = Counter()  # (wallet, cash token)
        self.notes_out: Counter[tuple[str, str]] = Counter()  # (wallet, token)
        self.notes_in: Counter[tuple[str, str]] = Counter()  # (wallet, token)
        self.buyers: dict[str, Counter[str]] = {}  # token -> wallet -> open buy reservations
        self.untracked_fills = 0  # fills whose participant/instrument we could not resolve
        # told (wallet, cash token, new total, settled) after every change of a wallet's reserved cash;
        # settled: the change releases settled trades (the cash left the wallet on chain)
        self.on_cash: Callable[[str, str, int, bool], None] | None = None

    # ------------------------------------------------------------ reserving (the gate)

    def reserve_order(self, seq: int, res: Reservation) -> Hold:
        """A new order's hold under its command seq; amounts follow price and remaining."""
        self._derive(res)
        return self._open(seq, res)

    def reserve_amend(self, seq: int, res: Reservation) -> Hold:
        """An amend's extra reservation (``res.cash``/``res.notes`` as given) under its command seq."""
        res.amend = True
        return self._open(seq, res)

    def release(self, hold: Hold) -> None:
        """Give a reservation back whose command never reached the sequencer. Idempotent."""
        res = self._holds.get(hold.hold_id)
        if res is not None and (res.order_id is None or res.amend):
            self._drop(hold.hold_id)

    def private_id(self) -> int:
        """A hold id that no command seq can take (negative): adopted orders, callers without a sequencer."""
        hold_id = self._next_private
        self._next_private -= 1
        return hold_id

    def _open(self, hold_id: int, res: Reservation) -> Hold:
        if hold_id in self._holds:
            raise UnknownHoldError(f"command {hold_id} already holds a reservation")
        self._holds[hold_id] = res
        self._contribute(res, +1)
        return Hold(hold_id=hold_id, participant=res.participant, symbol=res.symbol, side=res.side,
                    order_id=res.order_id if res.amend else None)

    # ------------------------------------------------------------ applying commands (post-trade)

    def on_command(self, seq: int, events: Iterable[Event]) -> None:
        """The engine applied command ``seq`` with these events (called once per command, in order)."""
        for event in events:
            if isinstance(event, OrderAccepted):
                res = self._holds.get(seq)
                if res is not None and res.order_id is None and not res.amend:
                    res.order_id = event.order_id
                    self._by_order[event.order_id] = seq
            elif isinstance(event, Fill):
                self._on_fill(event)
            elif isinstance(event, OrderCancelled | OrderExpired):
                self._close_order(event.order_id)
            elif isinstance(event, OrderAmended):
                self._on_amended(event)
        res = self._holds.get(seq)
        if res is not None and (res.order_id is None or res.amend):
            self._drop(seq)  # refused by the engine, or an amend's extra that the amend now replaced

    def adopt_order(self, order: OrderView) -> None:
        """Rebuild the hold of an order resting in the engine (after a restart), without checks."""
        rules = self._rules.get(order.symbol)
        p = self._participants.get(order.participant)
        if rules is None or p is None or p.wallet is None:
            raise ConfigError(f"order {order.order_id}: unknown instrument or participant without wallet")
        if order.order_id in self._by_order or order.remaining <= 0:
            return
        res = Reservation(participant=order.participant, symbol=order.symbol, side=order.side,
                          wallet=p.wallet.lower(), token=rules.token, cash_token=rules.cash_token,
                          price=order.price if order.side is Side.BUY else 0, remaining=order.remaining,
                          order_id=order.order_id)
        hold_id = self.private_id()
        self._derive(res)
        self._open(hold_id, res)
        self._by_order[order.order_id] = hold_id

    def _close_order(self, order_id: int) -> None:
        hold_id = self._by_order.get(order_id)
        if hold_id is not None:
            self._drop(hold_id)

    def _on_amended(self, event: OrderAmended) -> None:
        hold_id = self._by_order.get(event.order_id)
        if hold_id is None:
            return
        res = self._holds[hold_id]
        if res.side is Side.BUY:
            res.price = event.price
        res.remaining = event.remaining
        if res.remaining <= 0:
            self._drop(hold_id)
        else:
            self._reprice(res)

    def _on_fill(self, fill: Fill) -> None:
        for order_id, remaining in ((fill.maker_order_id, fill.maker_remaining),
                                    (fill.taker_order_id, fill.taker_remaining)):
            hold_id = self._by_order.get(order_id)
            if hold_id is not None:
                res = self._holds[hold_id]
                res.remaining = remaining
                if remaining <= 0:
                    self._close_order(order_id)
                else:
                    self._reprice(res)
        trade = Trade.from_fill(fill)
        self._add_obligation(fill.trade_id, fill.symbol, trade.buyer, Side.BUY, fill.price, fill.qty)
        self._add_obligation(fill.trade_id, fill.symbol, trade.seller, Side.SELL, fill.price, fill.qty)

    # ------------------------------------------------------------ obligations (settlement)

    def _add_obligation(self, trade_id: int, symbol: str, pid: str, side: Side, price: int, qty: int) -> None:
        rules = self._rules.get(symbol)
        p = self._participants.get(pid)
        if rules is None or p is None or p.wallet is None or (trade_id, side) in self._obligations:
            self.untracked_fills += (trade_id, side) not in self._obligations
            return
        res = Reservation(participant=pid, symbol=symbol, side=side, wallet=p.wallet.lower(), token=rules.token,
                          cash_token=rules.cash_token, notes=rules.token_amount(qty),
                          cash=rules.cash_amount(price, qty) if side is Side.BUY else 0)
        self._obligations[(trade_id, side)] = res
        self._contribute(res, +1)

    def adopt_trade(self, *, trade_id: int, symbol: str, price: int, qty: int, buyer: str, seller: str) -> None:
        """Rebuild the pending-settlement obligations of an unsettled trade (after a restart)."""
        self._add_obligation(trade_id, symbol, buyer, Side.BUY, price, qty)
        self._add_obligation(trade_id, symbol, seller, Side.SELL, price, qty)

    def on_settled(self, trade_id: int, *, block: int | None = None) -> None:
        """Settlement confirmed. The obligations stay reserved until the cache shows the transfers:
        with ``block``, until the cache has applied that block; without it, until two more watcher
        polls have completed (a poll already in flight may have read the chain before the transfer)."""
        if block is not None:
            if block <= self.cache.block:
                self._release_trade(trade_id)
            else:
                heapq.heappush(self._settled_heap, (block, trade_id))
        else:
            heapq.heappush(self._settled_syncs, (self.cache.syncs + 2, trade_id))

    def on_settlement_failed(self, trade_id: int) -> None:
        """Nothing moved on chain: the obligations are released at once."""
        self._release_trade(trade_id, settled=False)

    def _release_trade(self, trade_id: int, *, settled: bool = True) -> None:
        for side in (Side.BUY, Side.SELL):
            res = self._obligations.pop((trade_id, side), None)
            if res is not None:
                self._contribute(res, -1, settled=settled)

    def purge_settled(self) -> None:
        heap = self._settled_heap
        while heap and heap[0][0] <= self.cache.block:
            _, trade_id = heapq.heappop(heap)
            self._release_trade(trade_id)
        heap = self._settled_syncs
        while heap and heap[0][0] <= self.cache.syncs:
            _, trade_id = heapq.heappop(heap)
            self._release_trade(trade_id)

    # ------------------------------------------------------------ aggregates

    def _contribute(self, res: Reservation, sign: int, *, settled: bool = False) -> None:
        if res.side is Side.BUY:
            self.cash_reserved[(res.wallet, res.cash_token)] += sign * res.cash
            if self.on_cash is not None and res.cash:
                self.on_cash(res.wallet, res.cash_token, self.cash_reserved[(res.wallet, res.cash_token)], settled)
            self.notes_in[(res.wallet, res.token)] += sign * res.notes
            self.buyers.setdefault(res.token, Counter())[res.wallet] += sign
        else:
            self.notes_out[(res.wallet, res.token)] += sign * res.notes

    def _derive(self, res: Reservation) -> None:
        rules = self._rules[res.symbol]
        res.notes = rules.token_amount(res.remaining)
        res.cash = rules.cash_amount(res.price, res.remaining) if res.side is Side.BUY else 0

    def _reprice(self, res: Reservation) -> None:
        """Recompute an order hold's amounts from its price and remaining quantity."""
        self._contribute(res, -1)
        self._derive(res)
        self._contribute(res, +1)

    def _drop(self, hold_id: int) -> None:
        res = self._holds.pop(hold_id, None)
        if res is None:
            return
        self._contribute(res, -1)
        if res.order_id is not None and self._by_order.get(res.order_id) == hold_id:
            del self._by_order[res.order_id]

    # ------------------------------------------------------------ introspection

    def has_reservations(self, symbol: str) -> bool:
        return any(r.symbol == symbol for r in self._holds.values()) or any(
            r.symbol == symbol for r in self._obligations.values())

    def holds_of(self, participant: str, symbol: str) -> list[Reservation]:
        return [r for r in self._holds.values() if r.participant == participant and r.symbol == symbol]

    def obligations_of(self, participant: str, symbol: str) -> list[Reservation]:
        return [r for r in self._obligations.values() if r.participant == participant and r.symbol == symbol]

    def open_holds(self) -> int:
        return len(self._holds)

    def pending_obligations(self) -> int:
        return len(self._obligations)

    def validate(self) -> None:
        """Recompute every aggregate from the individual reservations; raise on any difference."""
        cash: Counter[tuple[str, str]] = Counter()
        out: Counter[tuple[str, str]] = Counter()
        inc: Counter[tuple[str, str]] = Counter()
        buyers: dict[str, Counter[str]] = {}
        for res in [*self._holds.values(), *self._obligations.values()]:
            if res.cash < 0 or res.notes < 0 or res.remaining < 0:
                raise InvariantError(f"negative reservation {res}")
            if res.side is Side.BUY:
                cash[(res.wallet, res.cash_token)] += res.cash
                inc[(res.wallet, res.token)] += res.notes
                buyers.setdefault(res.token, Counter())[res.wallet] += 1
            else:
                out[(res.wallet, res.token)] += res.notes
        for name, want, have in (("cash", cash, self.cash_reserved), ("notes out", out, self.notes_out),
                                 ("notes in", inc, self.notes_in)):
            if +want != +have or any(v < 0 for v in have.values()):
                raise InvariantError(f"{name} aggregate {dict(+have)} != recomputed {dict(+want)}")
        for token in set(buyers) | set(self.buyers):
            if +buyers.get(token, Counter()) != +self.buyers.get(token, Counter()):
                raise InvariantError(f"buyer counts of {token} differ")
        for order_id, hold_id in self._by_order.items():
            if self._holds[hold_id].order_id != order_id:
                raise InvariantError(f"order {order_id} -> hold {hold_id} mapping broken")


class LedgerAccess:
    """The ledger's entry points on the object that owns it (``compliance.Gatekeeper``)."""

    ledger: Ledger

    def release(self, hold: Hold) -> None:
        """Give back the hold of a command that never reached the sequencer. Idempotent."""
        self.ledger.release(hold)

    def on_command(self, seq: int, events: Iterable[Event]) -> None:
        """The engine applied command ``seq``: settle its hold and book its events (in command order)."""
        self.ledger.on_command(seq, events)

    def adopt_order(self, order: OrderView) -> None:
        self.ledger.adopt_order(order)

    def adopt_trade(self, *, trade_id: int, symbol: str, price: int, qty: int, buyer: str, seller: str) -> None:
        self.ledger.adopt_trade(trade_id=trade_id, symbol=symbol, price=price, qty=qty, buyer=buyer, seller=seller)

    def on_settled(self, trade_id: int, *, block: int | None = None) -> None:
        self.ledger.on_settled(trade_id, block=block)

    def on_settlement_failed(self, trade_id: int) -> None:
        self.ledger.on_settlement_failed(trade_id)

    def on_trade_finished(self, trade_id: int, *, block: int | None = None, failed: bool = False) -> None:
        """Settlement reached a terminal state. ``failed``: released at once; confirmed: see
        ``Ledger.on_settled`` (pass the confirmation ``block`` when known for the earliest exact release)."""
        if failed:
            self.ledger.on_settlement_failed(trade_id)
        else:
            self.ledger.on_settled(trade_id, block=block)


    def open_holds(self) -> int:
        return self.ledger.open_holds()

    def pending_obligations(self) -> int:
        return self.ledger.pending_obligations()

    @property
    def untracked_fills(self) -> int:
        return self.ledger.untracked_fills

    def reserved_cash(self, wallet: str, cash_token: str) -> int:
        self.ledger.purge_settled()
        return self.ledger.cash_reserved[(wallet.lower(), cash_token.lower())]

    def reserved_notes(self, wallet: str, token: str) -> int:
        """Notes reserved by open sells and unsettled sell trades."""
        self.ledger.purge_settled()
        return self.ledger.notes_out[(wallet.lower(), token.lower())]

    def incoming_notes(self, wallet: str, token: str) -> int:
        self.ledger.purge_settled()
        return self.ledger.notes_in[(wallet.lower(), token.lower())]

    def validate(self) -> None:
        self.ledger.validate()
