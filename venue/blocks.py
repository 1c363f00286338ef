"""Negotiated (pre-arranged) block trades: two participants who agreed a trade off-venue each
submit their side, signed with their own API key, under a block id they share; the venue checks
both and prints one ``Cross`` (origin BLOCK) without touching the book.

    submit(participant, block_id, symbol, side, price, qty, counterparty)
        the listing must take blocks (``min_block_lots`` set) and ``qty`` be at least that size;
        the price inside the instrument's band and its NAV collar; the counterparty another known
        participant. Each side passes the same checks as a limit order (venue guards, collar,
        eligibility, funding) and its funds stay HELD until the block prints or lapses.
        The first side opens the block (PENDING) and the counterparty has ``block_confirm_s``
        to submit the mirror side: same symbol, price and quantity, opposite side, naming the
        first as counterparty. Then the pipeline journals the ``Cross``; post-trade books it as
        obligations and releases both holds; it settles by DvP like every trade.
    cancel(participant, block_id, counterparty)
        either party withdraws a pending block (its hold is released).

A block is named by its id AND its two parties, so nobody else can take or squat an id two
participants agreed on. State is in memory (``venue.offbook``: a crash is an expiry).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from compliance.model import Hold
from engine import Cross, Side, TradeOrigin
from market.offbook import BlockState, BlockTrade, OffBookNotice
from venue.offbook import (
    CrossPath,
    Directory,
    OffBookRefused,
    check_terms,
    listing_or_refuse,
    refused_by_engine,
    trade_id_of,
)
from venue.trades import Fanout

_KEEP_CLOSED = 1_000
_NS = 1_000_000_000

_Key = tuple[str, str, str]  # block id, the two parties in sorted order


@dataclass(slots=True)
class _Block:
    block_id: str
    symbol: str
    price: int
    qty: int
    buyer: str
    seller: str
    submitted_by: list[str]
    ts: int
    expire_ts: int
    holds: list[Hold | None]
    state: BlockState = BlockState.PENDING
    trade_id: int | None = None
    reason: str | None = None

    def view(self) -> BlockTrade:
        return BlockTrade(block_id=self.block_id, symbol=self.symbol, price=self.price, qty=self.qty,
                          buyer=self.buyer, seller=self.seller, submitted_by=tuple(self.submitted_by), ts=self.ts,
                          expire_ts=self.expire_ts, state=self.state, trade_id=self.trade_id, reason=self.reason)


def _key(block_id: str, a: str, b: str) -> _Key:
    first, second = sorted((a, b))
    return block_id, first, second


class BlockDesk:
    def __init__(self, directory: Directory, pipeline: CrossPath, *, clock: Callable[[], int] = time.time_ns) -> None:
        self._directory = directory
        self._pipeline = pipeline
        self._clock = clock
        self._blocks: dict[_Key, _Block] = {}
        self._pending: dict[_Key, _Block] = {}  # what expiry scans
        self._closed: deque[_Key] = deque()
        self.notices: Fanout[OffBookNotice] = Fanout()

    async def submit(self, participant: str, *, block_id: str, symbol: str, side: Side, price: int, qty: int,
                     counterparty: str) -> BlockTrade:
        now = self.expire()
        listing = listing_or_refuse(self._directory, symbol)
        rules = self._directory.rules(symbol)
        if rules.min_block_lots is None:
            raise OffBookRefused("BLOCK_NOT_ALLOWED", f"{symbol} does not take negotiated block trades")
        check_terms(listing, price, qty)
        if qty < rules.min_block_lots:
            raise OffBookRefused("BLOCK_TOO_SMALL", f"{qty} lots is below the minimum block of "
                                                    f"{rules.min_block_lots} lots for {symbol}")
        if counterparty == participant:
            raise OffBookRefused("BLOCK_SELF_TRADE")
        if counterparty not in self._directory.participant_ids():
            raise OffBookRefused("BLOCK_COUNTERPARTY_UNKNOWN", f"no participant {counterparty!r} with a wallet")
        key = _key(block_id, participant, counterparty)
        block = self._blocks.get(key)
        if block is None:
            return self._open(key, participant, block_id=block_id, symbol=symbol, side=side, price=price, qty=qty,
                              counterparty=counterparty, now=now, confirm_s=rules.block_confirm_s)
        if block.state is BlockState.EXPIRED:
            raise OffBookRefused("BLOCK_EXPIRED", f"block {block_id!r} lapsed before both sides confirmed it")
        if block.state is not BlockState.PENDING:
            raise OffBookRefused("BLOCK_CLOSED", f"block {block_id!r} with {counterparty} is {block.state.value}")
        if participant in block.submitted_by:
            raise OffBookRefused("BLOCK_ALREADY_SUBMITTED", f"you already submitted block {block_id!r}")
        differences = [name for name, mine, theirs in (
            ("symbol", symbol, block.symbol), ("price", price, block.price), ("qty", qty, block.qty),
            ("side", participant, block.buyer if side is Side.BUY else block.seller)) if mine != theirs]
        if differences:
            raise OffBookRefused("BLOCK_TERMS_MISMATCH", f"block {block_id!r}: {', '.join(differences)} differ from "
                                                         f"{counterparty}'s side")
        return await self._match(block, participant, side)

    def cancel(self, participant: str, *, block_id: str, counterparty: str) -> BlockTrade:
        self.expire()
        block = self._blocks.get(_key(block_id, participant, counterparty))
        if block is None or block.state is not BlockState.PENDING:
            raise OffBookRefused("BLOCK_UNKNOWN", f"no pending block {block_id!r} between you and {counterparty}")
        self._close(block, BlockState.CANCELLED)
        return block.view()

    def cancel_by_operator(self, block_id: str, buyer: str, seller: str) -> BlockTrade:
        self.expire()
        block = self._blocks.get(_key(block_id, buyer, seller))
        if block is None or block.state is not BlockState.PENDING:
            raise OffBookRefused("BLOCK_UNKNOWN", f"no pending block {block_id!r} between {buyer} and {seller}")
        self._close(block, BlockState.CANCELLED, reason="OFF_BOOK_CANCELLED_BY_OPERATOR")
        return block.view()

    # ------------------------------------------------------------ reads

    def subscribe(self, listener: Callable[[OffBookNotice], None]) -> Callable[[], None]:
        """Every change, addressed to one participant (its private ``rfq`` / ``blocks`` channel)."""
        return self.notices.add(listener)

    def blocks_of(self, participant: str) -> list[BlockTrade]:
        self.expire()
        return [b.view() for b in reversed(self._blocks.values()) if participant in (b.buyer, b.seller)]

    def all(self, limit: int = 200) -> list[BlockTrade]:
        self.expire()
        return [b.view() for b in itertools.islice(reversed(self._blocks.values()), limit)]

    def open_holds(self) -> int:
        return sum(1 for b in self._pending.values() for h in b.holds if h is not None)

    # ------------------------------------------------------------ expiry

    def expire(self) -> int:
        now = self._clock()
        for block in list(self._pending.values()):
            if len(block.submitted_by) < 2 and block.expire_ts <= now:
                self._close(block, BlockState.EXPIRED)
        return now

    async def run(self, stop: asyncio.Event, *, interval_s: float = 0.25) -> None:
        while not stop.is_set():
            self.expire()
            try:
                await asyncio.wait_for(stop.wait(), interval_s)
            except TimeoutError:
                continue

    # ------------------------------------------------------------ internals

    def _open(self, key: _Key, participant: str, *, block_id: str, symbol: str, side: Side, price: int, qty: int,
              counterparty: str, now: int, confirm_s: int) -> BlockTrade:
        refusal, hold = self._pipeline.check_side(participant=participant, symbol=symbol, side=side, qty=qty,
                                                  price=price)
        if refusal is not None:
            raise OffBookRefused.of(refusal)
        buyer, seller = (participant, counterparty) if side is Side.BUY else (counterparty, participant)
        block = _Block(block_id=block_id, symbol=symbol, price=price, qty=qty, buyer=buyer, seller=seller,
                       submitted_by=[participant], ts=now, expire_ts=now + confirm_s * _NS, holds=[hold])
        self._blocks[key] = block
        self._pending[key] = block
        self._tell(block)
        return block.view()

    async def _match(self, block: _Block, participant: str, side: Side) -> BlockTrade:
        refusal, hold = self._pipeline.check_side(participant=participant, symbol=block.symbol, side=side,
                                                  qty=block.qty, price=block.price)
        if refusal is not None:
            raise OffBookRefused.of(refusal)  # the block stays pending: the side may fix its funding and retry
        block.submitted_by.append(participant)  # from here no expiry: the cross is on its way
        holds, block.holds = [*block.holds, hold], []
        cross = Cross(ts=0, symbol=block.symbol, buyer=block.buyer, seller=block.seller, price=block.price,
                      qty=block.qty, origin=TradeOrigin.BLOCK, buy_client_order_id=f"block-{block.block_id}",
                      sell_client_order_id=f"block-{block.block_id}")
        try:
            result = await self._pipeline.submit_cross(cross, holds)
        except BaseException:
            self._close(block, BlockState.FAILED, reason="VENUE_ERROR")
            raise
        refused = refused_by_engine(result)
        if refused is not None:
            self._close(block, BlockState.FAILED, reason=refused.code)
            raise refused
        block.trade_id = trade_id_of(result)
        self._close(block, BlockState.MATCHED)
        return block.view()

    def _close(self, block: _Block, state: BlockState, *, reason: str | None = None) -> None:
        for hold in block.holds:
            self._pipeline.release(hold)
        block.holds = []
        block.state, block.reason = state, reason
        self._tell(block)
        key = _key(block.block_id, block.buyer, block.seller)
        self._pending.pop(key, None)
        self._closed.append(key)
        while len(self._closed) > _KEEP_CLOSED:
            self._blocks.pop(self._closed.popleft(), None)

    def _tell(self, block: _Block) -> None:
        view = block.view()
        for pid in (block.buyer, block.seller):
            self.notices.emit(OffBookNotice(participant=pid, channel="blocks", event="block_state", block=view))
