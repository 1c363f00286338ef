"""The matching engine: many instruments, price-time priority, commands in, events out.

Rules beyond the message docstrings (decided here, tested in ``tests/engine``):

- Clock: the engine keeps ``clock`` = the largest ``ts`` seen; a command with ``ts < clock`` is
  rejected ``INVALID_TIME`` and changes nothing. The clock starts at 0.
- Validation order for a new order: time, instrument, status, quantity (``INVALID_QUANTITY``,
  min, max), flags, price (missing, invalid, band), expiry, then the matching-outcome checks
  (post-only cross, FOK fillable, market liquidity). Rejections before acceptance get no order id.
- Flags: post-only only with LIMIT + GTC/GTD; ``expire_ts`` only with GTD; a MARKET order accepts
  GTC (treated as IOC: a market order never rests), IOC or FOK, not GTD.
- Market orders: protection price = ``price`` or, when ``None``, the band edge; the remainder is
  cancelled (``IOC_REMAINDER``). ``NO_LIQUIDITY`` when no live resting order (own ones included:
  STP then applies and is reported) lies within the protection price.
- GTD: an order with ``expire_ts <= ts`` of the command at hand never trades. It is expired when
  matching meets it, by ``AdvanceTime`` (in ``(expire_ts, order_id)`` order), and when a cancel or
  amend addresses it (then the command is rejected ``UNKNOWN_ORDER`` after the expiry events).
- Self-trade prevention uses the taker's mode. DECREMENT reduces both orders by the smaller
  remaining without a trade: an order that reaches zero is cancelled (``SELF_TRADE_PREVENTION``,
  ``remaining`` = the decremented quantity); a survivor gets an ``OrderAmended`` with its smaller
  total quantity and ``priority_kept=True``. So ``qty == filled + remaining`` always holds.
- FOK: accepted only if its whole quantity can trade with other participants' orders within its
  limit, walking the book in priority order and skipping due GTD orders; an own order ends the
  walk unless STP is CANCEL_OLDEST (which cancels it and goes on). Hence an accepted FOK always
  fills completely, and a rejected one changes nothing.
- Amend: ``qty`` is the new total. Lower quantity at the same price keeps priority. A price change
  or a quantity increase loses it: the order leaves the book and re-enters with the same id as an
  incoming order, trading if it crosses (post-only orders are rejected ``POST_ONLY_WOULD_CROSS``
  instead), then rests at the back of its level.
- One ``BookDelta`` per price level per command: a command emits exactly one delta for each level
  it changed, with the level's final aggregate, right after the last event that changed it.
- Event order for a new order: ``OrderAccepted``; per price level met while matching, its fills
  (and cancels/expiries/STP amendments of makers met there) then that level's ``BookDelta`` when
  the taker leaves the level; an STP cancel of the taker follows that delta; then the resting
  ``BookDelta`` or ``OrderCancelled(IOC_REMAINDER)``. Mass cancel, close and ``AdvanceTime`` put a
  level's delta after its last cancel/expiry; an amend that moves the price emits the old level's
  delta right after ``OrderAmended``.
- Numbers are 64-bit (``engine/limits.py``): larger ``ts`` is ``INVALID_TIME``, larger ``expire_ts``
  ``INVALID_ORDER_FLAGS``; quantities and prices beyond 64 bits are simply out of range.
- Closing an instrument emits ``InstrumentStatusChanged`` and then cancels every resting order in
  priority order (bids, then asks) with reason ``INSTRUMENT_CLOSED``.
- Mass cancel goes through matching orders in order-id order; a mass cancel never rejects for
  matching nothing.
"""

from __future__ import annotations

import dataclasses
import heapq
from collections.abc import Callable, Iterable
from typing import Any

from engine._fast import fast_constructor
from engine.batch import ResultBatch
from engine.book import Book, BookSide, Level, Order
from engine.codes import CancelReason, ResultCode
from engine.errors import InvariantError, SnapshotError, UnknownInstrumentError
from engine.instrument import InstrumentSpec, InstrumentStatus
from engine.limits import INT64_MAX, QTY_LIMIT, SPEC_LIMIT
from engine.messages import (
    AddInstrument,
    AdvanceTime,
    AmendOrder,
    BookDelta,
    CancelOrder,
    Command,
    Cross,
    Event,
    Fill,
    IndicativeUncross,
    InstrumentAdded,
    InstrumentStatusChanged,
    L2Snapshot,
    MassCancel,
    NewOrder,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderExpired,
    OrderRejected,
    OrderType,
    OrderView,
    Result,
    SetInstrumentStatus,
    Side,
    StpMode,
    TimeInForce,
    TradeOrigin,
    Uncross,
)
from engine.messages import Level as LevelView

SNAPSHOT_FORMAT = 1

_OrderAccepted = fast_constructor(OrderAccepted)
_BookDelta = fast_constructor(BookDelta)
_Fill = fast_constructor(Fill)
_OrderCancelled = fast_constructor(OrderCancelled)
_OrderExpired = fast_constructor(OrderExpired)
_OrderAmended = fast_constructor(OrderAmended)
_OrderRejected = fast_constructor(OrderRejected)
_Result = fast_constructor(Result)

_OK = ResultCode.OK
_BUY = Side.BUY
_SELL = Side.SELL
_LIMIT = OrderType.LIMIT
_MARKET = OrderType.MARKET
_GTC = TimeInForce.GTC
_GTD = TimeInForce.GTD
_IOC = TimeInForce.IOC
_FOK = TimeInForce.FOK
_STP = CancelReason.SELF_TRADE_PREVENTION
_PRE_OPEN = InstrumentStatus.PRE_OPEN
_OPEN = InstrumentStatus.OPEN
_HALTED = InstrumentStatus.HALTED
_CLOSED = InstrumentStatus.CLOSED
_CALL = InstrumentStatus.CALL
_AUCTION = TradeOrigin.AUCTION

_TRANSITIONS = {
    (_PRE_OPEN, _OPEN),
    (_OPEN, _HALTED),
    (_HALTED, _OPEN),
    (_PRE_OPEN, _CLOSED),
    (_OPEN, _CLOSED),
    (_HALTED, _CLOSED),
    (_OPEN, _CALL),
    (_PRE_OPEN, _CALL),
    (_HALTED, _CALL),
    (_CALL, _HALTED),
    (_CALL, _CLOSED),
}
_ENTRY_BLOCKED = {
    _PRE_OPEN: ResultCode.INSTRUMENT_NOT_OPEN,
    _HALTED: ResultCode.INSTRUMENT_HALTED,
    _CLOSED: ResultCode.INSTRUMENT_CLOSED,
}
_CROSS_BLOCKED = {**_ENTRY_BLOCKED, _CALL: ResultCode.NOT_ALLOWED_IN_CALL}
_CROSS_ORIGINS = (TradeOrigin.RFQ, TradeOrigin.BLOCK)
_NO_EVENTS: tuple[Event, ...] = ()


