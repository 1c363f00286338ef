"""Demo trading bots that use the public client over real sockets, like any participant would.

- ``MarketMaker``: quotes both sides over one websocket (cancel-on-disconnect), re-quotes as its
  fair value drifts (amends keep or lose priority per the engine's rules), now and then pulls
  everything with a mass cancel.
- ``Investor``: trades over REST: mostly marketable limit IOC orders against the quotes, sometimes
  a passive limit that rests, sometimes a cancel.
- ``OffBookTrader``: a request for quotes answered and taken, then a pre-arranged block trade
  confirmed by both parties, once per round.
- ``CallTrader``: trades an instrument in periodic call auctions over REST: GTC limit orders on
  both sides of a drifting fair value (IOC/FOK are refused during a call), so bids and offers overlap,
  the indicative uncross moves and each uncross trades; it keeps a few orders resting at most.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from venueclient import ApiError, TransportError, VenueClient, VenueStream
from venueclient.book import Level

log = logging.getLogger(__name__)


@dataclass(slots=True)
class BotStats:
    orders: int = 0
    rejected: int = 0
    errors: int = 0
    reject_codes: dict[str, int] = field(default_factory=dict)

    def rejected_with(self, code: str) -> None:
        self.rejected += 1
        self.reject_codes[code] = self.reject_codes.get(code, 0) + 1


def _price(value: Decimal, increment: Decimal) -> Decimal:
    return (value / increment).to_integral_value() * increment


class MarketMaker:
    def __init__(
        self,
        client: VenueClient,
        symbol: str,
        *,
        fair: Decimal,
        increment: Decimal,
        levels: int = 3,
        spread_bps: int = 20,
        step_bps: int = 10,
        size: int = 2,
        interval: float = 0.5,
        seed: int = 1,
    ) -> None:
        self.client = client
        self.symbol = symbol
        self.fair = fair
        self.increment = increment
        self.levels = levels
        self.spread_bps = spread_bps
        self.step_bps = step_bps
        self.size = size
        self.interval = interval
        self.rng = random.Random(seed)
        self.stats = BotStats()
        self._quotes: dict[tuple[str, int], int] = {}  # (side, level) -> order id
        self._sizes: dict[int, tuple[int, int]] = {}  # order id -> (total qty, filled qty) as last acknowledged

    def _level_price(self, side: str, level: int) -> Decimal:
        offset = Decimal(self.spread_bps / 2 + level * self.step_bps) / Decimal(10_000)
        raw = self.fair * (1 - offset) if side == "buy" else self.fair * (1 + offset)
        return _price(raw, self.increment)

    async def run(self, stop: asyncio.Event) -> None:
        stream = await self.client.connect(cancel_on_disconnect=True)
        try:
            await stream.subscribe("fills")
            book = await stream.local_book(self.symbol)
            while not stop.is_set():
                self.fair = _price(self.fair * Decimal(1 + self.rng.gauss(0, 0.0008)), self.increment)
                self.absorb(stream.received())
                if self.rng.random() < 0.05:
                    await self._pull(stream)
                else:
                    await self._requote(stream, book.best_bid(), book.best_ask())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.interval)
        finally:
            with contextlib.suppress(ApiError, TransportError):
                await stream.mass_cancel(self.symbol)
            await stream.close()

    async def _pull(self, stream: VenueStream) -> None:
        with contextlib.suppress(ApiError):
            await stream.mass_cancel(self.symbol)
        self._quotes.clear()
        self._sizes.clear()

    def _amended_qty(self, order_id: int, wanted: int) -> int:
        """An amend's new total quantity: ``wanted`` more than what was filled, and never below the
        total the venue last acknowledged. Fills may arrive unseen before the amend is applied, but
        they never exceed the order's total while it rests, so the venue never answers
        AMEND_QTY_TOO_LOW (the new total must be above the filled quantity)."""
        total, filled = self._sizes.get(order_id, (0, 0))
        return max(total, filled + wanted)

    def _acknowledged(self, ack: dict[str, object]) -> None:
        with contextlib.suppress(KeyError, ValueError, TypeError):
            self._sizes[int(str(ack["order_id"]))] = (int(Decimal(str(ack["qty"]))),
                                                      int(Decimal(str(ack.get("filled_qty", "0")))))

    def absorb(self, messages: list[dict[str, Any]]) -> None:
        """Fills of our quotes seen on the ``fills`` channel: a filled quote is quoted afresh (an
        amend would get UNKNOWN_ORDER), a partly filled one keeps its filled quantity for the amend."""
        for msg in messages:
            if msg.get("channel") != "fills":
                continue
            with contextlib.suppress(KeyError, ValueError, TypeError, ArithmeticError):
                order_id, remaining = int(msg["order_id"]), int(Decimal(str(msg["remaining_qty"])))
                if remaining == 0:
                    self._sizes.pop(order_id, None)
                    for slot in [k for k, v in self._quotes.items() if v == order_id]:
                        del self._quotes[slot]
                elif order_id in self._sizes:
                    total, filled = self._sizes[order_id]
                    self._sizes[order_id] = (total, max(filled, total - remaining))

    def _passive(self, side: str, price: Decimal, best_bid: Level | None, best_ask: Level | None) -> Decimal:
        """``price``, moved back to one increment inside the other side's best price when the fair
        value's drift would make a post-only quote cross (POST_ONLY_WOULD_CROSS)."""
        if side == "buy" and best_ask is not None:
            return min(price, best_ask[0] - self.increment)
        if side == "sell" and best_bid is not None:
            return max(price, best_bid[0] + self.increment)
        return price

    async def _requote(self, stream: VenueStream, best_bid: Level | None = None,
                       best_ask: Level | None = None) -> None:
        for side in ("buy", "sell"):
            for level in range(self.levels):
                price = self._passive(side, self._level_price(side, level), best_bid, best_ask)
                qty = self.size + self.rng.randrange(0, 3)
                order_id = self._quotes.get((side, level))
                try:
                    self.stats.orders += 1
                    if order_id is None:
                        ack = await stream.place(self.symbol, side, qty, price, post_only=True)
                        self._quotes[(side, level)] = int(ack["order_id"])
                    else:
                        ack = await stream.amend(order_id, price=price, qty=self._amended_qty(order_id, qty))
                    self._acknowledged(ack)
                except ApiError as exc:
                    self.stats.rejected_with(exc.code)
                    # filled, cancelled, would cross, or an amend below the filled quantity: make sure
                    # nothing is left behind, then quote afresh next round
                    stale = self._quotes.pop((side, level), None)
                    self._sizes.pop(stale or 0, None)
                    if stale is not None and exc.code != "UNKNOWN_ORDER":
                        with contextlib.suppress(ApiError):
                            await stream.cancel(stale)
                except TransportError:
                    self.stats.errors += 1
                    raise


