"""Fair admission of websocket order commands to the venue, across sessions.

Without it the venue's command queue is first come, first served: a session that pipelines
hundreds of orders puts them all in front of another session's single order, whose ack then
waits for the whole backlog. With it at most ``capacity`` commands of all sessions are inside the
venue at once; when that is full, sessions wait in their own FIFO queues and freed slots are
handed out round-robin, one command per waiting session per turn. A session's own commands keep
their order (its queue is FIFO and never bypassed), and an idle venue admits immediately.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque


class FairScheduler:
    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._free = capacity
        self._waiting: OrderedDict[str, deque[asyncio.Future[None]]] = OrderedDict()

    @property
    def in_use(self) -> int:
        return self.capacity - self._free

    def waiting(self, session: str) -> int:
        return len(self._waiting.get(session, ()))

    async def acquire(self, session: str) -> None:
        """Returns once ``session`` may hand one command to the venue; ``release`` afterwards."""
        if self._free > 0 and not self._waiting:
            self._free -= 1  # no suspension: the caller reaches the venue in its arrival order
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(session, deque()).append(fut)
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release()  # the slot was handed to us as we were cancelled: pass it on
            else:
                self._forget(session, fut)
            raise

    def release(self) -> None:
        while self._waiting:
            session, queue = next(iter(self._waiting.items()))
            fut = queue.popleft()
            if queue:
                self._waiting.move_to_end(session)  # round-robin: the next session goes first next time
            else:
                del self._waiting[session]
            if not fut.done():
                fut.set_result(None)  # the slot passes straight to the waiter
                return
        self._free += 1

    def _forget(self, session: str, fut: asyncio.Future[None]) -> None:
        queue = self._waiting.get(session)
        if queue is None:
            return
        try:
            queue.remove(fut)
        except ValueError:
            return
        if not queue:
            del self._waiting[session]