def _spec_error(spec: InstrumentSpec) -> bool:
    numbers = (spec.tick_size, spec.lot_size, spec.min_qty, spec.max_qty, spec.band_low, spec.band_high)
    if type(spec.symbol) is not str or type(spec.status) is not InstrumentStatus:
        return True
    if any(type(n) is not int for n in numbers):
        return True
    if max(spec.min_qty, spec.max_qty) > QTY_LIMIT or max(spec.band_low, spec.band_high) > SPEC_LIMIT:
        return True
    return (
        not spec.symbol
        or spec.tick_size <= 0
        or spec.lot_size <= 0
        or spec.min_qty < 1
        or spec.max_qty < spec.min_qty
        or spec.band_low < 1
        or spec.band_high < spec.band_low
        or spec.status is _CLOSED
    )


class Engine:
    """In-memory matching engine for many instruments. ``process`` never raises for bad input."""

    def __init__(self) -> None:
        self._seq = 0
        self._clock = 0
        self._next_order_id = 1
        self._next_trade_id = 1
        self._books: dict[str, Book] = {}
        self._orders: dict[int, Order] = {}
        self._by_participant: dict[str, dict[int, Order]] = {}
        # lazy min-heap of (expire_ts, order_id); entries of gone orders are skipped and compacted
        self._expiries: list[tuple[int, int]] = []
        self._gtd_live = 0
        # price levels changed by the command at hand whose BookDelta is still due: (symbol, side, price)
        self._dirty: dict[tuple[str, Side, int], None] = {}
        self._handlers: dict[type, Callable[[Any], Result]] = {
            NewOrder: self._new_order,
            CancelOrder: self._cancel,
            AmendOrder: self._amend,
            MassCancel: self._mass_cancel,
            AdvanceTime: self._advance_time,
            AddInstrument: self._add_instrument,
            SetInstrumentStatus: self._set_status,
            Cross: self._cross,
            Uncross: self._uncross,
        }
        # instruments in a call whose book changed in the command at hand: an IndicativeUncross is due
        self._calls: dict[str, None] = {}

    # ================================================================ public API

    @property
    def seq(self) -> int:
        return self._seq

    @property
    def clock(self) -> int:
        return self._clock

    def process(self, cmd: Command) -> Result:
        handler = self._handlers.get(type(cmd))
        if handler is None:
            raise TypeError(f"not an engine command: {type(cmd).__name__}")
        result = handler(cmd)
        return self._indicate(result) if self._calls else result

    def process_many(self, commands: Iterable[Command]) -> ResultBatch:
        """Process ``commands`` in order; one call for a whole batch (same results as ``process``)."""
        handlers = self._handlers
        calls = self._calls
        results: list[Result] = []
        append = results.append
        for cmd in commands:
            handler = handlers.get(type(cmd))
            if handler is None:
                raise TypeError(f"not an engine command: {type(cmd).__name__}")
            result = handler(cmd)
            append(self._indicate(result) if calls else result)
        return ResultBatch(results)

    def symbols(self) -> tuple[str, ...]:
        return tuple(self._books)

    def spec(self, symbol: str) -> InstrumentSpec | None:
        book = self._books.get(symbol)
        return None if book is None else book.spec

    def l2(self, symbol: str, depth: int | None = None) -> L2Snapshot:
        book = self._books.get(symbol)
        if book is None:
            raise UnknownInstrumentError(f"unknown instrument {symbol!r}")
        return L2Snapshot(
            symbol=symbol,
            md_seq=book.md_seq,
            status=book.spec.status,
            bids=_levels(book.bids, depth),
            asks=_levels(book.asks, depth),
        )

    def order(self, order_id: int) -> OrderView | None:
        order = self._orders.get(order_id)
        return None if order is None else _view(order)

    def open_orders(self, participant: str | None = None, symbol: str | None = None) -> list[OrderView]:
        if participant is None:
            candidates: list[Order] = list(self._orders.values())
        else:
            candidates = list(self._by_participant.get(participant, {}).values())
        return [_view(o) for o in sorted(candidates, key=_by_id) if symbol is None or o.symbol == symbol]

    # ================================================================ new order

    def _check_new(self, cmd: NewOrder, book: Book) -> ResultCode:
        spec = book.spec
        status = spec.status
        if status is not _OPEN and status is not _CALL:
            return _ENTRY_BLOCKED[status]
        qty = cmd.qty
        if type(qty) is not int or qty <= 0:
            return ResultCode.INVALID_QUANTITY
        if qty < spec.min_qty:
            return ResultCode.QUANTITY_BELOW_MIN
        if qty > spec.max_qty:
            return ResultCode.QUANTITY_ABOVE_MAX
        tif = cmd.tif
        if (
            type(tif) is not TimeInForce
            or type(cmd.side) is not Side
            or type(cmd.order_type) is not OrderType
            or type(cmd.stp) is not StpMode
            or type(cmd.post_only) is not bool
        ):
            return ResultCode.INVALID_ORDER_FLAGS
        if cmd.post_only and (cmd.order_type is _MARKET or tif is _IOC or tif is _FOK):
            return ResultCode.INVALID_ORDER_FLAGS
        if cmd.expire_ts is not None and tif is not _GTD:
            return ResultCode.INVALID_ORDER_FLAGS
        if cmd.order_type is _MARKET and tif is _GTD:
            return ResultCode.INVALID_ORDER_FLAGS
        price = cmd.price
        if price is None:
            if cmd.order_type is _LIMIT:
                return ResultCode.MISSING_PRICE
        elif type(price) is not int or price <= 0:
            return ResultCode.INVALID_PRICE
        elif price < spec.band_low or price > spec.band_high:
            return ResultCode.PRICE_OUTSIDE_BAND
        if tif is _GTD:
            if cmd.expire_ts is None:
                return ResultCode.MISSING_EXPIRY
            if type(cmd.expire_ts) is not int or not -INT64_MAX <= cmd.expire_ts <= INT64_MAX:
                return ResultCode.INVALID_ORDER_FLAGS
            if cmd.expire_ts <= cmd.ts:
                return ResultCode.EXPIRY_IN_PAST
        if status is _CALL and (cmd.order_type is _MARKET or tif is _IOC or tif is _FOK):
            return ResultCode.NOT_ALLOWED_IN_CALL
        return _OK

    def _new_order(self, cmd: NewOrder) -> Result:
        ts = cmd.ts
        if type(ts) is not int or ts < self._clock or ts > INT64_MAX:
            return self._reject(cmd, cmd.symbol, None, ResultCode.INVALID_TIME)
        self._clock = ts
        book = self._books.get(cmd.symbol)
        if book is None:
            return self._reject(cmd, cmd.symbol, None, ResultCode.UNKNOWN_INSTRUMENT)
        code = self._check_new(cmd, book)
        if code:
            return self._reject(cmd, cmd.symbol, None, code)
        side = cmd.side
        is_buy = side is _BUY
        price = cmd.price
        market = cmd.order_type is _MARKET
        if price is None:  # market order without protection: the band edge
            spec = book.spec
            limit = spec.band_high if is_buy else spec.band_low
        else:
            limit = price
        limit_key = limit if is_buy else -limit
        opp = book.asks if is_buy else book.bids
        tif = cmd.tif
        call = book.spec.status is _CALL
        if call:  # a call collects orders: no matching, so no matching-outcome checks
            pass
        elif cmd.post_only:
            best = opp.best
            if best is not None and best <= limit_key:
                return self._reject(cmd, cmd.symbol, None, ResultCode.POST_ONLY_WOULD_CROSS)
        elif tif is _FOK:
            if self._fillable(opp, limit_key, cmd.participant, cmd.stp, ts, cmd.qty) < cmd.qty:
                return self._reject(cmd, cmd.symbol, None, ResultCode.FOK_NOT_FILLABLE)
        elif market and not self._has_liquidity(opp, limit_key, ts):
            return self._reject(cmd, cmd.symbol, None, ResultCode.NO_LIQUIDITY)

        oid = self._next_order_id
        self._next_order_id = oid + 1
        order = Order(
            oid, cmd.client_order_id, cmd.participant, cmd.session, cmd.symbol, side, limit, cmd.qty, cmd.qty,
            tif, cmd.expire_ts, ts, cmd.post_only, cmd.stp,
        )
        self._seq += 1
        events: list[Event] = [
            _OrderAccepted(
                seq=self._seq, ts=ts, order_id=oid, client_order_id=cmd.client_order_id,
                participant=cmd.participant, session=cmd.session, symbol=cmd.symbol, side=side,
                order_type=cmd.order_type, tif=tif, price=price, qty=cmd.qty, expire_ts=cmd.expire_ts,
                post_only=cmd.post_only,
            )
        ]
        best = opp.best
        alive = True
        if not call and best is not None and best <= limit_key:
            alive = self._match(book, order, opp, limit_key, events, ts)
        if alive and order.remaining:
            if market or tif is _IOC or tif is _FOK:
                self._seq += 1
                events.append(
                    _OrderCancelled(
                        seq=self._seq, ts=ts, order_id=oid, participant=order.participant, symbol=order.symbol,
                        side=side, remaining=order.remaining, reason=CancelReason.IOC_REMAINDER,
                    )
                )
            else:
                self._rest(book, order, events, ts)
                if order.expire_ts is not None:
                    self._push_expiry(order)
                self._flush_all(events, ts)
        return _Result(code=_OK, events=tuple(events), order_id=oid)

    def _rest(self, book: Book, order: Order, events: list[Event], ts: int) -> None:
        side = order.side
        level = (book.bids if side is _BUY else book.asks).add(order)
        self._orders[order.order_id] = order
        parts = self._by_participant.get(order.participant)
        if parts is None:
            parts = self._by_participant[order.participant] = {}
        parts[order.order_id] = order
        if order.expire_ts is not None:
            self._gtd_live += 1
        self._dirty[(order.symbol, side, level.price)] = None

    def _push_expiry(self, order: Order) -> None:
        assert order.expire_ts is not None
        heap = self._expiries
        heapq.heappush(heap, (order.expire_ts, order.order_id))
        if len(heap) > 2 * self._gtd_live + 1024:
            self._expiries = [(o.expire_ts, i) for i, o in self._orders.items() if o.expire_ts is not None]
            heapq.heapify(self._expiries)

    def _drop(self, book: Book, order: Order) -> Level:
        """Take a resting order out of its level and every index; return the level."""
        level = (book.bids if order.side is _BUY else book.asks).remove(order)
        oid = order.order_id
        del self._orders[oid]
        parts = self._by_participant[order.participant]
        del parts[oid]
        if not parts:
            del self._by_participant[order.participant]
        if order.expire_ts is not None:
            self._gtd_live -= 1
        return level

    def _delta(self, book: Book, side: Side, price: int, events: list[Event], ts: int) -> None:
        """Emit the level's current aggregate (0/0 when it is gone)."""
        level = (book.bids if side is _BUY else book.asks).levels.get(price if side is _SELL else -price)
        if book.spec.status is _CALL:
            self._calls[book.spec.symbol] = None
        self._seq += 1
        book.md_seq += 1
        events.append(
            _BookDelta(
                seq=self._seq, md_seq=book.md_seq, ts=ts, symbol=book.spec.symbol, side=side, price=price,
                qty=0 if level is None else level.qty, count=0 if level is None else level.count,
            )
        )

    def _flush(self, book: Book, side: Side, price: int, events: list[Event], ts: int) -> None:
        """Emit the delta of one level if the command changed it (and forget it)."""
        dirty = self._dirty
        key = (book.spec.symbol, side, price)
        if key in dirty:
            del dirty[key]
            self._delta(book, side, price, events, ts)

    def _flush_all(self, events: list[Event], ts: int) -> None:
        """Emit every level delta still due, in the order the levels were first changed."""
        dirty = self._dirty
        if dirty:
            books = self._books
            for symbol, side, price in dirty:
                self._delta(books[symbol], side, price, events, ts)
            dirty.clear()

    def _cancel_resting(
        self, book: Book, order: Order, reason: CancelReason, events: list[Event], ts: int
    ) -> None:
        remaining = order.remaining
        level = self._drop(book, order)
        self._seq += 1
        events.append(
            _OrderCancelled(
                seq=self._seq, ts=ts, order_id=order.order_id, participant=order.participant, symbol=order.symbol,
                side=order.side, remaining=remaining, reason=reason,
            )
        )
        self._dirty[(order.symbol, order.side, level.price)] = None

    def _expire_resting(self, book: Book, order: Order, events: list[Event], ts: int) -> None:
        remaining = order.remaining
        level = self._drop(book, order)
        self._seq += 1
        events.append(
            _OrderExpired(
                seq=self._seq, ts=ts, order_id=order.order_id, participant=order.participant, symbol=order.symbol,
                side=order.side, remaining=remaining,
            )
        )
        self._dirty[(order.symbol, order.side, level.price)] = None

    def _cancel_taker(self, taker: Order, remaining: int, events: list[Event], ts: int) -> None:
        self._seq += 1
        events.append(
            _OrderCancelled(
                seq=self._seq, ts=ts, order_id=taker.order_id, participant=taker.participant, symbol=taker.symbol,
                side=taker.side, remaining=remaining, reason=_STP,
            )
        )

    def _amended(self, order: Order, priority_kept: bool, events: list[Event], ts: int) -> None:
        self._seq += 1
        events.append(
            _OrderAmended(
                seq=self._seq, ts=ts, order_id=order.order_id, participant=order.participant, symbol=order.symbol,
                side=order.side, price=order.price, qty=order.qty, remaining=order.remaining,
                priority_kept=priority_kept,
            )
        )

    # ================================================================ matching

    def _match(self, book: Book, taker: Order, opp: BookSide, limit_key: int, events: list[Event], ts: int) -> bool:
        """Match ``taker`` against ``opp`` up to ``limit_key``; False if STP ended the taker.

        Each level met gets one ``BookDelta`` when the taker leaves it (after the level's last fill,
        maker cancel or expiry, before an STP cancel of the taker)."""
        levels = opp.levels
        symbol = book.spec.symbol
        participant = taker.participant
        aggressor = taker.side
        maker_side = opp.side
        dirty = self._dirty
        while True:
            key = opp.best
            if key is None or key > limit_key:
                return True
            level = levels[key]
            price = level.price
            dirty_key = (symbol, maker_side, price)
            ended = -1  # >= 0: STP ended the taker with this much open (its cancel follows the delta)
            filled = False
            maker = level.head
            while maker is not None:
                nxt = maker.next
                expire_ts = maker.expire_ts
                if expire_ts is not None and expire_ts <= ts:
                    self._expire_resting(book, maker, events, ts)
                elif maker.participant == participant:
                    mode = taker.stp
                    if mode is StpMode.CANCEL_NEWEST:
                        ended = taker.remaining
                        break
                    if mode is StpMode.CANCEL_OLDEST:
                        self._cancel_resting(book, maker, _STP, events, ts)
                    elif mode is StpMode.CANCEL_BOTH:
                        self._cancel_resting(book, maker, _STP, events, ts)
                        ended = taker.remaining
                        break
                    else:
                        ended = self._decrement(book, taker, maker, level, events, ts)
                        if ended >= 0:
                            break
                else:
                    taker_rem = taker.remaining
                    maker_rem = maker.remaining
                    qty = taker_rem if taker_rem < maker_rem else maker_rem
                    maker_rem -= qty
                    taker_rem -= qty
                    maker.remaining = maker_rem
                    taker.remaining = taker_rem
                    level.qty -= qty
                    trade_id = self._next_trade_id
                    self._next_trade_id = trade_id + 1
                    self._seq += 1
                    book.md_seq += 1
                    events.append(
                        _Fill(
                            seq=self._seq, md_seq=book.md_seq, ts=ts, trade_id=trade_id, symbol=symbol, price=price,
                            qty=qty, aggressor=aggressor, maker_order_id=maker.order_id,
                            maker_participant=maker.participant, maker_remaining=maker_rem,
                            taker_order_id=taker.order_id, taker_participant=participant, taker_remaining=taker_rem,
                        )
                    )
                    dirty[dirty_key] = None
                    book.last_price = price
                    if not maker_rem:
                        self._drop(book, maker)
                    if not taker_rem:
                        filled = True
                        break
                maker = nxt
            if dirty_key in dirty:
                del dirty[dirty_key]
                self._delta(book, maker_side, price, events, ts)
            if ended >= 0:
                self._cancel_taker(taker, ended, events, ts)
                return False
            if filled:
                return True

    def _decrement(self, book: Book, taker: Order, maker: Order, level: Level, events: list[Event], ts: int) -> int:
        """STP DECREMENT of one maker; if the taker reached zero, its open quantity to cancel, else -1."""
        qty = min(taker.remaining, maker.remaining)
        if maker.remaining == qty:
            self._cancel_resting(book, maker, _STP, events, ts)
        else:
            maker.remaining -= qty
            maker.qty -= qty
            level.qty -= qty
            self._amended(maker, True, events, ts)
            self._dirty[(book.spec.symbol, maker.side, level.price)] = None
        if taker.remaining == qty:
            taker.remaining = 0
            return qty
        taker.remaining -= qty
        taker.qty -= qty
        self._amended(taker, True, events, ts)
        return -1

    def _fillable(self, opp: BookSide, limit_key: int, participant: str, stp: StpMode, ts: int, needed: int) -> int:
        total = 0
        levels = opp.levels
        skip_own = stp is StpMode.CANCEL_OLDEST
        for key in opp.keys.irange(maximum=limit_key):
            maker = levels[key].head
            while maker is not None:
                if maker.expire_ts is None or maker.expire_ts > ts:
                    if maker.participant == participant:
                        if not skip_own:
                            return total
                    else:
                        total += maker.remaining
                        if total >= needed:
                            return total
                maker = maker.next
        return total

    def _has_liquidity(self, opp: BookSide, limit_key: int, ts: int) -> bool:
        levels = opp.levels
        for key in opp.keys.irange(maximum=limit_key):
            maker = levels[key].head
            while maker is not None:
                if maker.expire_ts is None or maker.expire_ts > ts:
                    return True
                maker = maker.next
        return False

    # ================================================================ order management

    def _owned(self, participant: str, order_id: int) -> Order | None:
        order = self._orders.get(order_id)
        if order is None or order.participant != participant:
            return None
        return order

    def _cancel(self, cmd: CancelOrder) -> Result:
        ts = cmd.ts
        if type(ts) is not int or ts < self._clock or ts > INT64_MAX:
            return self._reject(cmd, "", cmd.order_id, ResultCode.INVALID_TIME)
        self._clock = ts
        order = self._owned(cmd.participant, cmd.order_id)
        if order is None:
            return self._reject(cmd, "", cmd.order_id, ResultCode.UNKNOWN_ORDER)
        book = self._books[order.symbol]
        events: list[Event] = []
        if order.expire_ts is not None and order.expire_ts <= ts:
            self._expire_resting(book, order, events, ts)
            self._flush_all(events, ts)
            return self._reject(cmd, order.symbol, order.order_id, ResultCode.UNKNOWN_ORDER, events)
        self._cancel_resting(book, order, CancelReason.USER, events, ts)
        self._flush_all(events, ts)
        return _Result(code=_OK, events=tuple(events), order_id=order.order_id)

    def _amend(self, cmd: AmendOrder) -> Result:
        ts = cmd.ts
        if type(ts) is not int or ts < self._clock or ts > INT64_MAX:
            return self._reject(cmd, "", cmd.order_id, ResultCode.INVALID_TIME)
        self._clock = ts
        order = self._owned(cmd.participant, cmd.order_id)
        if order is None:
            return self._reject(cmd, "", cmd.order_id, ResultCode.UNKNOWN_ORDER)
        book = self._books[order.symbol]
        symbol = order.symbol
        events: list[Event] = []
        if order.expire_ts is not None and order.expire_ts <= ts:
            self._expire_resting(book, order, events, ts)
            self._flush_all(events, ts)
            return self._reject(cmd, symbol, order.order_id, ResultCode.UNKNOWN_ORDER, events)
        spec = book.spec
        call = spec.status is _CALL
        if spec.status is not _OPEN and not call:
            return self._reject(cmd, symbol, order.order_id, _ENTRY_BLOCKED[spec.status])
        filled = order.qty - order.remaining
        new_qty = order.qty if cmd.qty is None else cmd.qty
        new_price = order.price if cmd.price is None else cmd.price
        code = _OK
        if cmd.qty is not None:
            if type(new_qty) is not int or new_qty <= 0:
                code = ResultCode.INVALID_QUANTITY
            elif new_qty <= filled:
                code = ResultCode.AMEND_QTY_TOO_LOW
            elif new_qty < spec.min_qty:
                code = ResultCode.QUANTITY_BELOW_MIN
            elif new_qty > spec.max_qty:
                code = ResultCode.QUANTITY_ABOVE_MAX
        if not code and cmd.price is not None:
            if type(new_price) is not int or new_price <= 0:
                code = ResultCode.INVALID_PRICE
            elif new_price < spec.band_low or new_price > spec.band_high:
                code = ResultCode.PRICE_OUTSIDE_BAND
        if not code and new_qty == order.qty and new_price == order.price:
            code = ResultCode.AMEND_NO_CHANGE
        if code:
            return self._reject(cmd, symbol, order.order_id, code)
        side = order.side
        new_key = new_price if side is _SELL else -new_price
        opp = book.asks if side is _BUY else book.bids
        best = opp.best
        if not call and order.post_only and new_price != order.price and best is not None and best <= -new_key:
            return self._reject(cmd, symbol, order.order_id, ResultCode.POST_ONLY_WOULD_CROSS)

        if new_price == order.price and new_qty < order.qty:
            cut = order.qty - new_qty
            order.qty = new_qty
            order.remaining -= cut
            level = order.level
            assert level is not None
            level.qty -= cut
            self._amended(order, True, events, ts)
            self._delta(book, side, new_price, events, ts)
            return _Result(code=_OK, events=tuple(events), order_id=order.order_id)

        level = self._drop(book, order)
        order.price = new_price
        order.key = new_key
        order.qty = new_qty
        order.remaining = new_qty - filled
        self._amended(order, False, events, ts)
        if new_price != level.price:  # the old level is done with; at the same price the re-entry's delta covers it
            self._delta(book, side, level.price, events, ts)
        alive = True
        limit_key = -new_key  # the order's limit as seen from the opposite side's keys
        best = opp.best
        if not call and best is not None and best <= limit_key:
            alive = self._match(book, order, opp, limit_key, events, ts)
        if alive and order.remaining:
            self._rest(book, order, events, ts)
        self._flush_all(events, ts)
        return _Result(code=_OK, events=tuple(events), order_id=order.order_id)

    def _mass_cancel(self, cmd: MassCancel) -> Result:
        ts = cmd.ts
        symbol = cmd.symbol
        if type(ts) is not int or ts < self._clock or ts > INT64_MAX:
            return self._reject(cmd, symbol or "", None, ResultCode.INVALID_TIME)
        self._clock = ts
        if symbol is not None and symbol not in self._books:
            return self._reject(cmd, symbol, None, ResultCode.UNKNOWN_INSTRUMENT)
        parts = self._by_participant.get(cmd.participant)
        events: list[Event] = []
        if parts:
            side = cmd.side
            session = cmd.session
            chosen = [
                o
                for o in parts.values()
                if (symbol is None or o.symbol == symbol)
                and (side is None or o.side is side)
                and (session is None or o.session == session)
            ]
            chosen.sort(key=_by_id)
            self._cancel_many(chosen, cmd.reason, events, ts)
        return _Result(code=_OK, events=tuple(events))

    def _advance_time(self, cmd: AdvanceTime) -> Result:
        ts = cmd.ts
        if type(ts) is not int or ts < self._clock or ts > INT64_MAX:
            return _Result(code=ResultCode.INVALID_TIME, events=_NO_EVENTS)
        self._clock = ts
        heap = self._expiries
        orders = self._orders
        events: list[Event] = []
        due: list[Order] = []
        while heap and heap[0][0] <= ts:
            expire_ts, oid = heapq.heappop(heap)
            order = orders.get(oid)
            if order is not None and order.expire_ts == expire_ts:
                due.append(order)
        if due:
            last = _last_touch(due)
            for i, order in enumerate(due):
                book = self._books[order.symbol]
                self._expire_resting(book, order, events, ts)
                if last[(order.symbol, order.side, order.price)] == i:
                    self._flush(book, order.side, order.price, events, ts)
        return _Result(code=_OK, events=tuple(events))

    def _cancel_many(self, chosen: list[Order], reason: CancelReason, events: list[Event], ts: int) -> None:
        """Cancel ``chosen`` in that order; each level's delta follows its last cancel."""
        last = _last_touch(chosen)
        books = self._books
        for i, order in enumerate(chosen):
            book = books[order.symbol]
            self._cancel_resting(book, order, reason, events, ts)
            if last[(order.symbol, order.side, order.price)] == i:
                self._flush(book, order.side, order.price, events, ts)

    # ================================================================ instruments

    def _add_instrument(self, cmd: AddInstrument) -> Result:
        ts = cmd.ts
        if type(ts) is not int or ts < self._clock or ts > INT64_MAX:
            return _Result(code=ResultCode.INVALID_TIME, events=_NO_EVENTS)
        self._clock = ts
        spec = cmd.spec
        if type(spec) is not InstrumentSpec or _spec_error(spec):
            return _Result(code=ResultCode.INVALID_INSTRUMENT_SPEC, events=_NO_EVENTS)
        if spec.symbol in self._books:
            return _Result(code=ResultCode.INSTRUMENT_EXISTS, events=_NO_EVENTS)
        self._books[spec.symbol] = Book(spec)
        self._seq += 1
        return _Result(code=_OK, events=(InstrumentAdded(seq=self._seq, ts=ts, spec=spec),))

    def _book_at(self, cmd: SetInstrumentStatus | Uncross | Cross) -> Book | Result:
        """The operator commands' prologue: advance the clock to ``cmd.ts`` and find the book, or
        the refusal (a bad time, an unknown symbol)."""
        ts = cmd.ts
        if type(ts) is not int or ts < self._clock or ts > INT64_MAX:
            return _Result(code=ResultCode.INVALID_TIME, events=_NO_EVENTS)
        self._clock = ts
        book = self._books.get(cmd.symbol)
        if book is None:
            return _Result(code=ResultCode.UNKNOWN_INSTRUMENT, events=_NO_EVENTS)
        return book

    def _set_status(self, cmd: SetInstrumentStatus) -> Result:
        book = self._book_at(cmd)
        if not isinstance(book, Book):
            return book
        ts = self._clock
        if type(cmd.status) is not InstrumentStatus or (book.spec.status, cmd.status) not in _TRANSITIONS:
            return _Result(code=ResultCode.INVALID_STATUS_TRANSITION, events=_NO_EVENTS)
        if cmd.status is _OPEN and _crossed(book):  # halted during a call: only an uncross can open it
            return _Result(code=ResultCode.BOOK_CROSSED, events=_NO_EVENTS)
        book.spec = dataclasses.replace(book.spec, status=cmd.status)
        self._seq += 1
        book.md_seq += 1
        events: list[Event] = [
            InstrumentStatusChanged(seq=self._seq, md_seq=book.md_seq, ts=ts, symbol=cmd.symbol, status=cmd.status)
        ]
        if cmd.status is _CLOSED:
            self._cancel_many(book.bids.orders() + book.asks.orders(), CancelReason.INSTRUMENT_CLOSED, events, ts)
        elif cmd.status is _CALL:
            self._calls[cmd.symbol] = None
        return _Result(code=_OK, events=tuple(events))

    # ================================================================ call auction

    def _indicate(self, result: Result) -> Result:
        """Append an ``IndicativeUncross`` for every instrument in a call that the command changed."""
        events = list(result.events)
        ts = self._clock
        for symbol in self._calls:
            book = self._books[symbol]
            if book.spec.status is not _CALL:
                continue
            price, volume, imbalance = _auction(book, book.last_price)
            self._seq += 1
            book.md_seq += 1
            events.append(
                IndicativeUncross(
                    seq=self._seq, md_seq=book.md_seq, ts=ts, symbol=symbol, price=price, volume=volume,
                    imbalance_side=_BUY if imbalance > 0 else _SELL if imbalance < 0 else None,
                    imbalance_qty=abs(imbalance),
                )
            )
        self._calls.clear()
        return _Result(code=result.code, events=tuple(events), order_id=result.order_id)

    def _uncross(self, cmd: Uncross) -> Result:
        book = self._book_at(cmd)
        if not isinstance(book, Book):
            return book
        ts = self._clock
        if book.spec.status is not _CALL:
            return _Result(code=ResultCode.NOT_IN_CALL, events=_NO_EVENTS)
        then = cmd.then
        if type(then) is not InstrumentStatus or (then is not _OPEN and then is not _CALL):
            return _Result(code=ResultCode.INVALID_STATUS_TRANSITION, events=_NO_EVENTS)
        ref = cmd.reference_price
        if ref is not None and (type(ref) is not int or ref <= 0 or ref > INT64_MAX):
            return _Result(code=ResultCode.INVALID_PRICE, events=_NO_EVENTS)
        symbol = book.spec.symbol
        events: list[Event] = []
        # orders due to expire never trade: expire them first, in (expire_ts, order_id) order
        orders = self._orders
        due = []
        for expire_ts, oid in self._expiries:
            order = orders.get(oid)
            if expire_ts <= ts and order is not None and order.symbol == symbol and order.expire_ts == expire_ts:
                due.append((expire_ts, oid))
        for _, oid in sorted(due):
            self._expire_resting(book, orders[oid], events, ts)
        price, volume, _ = _auction(book, ref)
        if price is not None:
            self._allocate(book, price, volume, events, ts)
        self._flush_all(events, ts)
        book.spec = dataclasses.replace(book.spec, status=then)
        self._seq += 1
        book.md_seq += 1
        events.append(InstrumentStatusChanged(seq=self._seq, md_seq=book.md_seq, ts=ts, symbol=symbol, status=then))
        if then is _CALL:
            self._calls[symbol] = None
        return _Result(code=_OK, events=tuple(events))

    def _allocate(self, book: Book, price: int, volume: int, events: list[Event], ts: int) -> None:
        """Execute ``volume`` at ``price``: bids (best first, FIFO) against asks (best first, FIFO).

        A pair of one participant's own orders is decremented (no trade), whatever their STP modes."""
        symbol = book.spec.symbol
        dirty = self._dirty
        bids = book.bids
        asks = book.asks
        while volume:  # the pair is always the two best orders: each step uses one of them up
            buy = bids.levels[bids.best].head  # type: ignore[index]
            sell = asks.levels[asks.best].head  # type: ignore[index]
            assert buy is not None and sell is not None and buy.level is not None and sell.level is not None
            qty = min(buy.remaining, sell.remaining)
            volume -= qty
            dirty[(symbol, _BUY, buy.price)] = None
            dirty[(symbol, _SELL, sell.price)] = None
            if buy.participant == sell.participant:
                for order in (buy, sell):
                    if order.remaining == qty:
                        self._cancel_resting(book, order, _STP, events, ts)
                    else:
                        order.remaining -= qty
                        order.qty -= qty
                        order.level.qty -= qty  # type: ignore[union-attr]
                        self._amended(order, True, events, ts)
                continue
            taker, maker = (buy, sell) if buy.order_id > sell.order_id else (sell, buy)
            buy.remaining -= qty
            sell.remaining -= qty
            buy.level.qty -= qty
            sell.level.qty -= qty
            trade_id = self._next_trade_id
            self._next_trade_id = trade_id + 1
            self._seq += 1
            book.md_seq += 1
            events.append(
                _Fill(
                    seq=self._seq, md_seq=book.md_seq, ts=ts, trade_id=trade_id, symbol=symbol, price=price,
                    qty=qty, aggressor=taker.side, maker_order_id=maker.order_id,
                    maker_participant=maker.participant, maker_remaining=maker.remaining,
                    taker_order_id=taker.order_id, taker_participant=taker.participant,
                    taker_remaining=taker.remaining, origin=_AUCTION,
                )
            )
            book.last_price = price
            if not buy.remaining:
                self._drop(book, buy)
            if not sell.remaining:
                self._drop(book, sell)

    # ================================================================ crosses

    def _cross(self, cmd: Cross) -> Result:
        book = self._book_at(cmd)
        if not isinstance(book, Book):
            return book
        ts = self._clock
        spec = book.spec
        code = _OK
        qty = cmd.qty
        price = cmd.price
        if spec.status is not _OPEN:
            code = _CROSS_BLOCKED[spec.status]
        elif type(cmd.origin) is not TradeOrigin or cmd.origin not in _CROSS_ORIGINS:
            code = ResultCode.INVALID_TRADE_ORIGIN
        elif cmd.buyer == cmd.seller:
            code = ResultCode.SELF_CROSS
        elif type(qty) is not int or qty <= 0:
            code = ResultCode.INVALID_QUANTITY
        elif qty < spec.min_qty:
            code = ResultCode.QUANTITY_BELOW_MIN
        elif qty > spec.max_qty:
            code = ResultCode.QUANTITY_ABOVE_MAX
        elif type(price) is not int or price <= 0:
            code = ResultCode.INVALID_PRICE
        elif price < spec.band_low or price > spec.band_high:
            code = ResultCode.PRICE_OUTSIDE_BAND
        if code:
            return _Result(code=code, events=_NO_EVENTS)
        buy_id = self._next_order_id
        self._next_order_id = buy_id + 2  # the seller's side is buy_id + 1
        trade_id = self._next_trade_id
        self._next_trade_id = trade_id + 1
        self._seq += 1
        book.md_seq += 1
        book.last_price = price
        fill = _Fill(
            seq=self._seq, md_seq=book.md_seq, ts=ts, trade_id=trade_id, symbol=spec.symbol, price=price, qty=qty,
            aggressor=_BUY, maker_order_id=buy_id + 1, maker_participant=cmd.seller, maker_remaining=0,
            taker_order_id=buy_id, taker_participant=cmd.buyer, taker_remaining=0, origin=cmd.origin,
        )
        return _Result(code=_OK, events=(fill,), order_id=buy_id)

    # ================================================================ rejections

    def _reject(
        self,
        cmd: NewOrder | AmendOrder | CancelOrder | MassCancel,
        symbol: str,
        order_id: int | None,
        code: ResultCode,
        events: list[Event] | None = None,
    ) -> Result:
        self._seq += 1
        rejected = _OrderRejected(
            seq=self._seq, ts=cmd.ts, participant=cmd.participant,
            client_order_id=cmd.client_order_id if isinstance(cmd, NewOrder) else "",
            symbol=symbol, order_id=order_id, code=code,
        )
        out: tuple[Event, ...] = (rejected,) if events is None else (*events, rejected)
        return _Result(code=code, events=out, order_id=order_id)

    # ================================================================ invariants

    def validate(self) -> None:
        """Raise ``InvariantError`` unless every book and index is consistent."""
        seen: dict[int, Order] = {}
        for symbol, book in self._books.items():
            _check(book.spec.symbol == symbol, f"{symbol}: book keyed under another symbol")
            _check(not _spec_error(dataclasses.replace(book.spec, status=_OPEN)), f"{symbol}: invalid spec")
            if book.spec.status in (_CLOSED, _PRE_OPEN):
                _check(not book.bids.levels and not book.asks.levels, f"{symbol}: orders rest while not tradable")
            for side in (book.bids, book.asks):
                self._validate_side(book, side, seen)
            if book.spec.status is not _CALL and book.spec.status is not _HALTED:  # halted: maybe during a call
                _check(not _crossed(book), f"{symbol}: crossed book")
        _check(seen.keys() == self._orders.keys(), "order index differs from the books")
        indexed = 0
        for participant, parts in self._by_participant.items():
            _check(bool(parts), f"empty participant index for {participant}")
            for oid, order in parts.items():
                _check(seen.get(oid) is order and order.participant == participant, f"participant index: {oid}")
            indexed += len(parts)
        _check(indexed == len(self._orders), "participant index size differs")
        gtd = [o for o in self._orders.values() if o.expire_ts is not None]
        _check(len(gtd) == self._gtd_live, "GTD counter differs")
        pending = set(self._expiries)
        for order in gtd:
            _check((order.expire_ts, order.order_id) in pending, f"GTD order {order.order_id} has no expiry entry")
        _check(all(oid < self._next_order_id for oid in self._orders), "order id beyond the counter")

    def _validate_side(self, book: Book, side: BookSide, seen: dict[int, Order]) -> None:
        symbol = book.spec.symbol
        keys = list(side.keys)
        _check(keys == sorted(side.levels), f"{symbol}: price keys differ from levels")
        _check(side.best == (keys[0] if keys else None), f"{symbol}: cached best {side.best} is stale")
        for key in keys:
            level = side.levels[key]
            _check(level.key == key, f"{symbol}: level key")
            _check(key == (level.price if side.side is _SELL else -level.price), f"{symbol}: level price/key")
            _check(book.spec.band_low <= level.price <= book.spec.band_high, f"{symbol}: level outside band")
            total = count = 0
            prev: Order | None = None
            order = level.head
            while order is not None:
                oid = order.order_id
                _check(oid not in seen, f"order {oid} linked twice")
                seen[oid] = order
                _check(self._orders.get(oid) is order, f"order {oid} not indexed")
                _check(order.level is level and order.prev is prev, f"order {oid}: broken links")
                _check(order.side is side.side and order.symbol == symbol, f"order {oid}: wrong side/book")
                _check(order.price == level.price and order.key == key, f"order {oid}: wrong level")
                _check(0 < order.remaining <= order.qty, f"order {oid}: remaining {order.remaining}/{order.qty}")
                _check(order.tif in (_GTC, _GTD), f"order {oid}: resting {order.tif.name}")
                _check((order.tif is _GTD) == (order.expire_ts is not None), f"order {oid}: expiry vs tif")
                total += order.remaining
                count += 1
                prev = order
                order = order.next
            _check(level.tail is prev, f"{symbol}: level tail")
            _check(count > 0 and level.count == count, f"{symbol}@{level.price}: count {level.count} != {count}")
            _check(level.qty == total, f"{symbol}@{level.price}: qty {level.qty} != {total}")

    # ================================================================ snapshot

    def snapshot(self) -> dict[str, Any]:
        """All state as plain JSON data; resting orders in exact priority order."""
        instruments = []
        for book in self._books.values():
            spec = book.spec
            instruments.append(
                {
                    "symbol": spec.symbol,
                    "tick_size": spec.tick_size,
                    "lot_size": spec.lot_size,
                    "min_qty": spec.min_qty,
                    "max_qty": spec.max_qty,
                    "band_low": spec.band_low,
                    "band_high": spec.band_high,
                    "status": spec.status.name,
                    "md_seq": book.md_seq,
                    "last_price": book.last_price,
                    "orders": [_order_data(o) for o in book.bids.orders() + book.asks.orders()],
                }
            )
        return {
            "format": SNAPSHOT_FORMAT,
            "seq": self._seq,
            "clock": self._clock,
            "next_order_id": self._next_order_id,
            "next_trade_id": self._next_trade_id,
            "instruments": instruments,
        }

    @classmethod
    def from_snapshot(cls, data: dict[str, Any]) -> Engine:
        try:
            return cls._restore(data)
        except SnapshotError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise SnapshotError(f"malformed engine snapshot: {exc!r}") from exc

    @classmethod
    def _restore(cls, data: dict[str, Any]) -> Engine:
        if data.get("format") != SNAPSHOT_FORMAT:
            raise SnapshotError(f"unsupported snapshot format {data.get('format')!r}")
        engine = cls()
        engine._seq = _int(data["seq"])
        engine._clock = _int(data["clock"])
        engine._next_order_id = _int(data["next_order_id"])
        engine._next_trade_id = _int(data["next_trade_id"])
        for item in data["instruments"]:
            spec = InstrumentSpec(
                symbol=str(item["symbol"]),
                tick_size=_int(item["tick_size"]),
                lot_size=_int(item["lot_size"]),
                min_qty=_int(item["min_qty"]),
                max_qty=_int(item["max_qty"]),
                band_low=_int(item["band_low"]),
                band_high=_int(item["band_high"]),
                status=InstrumentStatus[item["status"]],
            )
            if spec.symbol in engine._books:
                raise SnapshotError(f"instrument {spec.symbol!r} twice")
            book = engine._books[spec.symbol] = Book(spec, _int(item["md_seq"]))
            last_price = item.get("last_price")  # absent in snapshots taken before call auctions
            book.last_price = None if last_price is None else _int(last_price)
            for row in item["orders"]:
                expire_ts = row["expire_ts"]
                order = Order(
                    _int(row["order_id"]), str(row["client_order_id"]), str(row["participant"]),
                    str(row["session"]), spec.symbol, Side[row["side"]], _int(row["price"]), _int(row["qty"]),
                    _int(row["remaining"]), TimeInForce[row["tif"]], None if expire_ts is None else _int(expire_ts),
                    _int(row["accepted_ts"]), bool(row["post_only"]), StpMode[row["stp"]],
                )
                if order.order_id in engine._orders:
                    raise SnapshotError(f"order {order.order_id} twice")
                (book.bids if order.side is _BUY else book.asks).add(order)
                engine._orders[order.order_id] = order
                engine._by_participant.setdefault(order.participant, {})[order.order_id] = order
                if order.expire_ts is not None:
                    engine._gtd_live += 1
                    engine._expiries.append((order.expire_ts, order.order_id))
        heapq.heapify(engine._expiries)
        try:
            engine.validate()
        except InvariantError as exc:
            raise SnapshotError(f"inconsistent engine snapshot: {exc}") from exc
        return engine


