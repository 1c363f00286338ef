"""Settlement states as the venue shows them (issue 12, items 1, 10, 11): each transition once,
nobody told before the state is stored, FINAL after CONFIRMED, a reorg's PENDING, restart recovery."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from engine import Side
from market.model import SettlementNotice, SettlementState, Trade
from tests.venue.conftest import RunningVenue
from tests.venue.test_core import LISTING, RecordingGatekeeper, make_core, order
from venue.demo import SYMBOL
from venue.trades import TradeBook, allowed
from venueclient import VenueClient

S = SettlementState


class AdoptingGatekeeper(RecordingGatekeeper):
    def adopt_trade(self, *, trade_id: int, **kw: object) -> None:
        self.calls.append(("adopt", trade_id))


class HeldRecorder:
    """A store that commits only when told to (``commit``), in order."""

    def __init__(self) -> None:
        self.queued: list[tuple[SettlementNotice, Callable[[], None] | None]] = []
        self.stored: list[tuple[int, S]] = []

    def record_settlement(self, notice: SettlementNotice, then: Callable[[], None] | None = None) -> None:
        self.queued.append((notice, then))

    def commit(self) -> None:
        queued, self.queued = self.queued, []
        for notice, then in queued:
            self.stored.append((notice.trade_id, notice.state))
            if then is not None:
                then()


async def test_nobody_is_told_a_settlement_state_before_it_is_stored() -> None:
    """Item 1: the buyer was told "failed" while the store still said "pending"."""
    gk = RecordingGatekeeper(refuse_trades=True)
    core, _ = make_core(gk)
    recorder = HeldRecorder()
    core.trades_book._recorder = recorder
    seen: list[tuple[int, S]] = []
    core.subscribe_settlements(lambda n: seen.append((n.trade_id, n.state)))
    await core.submit("mm", order("mm", Side.SELL, 1, 100))
    await core.submit("inv", order("inv", Side.BUY, 1, 100))
    assert seen == []  # decided (failed) but not stored yet: nobody knows
    trade = core.trade(1)
    assert trade is not None and trade.settlement is S.PENDING  # reads show what is stored
    recorder.commit()
    assert recorder.stored == [(1, S.PENDING), (1, S.FAILED)]
    assert seen == [(1, S.PENDING), (1, S.FAILED)]
    assert core.settlement_counts()["failed"] == 1


async def test_each_settlement_state_is_published_once() -> None:
    """Item 11: the settlement service's PENDING repeated the trade book's own PENDING."""
    core, _ = make_core()
    seen: list[S] = []
    core.subscribe_settlements(lambda n: seen.append(n.state))
    await core.submit("mm", order("mm", Side.SELL, 1, 100))
    await core.submit("inv", order("inv", Side.BUY, 1, 100))
    for state in (S.PENDING, S.SUBMITTED, S.SUBMITTED, S.CONFIRMED, S.CONFIRMED):
        core.on_settlement_update(1, state, tx_hash="0xab")
    assert seen == [S.PENDING, S.SUBMITTED, S.CONFIRMED]


async def test_final_follows_confirmed_and_a_reorg_puts_the_trade_back_to_pending() -> None:
    """Item 10: with finality tracked, CONFIRMED is not the end; FINAL and a reorg's PENDING land."""
    gk = AdoptingGatekeeper()
    core, _ = make_core(gk)
    core.trades_book.finality = True
    seen: list[S] = []
    core.subscribe_settlements(lambda n: seen.append(n.state))
    await core.submit("mm", order("mm", Side.SELL, 1, 100))
    await core.submit("inv", order("inv", Side.BUY, 1, 100))
    core.on_settlement_update(1, S.SUBMITTED, tx_hash="0xab")
    core.on_settlement_update(1, S.CONFIRMED, block=7)
    core.on_settlement_update(1, S.PENDING, reason="reorged away")
    core.on_settlement_update(1, S.SUBMITTED, tx_hash="0xcd")
    core.on_settlement_update(1, S.CONFIRMED, block=9)
    core.on_settlement_update(1, S.FINAL, block=9)
    core.on_settlement_update(1, S.PENDING)  # after FINAL nothing moves
    assert seen == [S.PENDING, S.SUBMITTED, S.CONFIRMED, S.PENDING, S.SUBMITTED, S.CONFIRMED, S.FINAL]
    assert core.settlement_counts() == {"pending": 0, "submitted": 0, "confirmed": 0, "failed": 0, "final": 1}
    assert [c for c in gk.calls if c[0] in ("finished", "adopt")] == [
        ("finished", 1, False), ("adopt", 1), ("finished", 1, False)]  # the reorg put the obligations back
    [notice] = core.settlements()
    assert (notice.state, notice.block, notice.tx_hash) == (S.FINAL, 9, "0xcd")


def test_the_transition_table() -> None:
    assert not allowed(S.FAILED, S.CONFIRMED, finality=True)
    assert not allowed(S.FINAL, S.PENDING, finality=True)
    assert not allowed(S.CONFIRMED, S.FINAL, finality=False)  # without finality CONFIRMED is the last word
    assert not allowed(S.PENDING, S.FINAL, finality=True)
    assert allowed(S.SUBMITTED, S.FAILED, finality=True)


class Parties:
    def listing(self, symbol: str) -> object:
        return LISTING

    def wallet_of(self, participant: str) -> str:
        return "0x" + ("33" if participant == "inv" else "44") * 20


def _trade(trade_id: int, state: S) -> Trade:
    return Trade(trade_id=trade_id, symbol=LISTING.symbol, price=100, qty=1, buyer="inv", seller="mm",
                 buy_order_id=1, sell_order_id=2, aggressor=Side.BUY, ts=1, settlement=state)


@pytest.mark.parametrize("finality", [False, True])
def test_restart_never_takes_up_a_decided_trade_again(finality: bool) -> None:
    """Item 1: a stored FAILED (decided by the venue, never on chain) or FINAL trade is not resubmitted;
    with finality tracked a CONFIRMED trade goes to recovery so it can become FINAL."""
    book = TradeBook(Parties(), finality=finality)  # type: ignore[arg-type]
    states = [S.PENDING, S.SUBMITTED, S.CONFIRMED, S.FAILED, S.FINAL]
    resend = book.restore_unsettled(_trade(i + 1, s) for i, s in enumerate(states))
    expected = [1, 2, 3] if finality else [1, 2]
    assert [t.trade_id for t in resend] == expected


@pytest.mark.parametrize("running", ["embedded"], indirect=True)
async def test_a_settlements_subscriber_sees_each_transition_once(running: RunningVenue) -> None:
    """Item 11 over the websocket: the market maker received pending, pending, submitted, confirmed."""
    secret = running.keys
    async with VenueClient(running.url, secret["mm-1"]["key_id"], secret["mm-1"]["private_key"]) as mm, \
            VenueClient(running.url, secret["inv-1"]["key_id"], secret["inv-1"]["private_key"]) as inv:
        stream = await mm.connect(cancel_on_disconnect=True)
        await stream.subscribe("settlements")
        await stream.place(SYMBOL, "sell", 2, "45010.00", post_only=True)
        buy = await inv.place(SYMBOL, "buy", 2, "45010.00", tif="ioc")
        [fill] = buy["fills"]
        states: list[str] = []
        while not states or states[-1] not in ("confirmed", "failed", "final"):
            msg = await stream.next_event(timeout=30, where=lambda m: m.get("channel") == "settlements")
            if msg["trade_id"] == fill["trade_id"]:
                states.append(msg["state"])
        await stream.close()
    assert states == ["pending", "submitted", "confirmed"]
