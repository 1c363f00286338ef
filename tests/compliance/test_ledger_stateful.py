"""Hypothesis state machine over the reservation ledger: random orders, engine outcomes, fills,
cancels, amends and settlements. The ledger must always equal a simple model, never go negative,
never reserve more than the cached balances/allowances, and drain to zero when everything ends."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from compliance import Gatekeeper, ReasonCode
from engine import OrderView, ResultCode, Side, TimeInForce
from tests.compliance.events import EventMaker
from tests.compliance.world import BUYER_WALLET, CASH, SELLER_WALLET, SETTLE, SYMBOL, TOKEN, World

WALLETS = {"buyer": BUYER_WALLET, "seller": SELLER_WALLET}
LOT, TICK = 3, 7
CASH_EACH, NOTES_EACH = 7 * 40 * 60, 3 * 60  # enough for some orders, not for all


@dataclass
class _Order:
    participant: str
    side: Side
    price: int
    qty: int
    remaining: int


@dataclass
class _Trade:
    buyer: str
    seller: str
    price: int
    qty: int
    settled_block: int | None = None  # confirmed in this block, cache not there yet
    settled_syncs: int | None = None  # confirmed without a block: released after this many cache syncs

    @property
    def open(self) -> bool:
        return self.settled_block is None and self.settled_syncs is None


class LedgerMachine(RuleBasedStateMachine):
    gk: Gatekeeper

    @initialize()
    def setup(self) -> None:
        world = World(lot=LOT, tick=TICK, qty=1, price=1, buyer_cash=CASH_EACH, buyer_allowance=CASH_EACH,
                      seller_notes=NOTES_EACH, seller_note_allowance=NOTES_EACH)
        self.gk, _ = world.build()
        cache = self.gk.cache
        # both participants can trade both sides
        cache.set_balance(CASH, SELLER_WALLET, CASH_EACH // 2)
        cache.set_allowance(CASH, SELLER_WALLET, SETTLE, CASH_EACH)
        cache.set_balance(TOKEN, BUYER_WALLET, NOTES_EACH // 2)
        cache.set_allowance(TOKEN, BUYER_WALLET, SETTLE, NOTES_EACH // 3)
        self.ev = EventMaker()
        self.next_order = 1
        self.orders: dict[int, _Order] = {}
        self.trades: dict[int, _Trade] = {}
        self.next_seq = 1

    def _seq(self) -> int:
        """The next command seq, as the sequencer would give it."""
        seq, self.next_seq = self.next_seq, self.next_seq + 1
        return seq

    # ---------------------------------------------------------------- rules

    @rule(who=st.sampled_from(["buyer", "seller"]), side=st.sampled_from([Side.BUY, Side.SELL]),
          qty=st.integers(1, 25), price=st.integers(1, 60), outcome=st.sampled_from(["bind", "auto", "reject"]))
    def place(self, who: str, side: Side, qty: int, price: int, outcome: str) -> None:
        seq = self._seq()
        d = self.gk.check_new_order(participant=who, symbol=SYMBOL, side=side, qty=qty, price=price, now_ts=0,
                                    seq=seq)
        if not d.ok:
            assert d.code in (ReasonCode.INSUFFICIENT_CASH, ReasonCode.INSUFFICIENT_ALLOWANCE,
                              ReasonCode.INSUFFICIENT_NOTES, ReasonCode.INSUFFICIENT_NOTE_ALLOWANCE)
            return
        assert d.hold is not None
        if outcome == "reject":
            if price % 2:  # the engine refused it, or it never reached the sequencer
                self.gk.on_command(seq, [self.ev.rejected(who, None, ResultCode.PRICE_OUTSIDE_BAND)])
            else:
                self.gk.release(d.hold)
            return
        oid = self.next_order
        self.next_order += 1
        self.gk.on_command(seq, [self.ev.accepted(oid, who, side, qty, price)])
        if outcome == "bind":
            self.gk.release(d.hold)  # a late release of a bound hold changes nothing
        self.orders[oid] = _Order(who, side, price, qty, qty)

    @precondition(lambda self: any(o.side is Side.BUY for o in self.orders.values())
                  and any(o.side is Side.SELL for o in self.orders.values()))
    @rule(data=st.data())
    def fill(self, data: st.DataObject) -> None:
        buys = sorted(k for k, o in self.orders.items() if o.side is Side.BUY)
        sells = sorted(k for k, o in self.orders.items() if o.side is Side.SELL)
        b, s = data.draw(st.sampled_from(buys)), data.draw(st.sampled_from(sells))
        bo, so = self.orders[b], self.orders[s]
        qty = data.draw(st.integers(1, min(bo.remaining, so.remaining)))
        price = data.draw(st.integers(1, bo.price))  # never above the buyer's limit
        buy_is_maker = data.draw(st.booleans())
        bo.remaining -= qty
        so.remaining -= qty
        maker, taker = ((b, bo), (s, so)) if buy_is_maker else ((s, so), (b, bo))
        fill = self.ev.fill(maker=(maker[0], maker[1].participant, maker[1].remaining),
                            taker=(taker[0], taker[1].participant, taker[1].remaining),
                            aggressor=taker[1].side, price=price, qty=qty)
        self.gk.on_command(self._seq(), [fill])
        self.trades[fill.trade_id] = _Trade(bo.participant, so.participant, price, qty)
        for k in (b, s):
            if self.orders[k].remaining == 0:
                del self.orders[k]

    @precondition(lambda self: bool(self.orders))
    @rule(data=st.data(), expire=st.booleans())
    def cancel(self, data: st.DataObject, expire: bool) -> None:
        oid = data.draw(st.sampled_from(sorted(self.orders)))
        o = self.orders.pop(oid)
        make = self.ev.expired if expire else self.ev.cancelled
        self.gk.on_command(self._seq(), [make(oid, o.participant, o.side, o.remaining)])

    @precondition(lambda self: bool(self.orders))
    @rule(data=st.data(), engine_accepts=st.booleans(), bind_first=st.booleans())
    def amend(self, data: st.DataObject, engine_accepts: bool, bind_first: bool) -> None:
        oid = data.draw(st.sampled_from(sorted(self.orders)))
        o = self.orders[oid]
        filled = o.qty - o.remaining
        new_qty = data.draw(st.integers(filled + 1, filled + 30))
        new_price = data.draw(st.integers(1, 60))
        view = OrderView(order_id=oid, client_order_id="", participant=o.participant, session="", symbol=SYMBOL,
                         side=o.side, price=o.price, qty=o.qty, remaining=o.remaining, tif=TimeInForce.GTC,
                         expire_ts=None, accepted_ts=0)
        seq = self._seq()
        d = self.gk.check_amend(participant=o.participant, order=view, new_price=new_price, new_qty=new_qty,
                                now_ts=0, seq=seq)
        if not d.ok:
            return
        if not engine_accepts:
            if d.hold is not None:
                if bind_first:
                    self.gk.on_command(seq, [self.ev.rejected(o.participant, oid, ResultCode.PRICE_OUTSIDE_BAND)])
                self.gk.release(d.hold)
            return
        o.qty, o.price, o.remaining = new_qty, new_price, new_qty - filled
        event = self.ev.amended(oid, o.participant, o.side, new_price, new_qty, o.remaining)
        self.gk.on_command(seq, [event])
        if d.hold is not None and not bind_first:
            self.gk.release(d.hold)  # harmless after its command

    @precondition(lambda self: any(t.open for t in self.trades.values()))
    @rule(data=st.data(), how=st.sampled_from(["failed", "finished_failed", "block", "no_block", "seen_block"]))
    def settle(self, data: st.DataObject, how: str) -> None:
        tid = data.draw(st.sampled_from(sorted(k for k, t in self.trades.items() if t.open)))
        cache = self.gk.cache
        if how == "failed":
            self.gk.on_settlement_failed(tid)
            del self.trades[tid]
        elif how == "finished_failed":
            self.gk.on_trade_finished(tid, failed=True)
            del self.trades[tid]
        elif how == "seen_block":
            self.gk.on_trade_finished(tid, block=cache.block)
            del self.trades[tid]
        elif how == "block":
            block = cache.block + data.draw(st.integers(1, 3))
            self.gk.on_trade_finished(tid, block=block)
            self.trades[tid].settled_block = block
        else:
            self.gk.on_trade_finished(tid)
            self.trades[tid].settled_syncs = cache.syncs + 2

    @rule(new_block=st.booleans())
    def watcher_polls(self, new_block: bool) -> None:
        cache = self.gk.cache
        cache.mark_synced(cache.block + int(new_block), 0)
        done = [k for k, t in self.trades.items()
                if (t.settled_block is not None and t.settled_block <= cache.block)
                or (t.settled_syncs is not None and t.settled_syncs <= cache.syncs)]
        for tid in done:
            del self.trades[tid]

    # ---------------------------------------------------------------- invariants

    @invariant()
    def ledger_matches_the_model(self) -> None:
        gk = self.gk
        gk.validate()
        assert gk.open_holds() == len(self.orders)
        for who, wallet in WALLETS.items():
            cash = sum(o.price * TICK * o.remaining for o in self.orders.values()
                       if o.participant == who and o.side is Side.BUY)
            cash += sum(t.price * TICK * t.qty for t in self.trades.values() if t.buyer == who)
            out = sum(LOT * o.remaining for o in self.orders.values() if o.participant == who and o.side is Side.SELL)
            out += sum(LOT * t.qty for t in self.trades.values() if t.seller == who)
            inc = sum(LOT * o.remaining for o in self.orders.values() if o.participant == who and o.side is Side.BUY)
            inc += sum(LOT * t.qty for t in self.trades.values() if t.buyer == who)
            assert gk.reserved_cash(wallet, CASH) == cash
            assert gk.reserved_notes(wallet, TOKEN) == out
            assert gk.incoming_notes(wallet, TOKEN) == inc
            c = gk.cache
            assert 0 <= cash <= min(c.balance(CASH, wallet) or 0, c.allowance(CASH, wallet, SETTLE) or 0)
            free_notes = (c.balance(TOKEN, wallet) or 0) - (c.frozen_tokens(TOKEN, wallet) or 0)
            assert 0 <= out <= min(free_notes, c.allowance(TOKEN, wallet, SETTLE) or 0)

    def teardown(self) -> None:
        if not hasattr(self, "gk"):
            return
        # everything ends: the ledger drains to exactly zero and full capacity is back
        for oid, o in list(self.orders.items()):
            self.gk.on_command(self._seq(), [self.ev.cancelled(oid, o.participant, o.side, o.remaining)])
        for tid in list(self.trades):
            self.gk.on_settlement_failed(tid)
        self.gk.validate()
        assert self.gk.open_holds() == 0 and self.gk.pending_obligations() == 0
        for wallet in WALLETS.values():
            assert self.gk.reserved_cash(wallet, CASH) == 0
            assert self.gk.reserved_notes(wallet, TOKEN) == 0
            assert self.gk.incoming_notes(wallet, TOKEN) == 0
        full = self.gk.check_new_order(participant="buyer", symbol=SYMBOL, side=Side.BUY, qty=1,
                                       price=CASH_EACH // TICK, now_ts=0)
        assert full.ok


LedgerMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
TestLedger = LedgerMachine.TestCase