# ==================================================================== helpers


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise InvariantError(message)


def _int(value: Any) -> int:
    if type(value) is not int or not -INT64_MAX <= value <= INT64_MAX:
        raise SnapshotError(f"expected an integer, got {value!r}")
    return value


def _crossed(book: Book) -> bool:
    bid = book.bids.best
    ask = book.asks.best
    return bid is not None and ask is not None and -bid >= ask


def _auction(book: Book, reference: int | None) -> tuple[int | None, int, int]:
    """The uncross price, executable volume and imbalance (demand - supply) of ``book``'s levels.

    Candidates are the level prices where the book crosses; the price maximises the executable
    volume, then minimises the absolute imbalance, then the distance to ``reference`` (if any);
    of prices still tied, the highest when every one of them leaves a buy surplus, else the lowest."""
    if not _crossed(book):
        return None, 0, 0
    bids = book.bids
    asks = book.asks
    low = asks.levels[asks.best].price  # type: ignore[index]
    high = bids.levels[bids.best].price  # type: ignore[index]
    bid_levels = [bids.levels[k] for k in bids.keys.irange(maximum=-low)]  # best (highest) first
    ask_levels = [asks.levels[k] for k in asks.keys.irange(maximum=high)]  # best (lowest) first
    demand = sum(level.qty for level in bid_levels)  # at the lowest candidate, every bid in range
    supply = 0
    bi = len(bid_levels) - 1  # the lowest bid level still counted in ``demand``
    ai = 0
    best_key: tuple[int, int, int] | None = None
    tied: list[tuple[int, int, int]] = []  # (price, volume, imbalance)
    while ai < len(ask_levels) or bi >= 0:
        ask_price = ask_levels[ai].price if ai < len(ask_levels) else None
        bid_price = bid_levels[bi].price if bi >= 0 else None
        price = min(p for p in (ask_price, bid_price) if p is not None)
        while ai < len(ask_levels) and ask_levels[ai].price == price:  # supply: asks at or below price
            supply += ask_levels[ai].qty
            ai += 1
        volume = min(demand, supply)
        imbalance = demand - supply
        key = (-volume, abs(imbalance), 0 if reference is None else abs(price - reference))
        if best_key is None or key < best_key:
            best_key = key
            tied = [(price, volume, imbalance)]
        elif key == best_key:
            tied.append((price, volume, imbalance))
        while bi >= 0 and bid_levels[bi].price == price:  # demand above this price: bids at it drop out
            demand -= bid_levels[bi].qty
            bi -= 1
    return tied[-1] if all(t[2] > 0 for t in tied) else tied[0]


