"""A hand-written in-memory ``VenuePort`` around a real ``engine.Engine``, and a live uvicorn helper.

The fake does what the core does minus compliance, journal and settlement: it stamps ``ts``,
runs the engine, records trades and fans events out to listeners before ``submit`` returns.
Knobs for tests: ``refuse`` (a pre-engine rejection per participant), ``gate`` (hold every
submit until set), ``fail_next`` (make the next submit raise) and ``emit_settlement``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence

import uvicorn
from fastapi import FastAPI

from engine import (
    AddInstrument,
    AmendOrder,
    CancelOrder,
    Engine,
    Event,
    Fill,
    InstrumentSpec,
    InstrumentStatus,
    L2Snapshot,
    MassCancel,
    NewOrder,
    OrderView,
    Result,
    SetInstrumentStatus,
)
from gateway.ports import (
    ApiKey,
    Listing,
    Outcome,
    Rejection,
    Role,
    SettlementNotice,
    Trade,
    Unsubscribe,
)
from market.history import OrderRecord, Page, TradeQuery
from venue.history import VenueHistory
from venueclient.signing import generate_keypair

OrderCommand = NewOrder | AmendOrder | CancelOrder | MassCancel


def make_listing(symbol: str = "OMN-A", **spec: int) -> Listing:
    """Price increment 0.01 cash per note, quantity increment 0.1 note."""
    fields = {"tick_size": 1_000, "lot_size": 10**17, "min_qty": 1, "max_qty": 1_000_000, "band_low": 1,
              "band_high": 10_000_000, **spec}
    return Listing(
        spec=InstrumentSpec(symbol=symbol, **fields),
        name=f"Omnes Mining Note {symbol}",
        token_address="0x" + "11" * 20,
        cash_token_address="0x" + "22" * 20,
        token_decimals=18,
        cash_decimals=6,
    )


@dataclasses.dataclass(frozen=True, slots=True)
class Keyring:
    """A participant's key as a client holds it."""

    key_id: str
    participant: str
    private_key: bytes
    api_key: ApiKey


def make_key(participant: str, role: Role = Role.TRADER) -> Keyring:
    private, public = generate_keypair()
    key_id = f"k-{participant}"
    return Keyring(key_id=key_id, participant=participant, private_key=private,
                   api_key=ApiKey(key_id=key_id, participant=participant, role=role, public_key=public))