class _PacedBot:
    """A bot that acts every ``interval`` seconds (jittered +-50 %) until ``stop``; a refusal is
    counted by code, a transport error counted, and the bot carries on."""

    interval: float
    rng: random.Random
    stats: BotStats

    async def _act(self) -> None:
        raise NotImplementedError

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self._act()
            except ApiError as exc:
                self.stats.rejected_with(exc.code)
            except TransportError:
                self.stats.errors += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval * (0.5 + self.rng.random()))


class Investor(_PacedBot):
    def __init__(self, client: VenueClient, symbol: str, *, increment: Decimal, interval: float = 1.5,
                 max_qty: int = 3, seed: int = 2) -> None:
        self.client = client
        self.symbol = symbol
        self.increment = increment
        self.interval = interval
        self.max_qty = max_qty
        self.rng = random.Random(seed)
        self.stats = BotStats()


    async def _act(self) -> None:
        book = await self.client.book(self.symbol, depth=5)
        bids, asks = book.get("bids", []), book.get("asks", [])
        side = self.rng.choice(("buy", "sell"))
        qty = self.rng.randint(1, self.max_qty)
        roll = self.rng.random()
        self.stats.orders += 1
        if roll < 0.7 and (asks if side == "buy" else bids):
            best = Decimal((asks if side == "buy" else bids)[0]["price"])
            await self.client.place(self.symbol, side, qty, best, tif="ioc")
        elif roll < 0.9 and bids and asks:
            mid = (Decimal(bids[0]["price"]) + Decimal(asks[0]["price"])) / 2
            away = Decimal(1 + (0.003 if side == "sell" else -0.003))
            await self.client.place(self.symbol, side, qty, _price(mid * away, self.increment), tif="gtc")
        else:
            orders = await self.client.my_orders(self.symbol)
            if orders:
                await self.client.cancel(int(self.rng.choice(orders)["order_id"]))


