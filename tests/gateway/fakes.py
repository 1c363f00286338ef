"""The gateway suite's venue (the real ``VenueCore`` with test knobs) and a live uvicorn helper.

``FakeVenue`` is the real core without compliance, journal, store and settlement (an inline
sequencer applies each command at once), plus knobs for the gateway's failure paths.
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
    Command,
    Engine,
    InstrumentSpec,
    MassCancel,
    NewOrder,
    Result,
)
from gateway.ports import (
    ApiKey,
    Listing,
    Outcome,
    Rejection,
    Role,
    SettlementNotice,
    Trade,
)
from venue.core import VenueCore
from venue.trades import Fanout, Unsubscribe
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


class InlineSequencer:
    """The sequencer minus the journal: stamps ``ts``, numbers and applies each command at once, in
    order, and tells listeners before the caller's future resolves (as ``journal.Sequencer`` does)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._seq = 0
        self._last_ts = 0
        self._listeners: list[Callable[[int, Command, Result], None]] = []

    @property
    def next_seq(self) -> int:
        return self._seq + 1

    def stamp(self) -> int:
        self._last_ts = max(self._last_ts + 1, time.time_ns())
        return self._last_ts

    def enqueue(self, cmd: Command) -> tuple[int, Command, asyncio.Future[Result]]:
        self._seq += 1
        stamped = dataclasses.replace(cmd, ts=self.stamp())
        result: Result = self.engine.process(stamped)
        for listener in tuple(self._listeners):
            listener(self._seq, stamped, result)
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        future.set_result(result)
        return self._seq, stamped, future

    async def submit(self, cmd: Command) -> Result:
        return await self.enqueue(cmd)[2]

    def subscribe(self, listener: Callable[[int, Command, Result], None]) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)


class FakeVenue(VenueCore):
    """The real ``VenueCore`` over a real engine (no journal, compliance, store or chain), with
    knobs for tests: ``refuse`` (a pre-engine rejection per participant), ``gate`` (hold every
    submit until set), ``fail_next`` (make the next submit raise) and ``emit_settlement``."""

    def __init__(self, listings: Sequence[Listing], keys: Sequence[ApiKey]) -> None:
        self.engine = Engine()
        sequencer = InlineSequencer(self.engine)
        for listing in listings:
            result = self.engine.process(AddInstrument(ts=sequencer.stamp(), spec=listing.spec))
            assert result.code.name == "OK", result
        super().__init__(engine=self.engine, sequencer=sequencer, listings=listings, keys=keys)
        self.submitted: list[OrderCommand] = []
        self.refuse: dict[str, Rejection] = {}
        self.gate: asyncio.Event | None = None
        self.fail_next: Exception | None = None
        self._settlements: Fanout[SettlementNotice] = Fanout()

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
        return await super().submit(participant, cmd)

    async def submit_batch(self, participant: str,
                           cmds: Sequence[NewOrder | CancelOrder | MassCancel]) -> list[Outcome]:
        """The real batch path (``VenueCore.submit_batch``) unless a test hook is set or ``submit``
        is overridden: then each command goes through ``submit``, started in order."""
        if type(self).submit is FakeVenue.submit and self.gate is None and self.fail_next is None and not self.refuse:
            for cmd in cmds:
                if cmd.ts != 0:
                    raise AssertionError("the gateway must leave ts to the venue")
            self.submitted.extend(cmds)
            return await super().submit_batch(participant, cmds)
        tasks = [asyncio.ensure_future(self.submit(participant, cmd)) for cmd in cmds]
        return list(await asyncio.gather(*tasks))

    @property
    def trade_log(self) -> list[Trade]:
        """Every trade, oldest first."""
        return list(reversed(self.trades(limit=1 << 30)))

    def subscribe_settlements(self, listener: Callable[[SettlementNotice], None]) -> Unsubscribe:
        """Settlement notices are the test's to give (``emit_settlement``): no settlement service runs."""
        return self._settlements.add(listener)

    def emit_settlement(self, notice: SettlementNotice) -> None:
        self._settlements.emit(notice)


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