def _last_touch(orders: list[Order]) -> dict[tuple[str, Side, int], int]:
    """Index of the last order at each (symbol, side, price) level."""
    return {(o.symbol, o.side, o.price): i for i, o in enumerate(orders)}


def _by_id(order: Order) -> int:
    return order.order_id


def _levels(side: BookSide, depth: int | None) -> tuple[LevelView, ...]:
    keys = side.keys if depth is None else side.keys.islice(0, max(depth, 0))
    levels = side.levels
    out = []
    for key in keys:
        level = levels[key]
        out.append(LevelView(price=level.price, qty=level.qty, count=level.count))
    return tuple(out)


def _view(order: Order) -> OrderView:
    return OrderView(
        order_id=order.order_id,
        client_order_id=order.client_order_id,
        participant=order.participant,
        session=order.session,
        symbol=order.symbol,
        side=order.side,
        price=order.price,
        qty=order.qty,
        remaining=order.remaining,
        tif=order.tif,
        expire_ts=order.expire_ts,
        accepted_ts=order.accepted_ts,
    )


def _order_data(order: Order) -> dict[str, Any]:
    return {
        "order_id": order.order_id,
        "client_order_id": order.client_order_id,
        "participant": order.participant,
        "session": order.session,
        "side": order.side.name,
        "price": order.price,
        "qty": order.qty,
        "remaining": order.remaining,
        "tif": order.tif.name,
        "expire_ts": order.expire_ts,
        "accepted_ts": order.accepted_ts,
        "post_only": order.post_only,
        "stp": order.stp.name,
    }