class OffBookTrader:
    """Negotiated trades between three demo participants, one round every ``interval`` seconds:
    ``requester`` asks for quotes (a request for quotes), ``dealer`` answers with a firm quote just
    off its fair value and the requester takes it; then ``requester`` and ``dealer`` confirm a
    pre-arranged block of ``block_qty`` at the fair value, each with its own signed request."""

    def __init__(self, requester: VenueClient, dealer: VenueClient, symbol: str, *, fair: Decimal,
                 increment: Decimal, requester_id: str, dealer_id: str, block_qty: int, rfq_qty: int = 3,
                 interval: float = 20.0, first_after: float = 3.0) -> None:
        self.requester, self.dealer = requester, dealer
        self.requester_id, self.dealer_id = requester_id, dealer_id
        self.symbol = symbol
        self.fair = fair
        self.increment = increment
        self.block_qty = block_qty
        self.rfq_qty = rfq_qty
        self.interval = interval
        self.first_after = first_after
        self.rfq_trades: list[int] = []
        self.block_trades: list[int] = []
        self.stats = BotStats()
        self._round = 0

    async def run(self, stop: asyncio.Event) -> None:
        wait = self.first_after
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait)
                return
            wait = self.interval
            self._round += 1
            try:
                await self.rfq_round()
                await self.block_round()
            except ApiError as err:
                self.stats.rejected_with(err.code)
                log.info("off-book round refused: %s", err)
            except TransportError as err:
                self.stats.errors += 1
                log.info("off-book round failed: %s", err)

    async def rfq_round(self) -> None:
        side = "buy" if self._round % 2 else "sell"
        rfq = await self.requester.request_quotes(self.symbol, side, self.rfq_qty, ttl_s=30)
        spread = self.fair * Decimal("0.001")  # 10 bps away from fair, in the dealer's favour
        price = _price(self.fair + spread if side == "buy" else self.fair - spread, self.increment)
        quote = await self.dealer.quote_rfq(rfq["rfq_id"], price, self.rfq_qty, ttl_s=20)
        self.stats.orders += 1
        done = await self.requester.accept_quote(rfq["rfq_id"], quote["quote_id"])
        self.rfq_trades.append(done["trade_id"])

    async def block_round(self) -> None:
        block_id = f"demo-{self._round}"
        price = _price(self.fair, self.increment)
        side = "sell" if self._round % 2 else "buy"
        await self.requester.submit_block(block_id, self.symbol, side, price, self.block_qty,
                                          counterparty=self.dealer_id)
        mirror = "buy" if side == "sell" else "sell"
        done = await self.dealer.submit_block(block_id, self.symbol, mirror, price, self.block_qty,
                                              counterparty=self.requester_id)
        self.stats.orders += 2
        self.block_trades.append(done["trade_id"])


class CallTrader(_PacedBot):
    """One participant in periodic call auctions: every ``interval`` seconds a GTC limit buy or sell
    within ``spread_bps`` either side of its fair value (which drifts), so bids and offers overlap
    around it and the uncross executes; with ``max_open`` orders resting it cancels its oldest first.
    An order filled at an uncross between the listing of its orders and the cancel is not an error."""

    def __init__(self, client: VenueClient, symbol: str, *, fair: Decimal, increment: Decimal,
                 interval: float = 2.0, max_qty: int = 2, max_open: int = 4, spread_bps: int = 30,
                 seed: int = 3) -> None:
        self.client = client
        self.symbol = symbol
        self.fair = fair
        self.increment = increment
        self.interval = interval
        self.max_qty = max_qty
        self.max_open = max_open
        self.spread_bps = spread_bps
        self.rng = random.Random(seed)
        self.stats = BotStats()


    def next_order(self) -> tuple[str, int, Decimal]:
        """(side, quantity, limit price) of the next order; the fair value drifts a little first."""
        self.fair = _price(self.fair * Decimal(1 + self.rng.gauss(0, 0.0005)), self.increment)
        side = self.rng.choice(("buy", "sell"))
        offset = Decimal(self.rng.uniform(-1.0, 1.0) * self.spread_bps) / Decimal(10_000)
        return side, self.rng.randint(1, self.max_qty), _price(self.fair * (1 + offset), self.increment)

    async def _act(self) -> None:
        orders = await self.client.my_orders(self.symbol)
        if len(orders) >= self.max_open:
            oldest = min(orders, key=lambda o: int(o["order_id"]))
            try:
                await self.client.cancel(int(oldest["order_id"]))
            except ApiError as exc:
                if exc.code != "UNKNOWN_ORDER":  # filled at an uncross in the meantime
                    raise
        side, qty, price = self.next_order()
        self.stats.orders += 1
        await self.client.place(self.symbol, side, qty, price, tif="gtc")
