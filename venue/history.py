"""Trade and order history for the gateway: the whole history from the store, with what the store
has not projected yet taken from memory.

Trades: the store is read in a worker thread and reports its horizon (the highest trade id it held
when the read began); the trades above the horizon come from the core's in-memory ring, which holds
every trade of this process in id order. So a trade is visible the moment it is acknowledged, a
page never shows a trade twice, and no read waits for the store writer.

Orders: the engine forgets an order when it leaves the book, and nothing in memory keeps its final
state, so ``order_record`` waits (bounded) until the store writer has projected every command the
engine had applied when the request arrived, then reads the order's row: read-your-writes without
a second copy of every order in memory.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Iterable
from typing import Protocol

from engine import OrderType, OrderView, Side, TimeInForce
from market.history import OrderRecord, Page, TradeQuery, encode_cursor, page_of
from market.model import OrderStatus, Trade
from store import StoredOrder, StoredTrade

log = logging.getLogger(__name__)

CATCH_UP_TIMEOUT = 2.0  # seconds an order read waits for the store writer before answering anyway


class HistoryStore(Protocol):
    def trade_page(
        self,
        *,
        symbol: str | None = None,
        participant: str | None = None,
        since_ts: int | None = None,
        until_ts: int | None = None,
        before_id: int | None = None,
        limit: int = 100,
    ) -> tuple[int, list[StoredTrade]]: ...

    def get_order(self, order_id: int) -> StoredOrder | None: ...

    def find_order(self, participant: str, client_order_id: str) -> StoredOrder | None: ...


class ProjectionProgress(Protocol):
    async def wait_written(self, seq: int, timeout: float) -> bool: ...


class VenueHistory:
    """Serves ``VenuePort.trade_history`` and ``order_record``. Without a store (tests of the core
    alone) it serves what memory holds: the trade ring and the orders on the book."""

    def __init__(
        self,
        *,
        recent_trades: Callable[[], Iterable[Trade]],
        current_trade: Callable[[int], Trade | None],
        live_order: Callable[[int], OrderView | None],
    ) -> None:
        self._recent_trades = recent_trades  # newest first
        self._current_trade = current_trade
        self._live_order = live_order
        self._store: HistoryStore | None = None
        self._writer: ProjectionProgress | None = None
        self._applied_seq: Callable[[], int] = lambda: 0

    def attach_store(self, store: HistoryStore, writer: ProjectionProgress, applied_seq: Callable[[], int]) -> None:
        self._store, self._writer, self._applied_seq = store, writer, applied_seq

    async def trade_history(self, query: TradeQuery) -> Page[Trade]:
        if self._store is None:
            return page_of(self._recent_trades(), query)
        horizon, stored = await asyncio.to_thread(
            self._store.trade_page, symbol=query.symbol, participant=query.participant, since_ts=query.since_ts,
            until_ts=query.until_ts, before_id=query.before_id, limit=query.limit + 1,
        )
        items: list[Trade] = []
        for record in self._recent_trades():
            if record.trade_id <= horizon:
                break
            if query.matches(record):
                items.append(record)
        for trade in stored:
            # the ring's copy carries the newest settlement state (the store's lags by a flush)
            items.append(self._current_trade(trade.trade_id) or trade.to_trade())
        if len(items) > query.limit:
            return Page(items=tuple(items[: query.limit]), next_cursor=encode_cursor(items[query.limit - 1].trade_id))
        return Page(items=tuple(items))

    async def order_record(self, participant: str, order_id: int) -> OrderRecord | None:
        view = self._live_order(order_id)
        if view is not None and view.participant != participant:
            view = None  # someone else's order: answered exactly like an unknown one
        if self._store is None or self._writer is None:
            return None if view is None else _live_record(view)
        caught_up = await self._writer.wait_written(self._applied_seq(), CATCH_UP_TIMEOUT)
        if not caught_up:
            log.warning("order %d read before the store caught up: its state may be stale", order_id)
        row = await asyncio.to_thread(self._store.get_order, order_id)
        if row is None or row.participant != participant:
            return None if view is None else _live_record(view)
        record = order_record(row)
        if view is not None and not caught_up:
            filled = view.qty - view.remaining
            record = dataclasses.replace(
                record, price=view.price, qty=view.qty, remaining=view.remaining, filled=filled,
                state=OrderStatus.PARTIALLY_FILLED if filled else OrderStatus.OPEN,
            )
        return record

    async def order_by_client_id(self, participant: str, client_order_id: str) -> OrderRecord | None:
        """The participant's order with this client order id, from the store once it has projected
        every applied command (bounded wait); None without a store or when it is unknown."""
        if self._store is None or self._writer is None:
            return None
        await self._writer.wait_written(self._applied_seq(), CATCH_UP_TIMEOUT)
        row = await asyncio.to_thread(self._store.find_order, participant, client_order_id)
        return None if row is None else order_record(row)


def order_record(o: StoredOrder) -> OrderRecord:
    return OrderRecord(
        order_id=o.order_id, client_order_id=o.client_order_id, participant=o.participant, symbol=o.symbol,
        side=Side[o.side.upper()], order_type=OrderType[o.order_type.upper()], tif=TimeInForce[o.tif.upper()],
        price=o.price, qty=o.qty, filled=o.filled, remaining=o.remaining, state=OrderStatus(o.status.value),
        reason=o.reason, expire_ts=o.expire_ts, accepted_ts=o.accepted_ts, updated_ts=o.updated_ts,
    )


def _live_record(view: OrderView) -> OrderRecord:
    """An order on the book, from the engine alone (only limit orders rest)."""
    filled = view.qty - view.remaining
    return OrderRecord(
        order_id=view.order_id, client_order_id=view.client_order_id, participant=view.participant,
        symbol=view.symbol, side=view.side, order_type=OrderType.LIMIT, tif=view.tif, price=view.price,
        qty=view.qty, filled=filled, remaining=view.remaining,
        state=OrderStatus.PARTIALLY_FILLED if filled else OrderStatus.OPEN, reason=None,
        expire_ts=view.expire_ts, accepted_ts=view.accepted_ts, updated_ts=view.accepted_ts,
    )