class FakeVenue:
    def __init__(self, listings: Sequence[Listing], keys: Sequence[ApiKey]) -> None:
        self.engine = Engine()
        self._listings = {listing.symbol: listing for listing in listings}
        self._keys = {key.key_id: key for key in keys}
        self._last_ts = 0
        self._listeners: list[Callable[[Event], None]] = []
        self._settlement_listeners: list[Callable[[SettlementNotice], None]] = []
        self.trade_log: list[Trade] = []
        self.submitted: list[OrderCommand] = []
        self.refuse: dict[str, Rejection] = {}
        self.gate: asyncio.Event | None = None
        self.fail_next: Exception | None = None
        for listing in listings:
            result = self.engine.process(AddInstrument(ts=self._ts(), spec=listing.spec))
            assert result.code.name == "OK", result

    def _ts(self) -> int:
        self._last_ts = max(self._last_ts + 1, time.time_ns())
        return self._last_ts

    def add_key(self, key: ApiKey) -> None:
        self._keys[key.key_id] = key

    # ------------------------------------------------------------ VenuePort

    def listings(self) -> list[Listing]:
        return list(self._listings.values())

    def listing(self, symbol: str) -> Listing | None:
        return self._listings.get(symbol)

    def api_key(self, key_id: str) -> ApiKey | None:
        return self._keys.get(key_id)

    async def submit(self, participant: str, cmd: OrderCommand) -> Outcome:
        if cmd.participant != participant:
            raise AssertionError(f"command for {cmd.participant} submitted as {participant}")
        if cmd.ts != 0:
            raise AssertionError("the gateway must leave ts to the venue")
        self.submitted.append(cmd)
        if self.gate is not None:
            await self.gate.wait()
        if self.fail_next is not None:
            exc, self.fail_next = self.fail_next, None
            raise exc
        refusal = self.refuse.get(participant)
        if refusal is not None and isinstance(cmd, NewOrder):
            return Outcome(rejection=refusal)
        return Outcome(result=self._apply(dataclasses.replace(cmd, ts=self._ts())))

    async def set_status(self, symbol: str, status: InstrumentStatus, *, operator: str) -> Outcome:
        return Outcome(result=self._apply(SetInstrumentStatus(ts=self._ts(), symbol=symbol, status=status)))

    def _apply(self, cmd: OrderCommand | SetInstrumentStatus) -> Result:
        result: Result = self.engine.process(cmd)
        for ev in result.events:
            if isinstance(ev, Fill):
                self.trade_log.append(Trade.from_fill(ev))
            for listener in tuple(self._listeners):
                listener(ev)
        return result

    def l2(self, symbol: str, depth: int | None = None) -> L2Snapshot:
        snap: L2Snapshot = self.engine.l2(symbol, depth)
        return snap

    def order(self, order_id: int) -> OrderView | None:
        view: OrderView | None = self.engine.order(order_id)
        return view

    def open_orders(self, participant: str, symbol: str | None = None) -> list[OrderView]:
        views: list[OrderView] = self.engine.open_orders(participant, symbol)
        return views

    def trades(self, *, symbol: str | None = None, participant: str | None = None,
               limit: int = 100) -> list[Trade]:
        out = [t for t in reversed(self.trade_log)
               if (symbol is None or t.symbol == symbol)
               and (participant is None or participant in (t.buyer, t.seller))]
        return out[:limit]

    async def order_record(self, participant: str, order_id: int) -> OrderRecord | None:
        return await self._history().order_record(participant, order_id)

    async def trade_history(self, query: TradeQuery) -> Page[Trade]:
        return await self._history().trade_history(query)

    def _history(self) -> VenueHistory:  # the core's history without a store: memory only
        return VenueHistory(recent_trades=lambda: reversed(self.trade_log), current_trade=lambda _: None,
                            live_order=self.order)

    def subscribe_events(self, listener: Callable[[Event], None]) -> Unsubscribe:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def subscribe_settlements(self, listener: Callable[[SettlementNotice], None]) -> Unsubscribe:
        self._settlement_listeners.append(listener)
        return lambda: self._settlement_listeners.remove(listener)

    def emit_settlement(self, notice: SettlementNotice) -> None:
        for listener in tuple(self._settlement_listeners):
            listener(notice)


@contextlib.asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[str]:
    """Runs ``app`` under uvicorn on a free loopback port in this event loop; yields its base URL."""
    # proto IPPROTO_TCP: asyncio sets TCP_NODELAY on accepted sockets only then (else +40 ms per
    # response from Nagle + delayed ACK)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="on", ws="websockets-sansio",
                            timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


@contextlib.contextmanager
def serve_in_thread(app: FastAPI) -> Iterator[str]:
    """Like ``serve`` but in a thread with its own event loop, for synchronous callers
    (schemathesis, the benchmark's baseline). Only touch the venue through HTTP meanwhile."""
    started = threading.Event()
    urls: list[str] = []
    stop: list[Callable[[], None]] = []
    errors: list[BaseException] = []

    async def main() -> None:
        async with serve(app) as base:
            done = asyncio.Event()
            loop = asyncio.get_running_loop()
            stop.append(lambda: loop.call_soon_threadsafe(done.set))
            urls.append(base)
            started.set()
            await done.wait()

    def run() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:
            errors.append(exc)
            started.set()

    thread = threading.Thread(target=run, name="gateway-under-test", daemon=True)
    thread.start()
    started.wait(30)
    if errors:
        raise errors[0]
    try:
        yield urls[0]
    finally:
        stop[0]()
        thread.join(30)
