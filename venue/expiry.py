"""GTD expiry on time: the venue advances the engine's clock when a resting order falls due.

The engine expires a GTD order only when a command with ``ts >= expire_ts`` meets it. Without
order flow nothing would: the order would stay on the book, in ``/v1/orders`` and holding its
funds. ``ExpiryClock`` knows every resting GTD order's ``expire_ts`` (seeded from the book at start,
then from the event stream) and, when the earliest one is due, submits ``AdvanceTime`` through
the sequencer. The time advance is a journaled command like any other, so recovery replays the
same expiries at the same command seq; its ``OrderExpired`` events release the funding holds and
reach the streams and the store through the usual post-trade listener.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import time
from collections.abc import Callable, Iterable
from typing import Protocol

from engine import AdvanceTime, Event, Fill, OrderAccepted, OrderCancelled, OrderExpired, OrderView, Result
from journal import SequencerFailedError, SequencerStoppedError

log = logging.getLogger(__name__)


class TimeSubmitter(Protocol):
    async def submit(self, cmd: AdvanceTime) -> Result: ...


class ExpiryClock:
    def __init__(self, sequencer: TimeSubmitter, *, clock: Callable[[], int] = time.time_ns,
                 max_sleep_s: float = 0.25) -> None:
        self._sequencer = sequencer
        self._clock = clock
        self._max_sleep_s = max_sleep_s
        self._due: list[tuple[int, int]] = []  # lazy min-heap of (expire_ts, order_id)
        self._live: dict[int, int] = {}  # order_id -> expire_ts of resting GTD orders
        self.advances = 0  # AdvanceTime commands submitted (metrics, tests)

    @classmethod
    def follow(cls, sequencer: TimeSubmitter, resting: Iterable[OrderView],
               subscribe: Callable[[Callable[[Event], None]], object]) -> ExpiryClock:
        """A clock seeded with the resting orders and following the venue's event stream."""
        clock = cls(sequencer)
        clock.seed(resting)
        subscribe(clock.on_event)
        return clock

    def seed(self, orders: Iterable[OrderView]) -> None:
        for view in orders:
            if view.expire_ts is not None:
                self._add(view.order_id, view.expire_ts)

    def on_event(self, event: Event) -> None:
        """Follows the event stream: GTD orders that rest, and those that leave the book."""
        if isinstance(event, OrderAccepted):
            if event.expire_ts is not None:
                self._add(event.order_id, event.expire_ts)
        elif isinstance(event, OrderCancelled | OrderExpired):
            self._live.pop(event.order_id, None)
        elif isinstance(event, Fill):
            if event.maker_remaining == 0:
                self._live.pop(event.maker_order_id, None)
            if event.taker_remaining == 0:
                self._live.pop(event.taker_order_id, None)

    def _add(self, order_id: int, expire_ts: int) -> None:
        self._live[order_id] = expire_ts
        heapq.heappush(self._due, (expire_ts, order_id))

    def next_due(self) -> int | None:
        """The earliest ``expire_ts`` of a resting GTD order (None: nothing to expire)."""
        due = self._due
        while due and self._live.get(due[0][1]) != due[0][0]:
            heapq.heappop(due)
        return due[0][0] if due else None

    async def advance_if_due(self) -> bool:
        """Submits one ``AdvanceTime`` if an order is due; True when it did."""
        due = self.next_due()
        if due is None or due > self._clock():
            return False
        self.advances += 1
        await self._sequencer.submit(AdvanceTime(ts=0))  # the sequencer stamps now (>= due)
        # the OrderExpired events already removed what expired; an order the engine did not
        # expire (gone in the meantime) must not make us spin
        while (nxt := self.next_due()) is not None and nxt <= due:
            self._live.pop(heapq.heappop(self._due)[1], None)
        return True

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                if await self.advance_if_due():
                    continue
            except (SequencerStoppedError, SequencerFailedError):
                return  # the venue is stopping (or failed): no more commands
            due = self.next_due()
            wait = self._max_sleep_s if due is None else min(self._max_sleep_s, max(0.0, (due - self._clock()) / 1e9))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait)
