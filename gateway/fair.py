"""Fair admission of websocket order commands to the venue, across sessions.

Without it the venue's command queue is first come, first served: a session that pipelines
hundreds of orders puts them all in front of another session's single order, whose ack then
waits for the whole backlog. With it at most ``capacity`` commands of all sessions are inside the
venue at once; when that is full, sessions wait in their own FIFO queues and freed slots are
handed out round-robin, one admission per waiting session per turn. A session's own commands keep
their order (its queue is FIFO and never bypassed), and an idle venue admits immediately.

A batch of new orders (``gateway.ws``) is admitted as one unit that takes one slot per order
(``weight``, at most ``capacity``), so batching does not let more orders into the venue than
single commands could. The turn waits until the head waiter's weight is free (no skipping ahead:
a large batch is not starved by small ones).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque

_Waiter = tuple[asyncio.Future[None], int]


class FairScheduler:
    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._free = capacity
        self._waiting: OrderedDict[str, deque[_Waiter]] = OrderedDict()

    @property
    def in_use(self) -> int:
        return self.capacity - self._free

    def waiting(self, session: str) -> int:
        return len(self._waiting.get(session, ()))

    def weight_of(self, commands: int) -> int:
        """The slots a batch of ``commands`` takes (between 1 and ``capacity``)."""
        return max(1, min(commands, self.capacity))

    async def acquire(self, session: str, weight: int = 1) -> None:
        """Returns once ``session`` may hand ``weight`` commands to the venue (``weight_of``);
        ``release(weight)`` afterwards."""
        weight = self.weight_of(weight)
        if self._free >= weight and not self._waiting:
            self._free -= weight  # no suspension: the caller reaches the venue in its arrival order
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(session, deque()).append((fut, weight))
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release(weight)  # the slots were handed to us as we were cancelled: pass them on
            else:
                self._forget(session, fut)
            raise

    def release(self, weight: int = 1) -> None:
        self._free += self.weight_of(weight)
        self._hand_out()

    def _hand_out(self) -> None:
        while self._waiting:
            session, queue = next(iter(self._waiting.items()))
            fut, need = queue[0]
            if fut.done():  # cancelled, its task not yet resumed to forget it
                queue.popleft()
                if not queue:
                    del self._waiting[session]
                continue
            if need > self._free:
                return  # the head waits for its slots; nobody overtakes it
            queue.popleft()
            if queue:
                self._waiting.move_to_end(session)  # round-robin: the next session goes first next time
            else:
                del self._waiting[session]
            self._free -= need
            fut.set_result(None)  # the slots pass straight to the waiter

    def _forget(self, session: str, fut: asyncio.Future[None]) -> None:
        queue = self._waiting.get(session)
        if queue is None:
            return
        for item in queue:
            if item[0] is fut:
                queue.remove(item)
                break
        else:
            return
        if not queue:
            del self._waiting[session]
        self._hand_out()  # a large head waiter left: the next ones may fit now
