"""Requests for quotes on the real core and the real gate: quotes are firm and held (the
responder's funds are reserved while the quote lives), an accepted quote prints one off-book
trade of origin RFQ through the pipeline, and every refusal has its own code."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from engine import InstrumentStatus, Side, TradeOrigin
from market.codes import REGISTRY
from market.offbook import OffBookRefused, QuoteState, RfqState
from tests.compliance.world import BUYER_WALLET, CASH, SELLER_WALLET, SYMBOL, TOKEN, World
from tests.venue.offbook_core import OffBook, off_book
from venue.listings import ListingRules
from venue.rfq import MAX_OPEN_PER_REQUESTER

WORLD = World()
RULES = ListingRules(rfq_max_ttl_s=60)


@pytest.fixture
async def desk() -> AsyncIterator[OffBook]:
    async with off_book(WORLD, RULES) as ob:
        yield ob


def _request(ob: OffBook, who: str = "buyer", side: Side = Side.BUY, qty: int = 5, min_qty: int | None = None,
             ttl_s: float = 30) -> int:
    return ob.core.rfqs.request(who, symbol=SYMBOL, side=side, qty=qty, min_qty=min_qty, ttl_s=ttl_s).rfq_id


async def test_an_accepted_quote_trades_off_book_and_every_hold_is_released(desk: OffBook) -> None:
    core, gk = desk.core, desk.gate
    rfq_id = _request(desk)
    quote = core.rfqs.quote("seller", rfq_id, price=120, qty=5)
    assert gk.reserved_notes(SELLER_WALLET, TOKEN) == WORLD.need_notes(5)  # the quote is held
    filled = await core.rfqs.accept("buyer", rfq_id, quote.quote_id)
    assert filled.state is RfqState.FILLED and filled.trade_id is not None
    assert filled.quotes[0].state is QuoteState.ACCEPTED
    [trade] = core.trades()
    assert (trade.trade_id, trade.origin, trade.buyer, trade.seller, trade.price, trade.qty) == (
        filled.trade_id, TradeOrigin.RFQ, "buyer", "seller", 120, 5)
    book = core.l2(SYMBOL)
    assert book.bids == () and book.asks == ()  # printed outside the book
    assert gk.open_holds() == 0 and gk.pending_obligations() == 2  # holds became the trade's obligations
    assert gk.reserved_cash(BUYER_WALLET, CASH) == WORLD.need_cash(5, 120)
    assert core.rfqs.open_holds() == 0
    gk.validate()


async def test_the_request_goes_only_to_eligible_participants_and_never_to_the_requester(desk: OffBook) -> None:
    rfq_id = _request(desk)
    told = {(n.participant, n.event) for n in desk.notices if n.rfq is not None and n.rfq.rfq_id == rfq_id}
    assert told == {("seller", "rfq_new"), ("buyer", "rfq_state")}
    assert all(n.rfq is not None and n.rfq.responders == () for n in desk.notices)  # nobody sees who was asked
    assert desk.core.rfqs.all()[0].responders == ("seller",)  # operators do


async def test_expiry_releases_the_quote_hold(desk: OffBook) -> None:
    rfq_id = _request(desk, ttl_s=30)
    desk.core.rfqs.quote("seller", rfq_id, price=120, qty=5, ttl_s=5)
    assert desk.gate.open_holds() == 1
    desk.clock.advance(6)
    desk.core.rfqs.expire()
    assert desk.gate.open_holds() == 0 and desk.gate.reserved_notes(SELLER_WALLET, TOKEN) == 0
    assert desk.core.rfqs.rfq("buyer", rfq_id).quotes[0].state is QuoteState.EXPIRED
    desk.clock.advance(30)
    assert desk.core.rfqs.rfq("buyer", rfq_id).state is RfqState.EXPIRED


async def test_cancel_and_replacement_release_holds(desk: OffBook) -> None:
    rfq_id = _request(desk, min_qty=1)
    desk.core.rfqs.quote("seller", rfq_id, price=120, qty=5)
    desk.core.rfqs.quote("seller", rfq_id, price=119, qty=4)  # replaces the first
    assert desk.gate.open_holds() == 1 and desk.gate.reserved_notes(SELLER_WALLET, TOKEN) == WORLD.need_notes(4)
    states = [q.state for q in desk.core.rfqs.rfq("buyer", rfq_id).quotes]
    assert states == [QuoteState.CANCELLED, QuoteState.LIVE]
    desk.core.rfqs.cancel("buyer", rfq_id)
    assert desk.gate.open_holds() == 0


async def test_an_engine_refusal_fails_the_quote_and_keeps_the_request_open(desk: OffBook) -> None:
    rfq_id = _request(desk)
    quote = desk.core.rfqs.quote("seller", rfq_id, price=120, qty=5)
    await desk.core.set_status(SYMBOL, InstrumentStatus.HALTED, operator="test")
    with pytest.raises(OffBookRefused) as err:
        await desk.core.rfqs.accept("buyer", rfq_id, quote.quote_id)
    assert err.value.code == "INSTRUMENT_HALTED"
    rfq = desk.core.rfqs.rfq("buyer", rfq_id)
    assert rfq.state is RfqState.OPEN and rfq.quotes[0].state is QuoteState.FAILED
    assert desk.gate.open_holds() == 0 and desk.core.trades() == []
    desk.gate.validate()


# ---------------------------------------------------------------- one example per refusal code

Case = Callable[[OffBook], Awaitable[object]]


async def _not_allowed(ob: OffBook) -> object:
    ob.core.reference.add_listing(ob.core.listing(SYMBOL), ListingRules(rfq_responders="none"))  # type: ignore[arg-type]
    return _request(ob)


async def _no_responders(ob: OffBook) -> object:
    ob.core.reference.add_listing(ob.core.listing(SYMBOL),  # type: ignore[arg-type]
                                  ListingRules(rfq_responders="market_makers", market_makers=("buyer",)))
    return _request(ob)


async def _min_qty(ob: OffBook) -> object:
    return _request(ob, qty=5, min_qty=6)


async def _ttl(ob: OffBook) -> object:
    return _request(ob, ttl_s=61)


async def _too_many(ob: OffBook) -> object:
    for _ in range(MAX_OPEN_PER_REQUESTER + 1):
        _request(ob)
    return None


async def _unknown(ob: OffBook) -> object:
    return ob.core.rfqs.quote("seller", 424242, price=120, qty=5)


async def _not_open(ob: OffBook) -> object:
    rfq_id = _request(ob)
    ob.core.rfqs.cancel("buyer", rfq_id)
    return ob.core.rfqs.quote("seller", rfq_id, price=120, qty=5)


async def _expired(ob: OffBook) -> object:
    rfq_id = _request(ob, ttl_s=5)
    ob.clock.advance(5)
    return ob.core.rfqs.quote("seller", rfq_id, price=120, qty=5)


async def _own(ob: OffBook) -> object:
    rfq_id = _request(ob)
    return ob.core.rfqs.quote("buyer", rfq_id, price=120, qty=5)


async def _quote_size(ob: OffBook) -> object:
    rfq_id = _request(ob, qty=5, min_qty=3)
    return ob.core.rfqs.quote("seller", rfq_id, price=120, qty=2)


async def _quote_unknown(ob: OffBook) -> object:
    rfq_id = _request(ob)
    return await ob.core.rfqs.accept("buyer", rfq_id, 1)


async def _quote_expired(ob: OffBook) -> object:
    rfq_id = _request(ob, ttl_s=30)
    quote = ob.core.rfqs.quote("seller", rfq_id, price=120, qty=5, ttl_s=1)
    ob.clock.advance(2)
    return await ob.core.rfqs.accept("buyer", rfq_id, quote.quote_id)


async def _not_requester(ob: OffBook) -> object:
    rfq_id = _request(ob)
    return ob.core.rfqs.cancel("seller", rfq_id)


async def _outside_band(ob: OffBook) -> object:
    rfq_id = _request(ob)
    return ob.core.rfqs.quote("seller", rfq_id, price=201, qty=5)


async def _unfunded_quote(ob: OffBook) -> object:
    rfq_id = _request(ob, qty=100)
    return ob.core.rfqs.quote("seller", rfq_id, price=120, qty=100)  # the seller holds 50 lots


async def _suspended_requester(ob: OffBook) -> object:
    ob.gate.set_participant_status("buyer", "suspended")
    return _request(ob)


async def _unknown_instrument(ob: OffBook) -> object:
    return ob.core.rfqs.request("buyer", symbol="NOPE", side=Side.BUY, qty=1, ttl_s=5)


CASES: dict[str, Case] = {
    "RFQ_NOT_ALLOWED": _not_allowed,
    "RFQ_NO_RESPONDERS": _no_responders,
    "RFQ_MIN_QTY_INVALID": _min_qty,
    "RFQ_EXPIRY_INVALID": _ttl,
    "RFQ_TOO_MANY_OPEN": _too_many,
    "RFQ_UNKNOWN": _unknown,
    "RFQ_NOT_OPEN": _not_open,
    "RFQ_EXPIRED": _expired,
    "RFQ_OWN_REQUEST": _own,
    "RFQ_QUOTE_SIZE": _quote_size,
    "RFQ_QUOTE_UNKNOWN": _quote_unknown,
    "RFQ_QUOTE_EXPIRED": _quote_expired,
    "RFQ_NOT_REQUESTER": _not_requester,
    "PRICE_OUTSIDE_BAND": _outside_band,
    "INSUFFICIENT_NOTES": _unfunded_quote,
    "PARTICIPANT_SUSPENDED": _suspended_requester,
    "UNKNOWN_INSTRUMENT": _unknown_instrument,
}


def test_every_rfq_code_has_an_example() -> None:
    rfq_codes = {name for name in REGISTRY if name.startswith("RFQ_")}
    assert rfq_codes <= set(CASES)


@pytest.mark.parametrize("code", sorted(CASES))
async def test_refusal(code: str, desk: OffBook) -> None:
    with pytest.raises(OffBookRefused) as err:
        await CASES[code](desk)
    assert err.value.code == code and err.value.message
    assert desk.core.trades() == []
    desk.gate.validate()
