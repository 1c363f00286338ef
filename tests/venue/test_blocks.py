"""Negotiated block trades on the real core and the real gate: each side is checked and held like
a limit order, the mirror side prints one off-book trade of origin BLOCK, and every refusal has
its own code."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from engine import InstrumentStatus, NewOrder, Side, TradeOrigin
from market.codes import REGISTRY
from market.model import Rejection
from market.offbook import BlockState, BlockTrade, OffBookRefused
from tests.compliance.world import BUYER_WALLET, CASH, SELLER_WALLET, SYMBOL, TOKEN, World
from tests.venue.offbook_core import OffBook, off_book
from venue.listings import ListingRules

WORLD = World()
RULES = ListingRules(min_block_lots=10, block_confirm_s=60)


@pytest.fixture
async def desk() -> AsyncIterator[OffBook]:
    async with off_book(WORLD, RULES) as ob:
        yield ob


async def _side(ob: OffBook, who: str, side: Side, *, block_id: str = "b-1", price: int = 110, qty: int = 10,
                counterparty: str | None = None) -> BlockTrade:
    other = counterparty if counterparty is not None else ("seller" if who == "buyer" else "buyer")
    return await ob.core.blocks.submit(who, block_id=block_id, symbol=SYMBOL, side=side, price=price, qty=qty,
                                       counterparty=other)


async def test_both_sides_print_one_block_trade_off_the_book(desk: OffBook) -> None:
    core, gk = desk.core, desk.gate
    pending = await _side(desk, "seller", Side.SELL)
    assert pending.state is BlockState.PENDING and pending.submitted_by == ("seller",)
    assert gk.reserved_notes(SELLER_WALLET, TOKEN) == WORLD.need_notes(10)  # the first side is held
    matched = await _side(desk, "buyer", Side.BUY)
    assert matched.state is BlockState.MATCHED and matched.trade_id is not None
    [trade] = core.trades()
    assert (trade.origin, trade.buyer, trade.seller, trade.price, trade.qty) == (TradeOrigin.BLOCK, "buyer",
                                                                                 "seller", 110, 10)
    assert core.l2(SYMBOL).bids == () and core.l2(SYMBOL).asks == ()
    assert gk.open_holds() == 0 and gk.pending_obligations() == 2
    assert gk.reserved_cash(BUYER_WALLET, CASH) == WORLD.need_cash(10, 110)
    assert {(n.participant, n.block.state) for n in desk.notices if n.block is not None} == {
        ("buyer", BlockState.PENDING), ("seller", BlockState.PENDING),
        ("buyer", BlockState.MATCHED), ("seller", BlockState.MATCHED)}
    gk.validate()


async def test_a_lapsed_block_releases_its_hold(desk: OffBook) -> None:
    await _side(desk, "seller", Side.SELL)
    desk.clock.advance(61)
    desk.core.blocks.expire()
    assert desk.gate.open_holds() == 0
    assert desk.core.blocks.blocks_of("buyer")[0].state is BlockState.EXPIRED


async def test_a_halted_instrument_fails_the_block_and_releases_both_holds(desk: OffBook) -> None:
    await _side(desk, "seller", Side.SELL)
    await desk.core.set_status(SYMBOL, InstrumentStatus.HALTED, operator="test")
    with pytest.raises(OffBookRefused) as err:
        await _side(desk, "buyer", Side.BUY)
    assert err.value.code == "INSTRUMENT_HALTED"
    assert desk.core.blocks.blocks_of("seller")[0].state is BlockState.FAILED
    assert desk.gate.open_holds() == 0 and desk.core.trades() == []
    desk.gate.validate()


async def test_operators_cancel_a_pending_block(desk: OffBook) -> None:
    await _side(desk, "seller", Side.SELL)
    cancelled = desk.core.blocks.cancel_by_operator("b-1", "buyer", "seller")
    assert (cancelled.state, cancelled.reason) == (BlockState.CANCELLED, "OFF_BOOK_CANCELLED_BY_OPERATOR")
    assert desk.gate.open_holds() == 0


# ---------------------------------------------------------------- one example per refusal code

Case = Callable[[OffBook], Awaitable[object]]


async def _not_allowed(ob: OffBook) -> object:
    ob.core.reference.add_listing(ob.core.listing(SYMBOL), ListingRules())  # type: ignore[arg-type]
    return await _side(ob, "seller", Side.SELL)


async def _too_small(ob: OffBook) -> object:
    return await _side(ob, "seller", Side.SELL, qty=9)


async def _self_trade(ob: OffBook) -> object:
    return await _side(ob, "seller", Side.SELL, counterparty="seller")


async def _counterparty_unknown(ob: OffBook) -> object:
    return await _side(ob, "seller", Side.SELL, counterparty="nobody")


async def _mismatch(ob: OffBook) -> object:
    await _side(ob, "seller", Side.SELL, price=110)
    return await _side(ob, "buyer", Side.BUY, price=111)


async def _same_side_twice(ob: OffBook) -> object:
    await _side(ob, "seller", Side.SELL)
    return await _side(ob, "seller", Side.SELL)


async def _expired(ob: OffBook) -> object:
    await _side(ob, "seller", Side.SELL)
    ob.clock.advance(60)
    return await _side(ob, "buyer", Side.BUY)


async def _unknown(ob: OffBook) -> object:
    return ob.core.blocks.cancel("buyer", block_id="never", counterparty="seller")


async def _closed(ob: OffBook) -> object:
    await _side(ob, "seller", Side.SELL)
    await _side(ob, "buyer", Side.BUY)
    return await _side(ob, "seller", Side.SELL)  # the same id between the same two parties


async def _outside_band(ob: OffBook) -> object:
    return await _side(ob, "seller", Side.SELL, price=49)


async def _outside_collar(ob: OffBook) -> object:
    def collar(cmd: object) -> Rejection | None:
        assert isinstance(cmd, NewOrder)
        return Rejection(code="PRICE_OUTSIDE_NAV_COLLAR", message="outside") if cmd.price != 100 else None
    ob.core.pipeline.price_check = collar
    return await _side(ob, "seller", Side.SELL, price=110)


async def _unfunded(ob: OffBook) -> object:
    return await _side(ob, "buyer", Side.BUY, qty=10_000)


CASES: dict[str, Case] = {
    "BLOCK_NOT_ALLOWED": _not_allowed,
    "BLOCK_TOO_SMALL": _too_small,
    "BLOCK_SELF_TRADE": _self_trade,
    "BLOCK_COUNTERPARTY_UNKNOWN": _counterparty_unknown,
    "BLOCK_TERMS_MISMATCH": _mismatch,
    "BLOCK_ALREADY_SUBMITTED": _same_side_twice,
    "BLOCK_EXPIRED": _expired,
    "BLOCK_UNKNOWN": _unknown,
    "BLOCK_CLOSED": _closed,
    "PRICE_OUTSIDE_BAND": _outside_band,
    "PRICE_OUTSIDE_NAV_COLLAR": _outside_collar,
    "INSUFFICIENT_CASH": _unfunded,
}


def test_every_block_code_has_an_example() -> None:
    assert {name for name in REGISTRY if name.startswith("BLOCK_")} <= set(CASES)


@pytest.mark.parametrize("code", sorted(CASES))
async def test_refusal(code: str, desk: OffBook) -> None:
    before = 0
    with pytest.raises(OffBookRefused) as err:
        await CASES[code](desk)
    assert err.value.code == code and err.value.message
    assert len(desk.core.trades()) == before + (code == "BLOCK_CLOSED")  # only _closed printed (a valid first block)
    desk.gate.validate()


async def test_a_paused_intake_refuses_off_book_sides_too(desk: OffBook) -> None:
    desk.core.pipeline.intake = lambda: Rejection(code="STORE_BACKLOG", message="behind")
    with pytest.raises(OffBookRefused) as err:
        await _side(desk, "seller", Side.SELL)
    assert err.value.code == "STORE_BACKLOG" and desk.gate.open_holds() == 0


class _SignedModeOf:
    """``venue.signed``'s check as the pipeline sees it: ``who`` is in signed mode."""

    def __init__(self, who: str) -> None:
        self.who = who

    def check(self, cmd: object) -> Rejection | None:
        if isinstance(cmd, NewOrder) and cmd.participant == self.who and not cmd.attachment:
            return Rejection(code="SIGNED_ORDER_REQUIRED", message=f"participant {self.who!r} is in signed mode")
        return None

    async def verify(self, cmd: object) -> Rejection | None:
        return None

    def on_command(self, cmd: object, result: object) -> None:
        pass

    def after_command(self, result: object) -> None:
        pass


async def test_a_participant_in_signed_mode_cannot_trade_a_block(desk: OffBook) -> None:
    """A negotiated side carries no signed order, so the contract would refuse a signed-only wallet's
    trade at settlement: the venue refuses the side up front and holds nothing."""
    desk.core.pipeline.signed = _SignedModeOf("seller")
    with pytest.raises(OffBookRefused) as err:
        await _side(desk, "seller", Side.SELL)
    assert err.value.code == "SIGNED_ORDER_REQUIRED" and "block trades" in str(err.value)
    assert desk.gate.open_holds() == 0 and desk.core.trades() == []
