"""Call auctions on a schedule: the venue side of the engine's ``CALL`` phase (issue 15).

The engine knows the phases (``InstrumentStatus.CALL``) and the uncross (``Uncross``), but has no
clock: ``AuctionClock`` decides *when*, and submits journaled commands through the sequencer like
``ExpiryClock`` does, so recovery replays every phase change and uncross at the same command seq.

- A listing with ``call_interval_s`` (``listings.json``) trades in periodic call auctions: when it
  is open the clock puts it into a call, and every ``call_interval_s`` seconds of a call it submits
  ``Uncross(then=CALL)``: the book uncrosses and the next call starts at once.
- Any other instrument found in a call (an operator's ``call`` status, or a halted instrument
  resumed through a call: ``ReferenceMonitor.resume_status``) is uncrossed after ``resume_call_s``
  seconds into continuous trading (``then=OPEN``).
- The reference price of an uncross is the NAV in force (ticks, rounded; ``venue.refprice``) where
  attestations exist, else the instrument's last trade price, else none.

Halted, pre-open and closed instruments are left alone. A call's timer starts when the clock first
sees the instrument in the call (after a restart: again from the restart).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from fractions import Fraction
from typing import Protocol

from engine import Event, Fill, InstrumentStatus, L2Snapshot, Result, SetInstrumentStatus, Uncross
from journal import SequencerFailedError, SequencerStoppedError
from venue.listings import ListingRules

log = logging.getLogger(__name__)

DEFAULT_RESUME_CALL_S = 30.0


class CommandSink(Protocol):
    async def submit(self, cmd: SetInstrumentStatus | Uncross) -> Result: ...


class Books(Protocol):
    def symbols(self) -> tuple[str, ...]: ...

    def l2(self, symbol: str, depth: int | None = None) -> L2Snapshot: ...


class AuctionClock:
    def __init__(
        self,
        sequencer: CommandSink,
        books: Books,
        *,
        interval: Callable[[str], float | None],
        nav: Callable[[str], Fraction | None] = lambda _symbol: None,
        resume_call_s: float = DEFAULT_RESUME_CALL_S,
        clock: Callable[[], float] = time.monotonic,
        max_sleep_s: float = 0.25,
    ) -> None:
        self._sequencer = sequencer
        self._books = books
        self._interval = interval  # a listing's call_interval_s: None = continuous trading
        self._nav = nav
        self.resume_call_s = resume_call_s
        self._clock = clock
        self._max_sleep_s = max_sleep_s
        self._call_since: dict[str, float] = {}  # symbol -> when this clock first saw the current call
        self._last_trade: dict[str, int] = {}
        self.uncrosses = 0  # Uncross commands submitted (metrics, tests)
        self.calls = 0  # SetInstrumentStatus(CALL) commands submitted

    def on_event(self, event: Event) -> None:
        """Follows the event stream for the last trade price (the reference without a NAV)."""
        if isinstance(event, Fill):
            self._last_trade[event.symbol] = event.price

    def reference(self, symbol: str) -> int | None:
        nav = self._nav(symbol)
        if nav is not None and nav > 0:
            return max(1, round(nav))
        return self._last_trade.get(symbol)

    def duration(self, symbol: str) -> float:
        """How long a call of ``symbol`` lasts: its listing's interval, else ``resume_call_s``."""
        interval = self._interval(symbol)
        return self.resume_call_s if interval is None else interval

    async def step(self) -> int:
        """One pass over the instruments; returns the number of commands submitted."""
        submitted = 0
        now = self._clock()
        for symbol in self._books.symbols():
            status = self._books.l2(symbol, 0).status
            periodic = self._interval(symbol) is not None
            if status is not InstrumentStatus.CALL:
                self._call_since.pop(symbol, None)
                if periodic and status is InstrumentStatus.OPEN:
                    result = await self._sequencer.submit(
                        SetInstrumentStatus(ts=0, symbol=symbol, status=InstrumentStatus.CALL))
                    self.calls += 1
                    submitted += 1
                    if result.code.name == "OK":
                        self._call_since[symbol] = now
                continue
            since = self._call_since.setdefault(symbol, now)
            if now - since < self.duration(symbol):
                continue
            then = InstrumentStatus.CALL if periodic else InstrumentStatus.OPEN
            result = await self._sequencer.submit(
                Uncross(ts=0, symbol=symbol, reference_price=self.reference(symbol), then=then))
            self.uncrosses += 1
            submitted += 1
            if result.code.name != "OK":
                log.warning("uncross of %s refused: %s", symbol, result.code.name)
            self._call_since[symbol] = now
            if then is InstrumentStatus.OPEN:
                self._call_since.pop(symbol, None)
        return submitted

    def next_due(self) -> float | None:
        """Seconds until the earliest uncross due (None: no instrument in a call)."""
        now = self._clock()
        waits = [since + self.duration(symbol) - now for symbol, since in self._call_since.items()]
        return max(0.0, min(waits)) if waits else None

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.step()
            except (SequencerStoppedError, SequencerFailedError):
                return  # the venue is stopping (or failed): no more commands
            due = self.next_due()
            wait = self._max_sleep_s if due is None else min(self._max_sleep_s, due)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait)


class RulesSource(Protocol):
    def rules(self, symbol: str) -> ListingRules | None: ...

    def nav(self, symbol: str) -> Fraction | None: ...


class Monitor(RulesSource, Protocol):
    resume_status: InstrumentStatus


def auction_clock(sequencer: CommandSink, books: Books, monitor: Monitor | None,
                  subscribe: Callable[[Callable[[Event], None]], object], *,
                  resume_call_s: float | None = None) -> AuctionClock:
    """The venue's clock: listing rules and NAVs from the reference monitor, last trades from the
    events; with ``resume_call_s`` the monitor's resumes go through a call of that length."""
    if monitor is not None and resume_call_s is not None:
        monitor.resume_status = InstrumentStatus.CALL
    def interval(symbol: str) -> float | None:
        rules = None if monitor is None else monitor.rules(symbol)
        return None if rules is None or rules.call_interval_s is None else float(rules.call_interval_s)

    nav: Callable[[str], Fraction | None] = (lambda _symbol: None) if monitor is None else monitor.nav
    clock = AuctionClock(sequencer, books, interval=interval, nav=nav,
                         resume_call_s=DEFAULT_RESUME_CALL_S if resume_call_s is None else resume_call_s)
    subscribe(clock.on_event)
    return clock
