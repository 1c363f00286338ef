"""The venue's port to the store: projection, settlement records, eligibility decisions, audit.

Settlement states are the venue's promises, so they are written before anyone hears of them:
``record_settlement(notice, then)`` queues the state, one background task writes the queue in
order (one transaction per batch, in a worker thread) and calls ``then`` (which tells subscribers
and the ledger) only after the write committed. A failing database is retried with backoff until
it answers; nothing is dropped. The backlog is bounded: ``full`` makes intake refuse new orders
(``STORE_BACKLOG``) instead of letting the queue grow without limit, and ``backlog`` /
``oldest_age_s`` show it in the metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

import compliance
import store as store_pkg
from engine import Command, Result
from gateway.metrics import REGISTRY
from market import codes
from market.model import AuditEntry, Rejection, SettlementNotice, SettlementUpdate

log = logging.getLogger(__name__)

DEFAULT_MAX_BACKLOG = 50_000
_MAX_BATCH = 500


@dataclass(frozen=True, slots=True)
class _Queued:
    update: SettlementUpdate
    then: Callable[[], None] | None
    since: float  # time.monotonic() when queued


class StoreAdapter:
    """What the core needs from the store. Projection goes through the async ``StoreWriter``;
    settlement states through the ordered, retried settlement queue (see the module doc);
    eligibility decisions are batched (retried, never on the order path); audit entries are
    written at once (operator actions are rare; during an outage they raise ``StoreError``)."""

    def __init__(
        self,
        store: store_pkg.Store,
        writer: store_pkg.StoreWriter,
        *,
        max_backlog: int = DEFAULT_MAX_BACKLOG,
        retry_initial_s: float = 0.05,
        retry_max_s: float = 2.0,
    ) -> None:
        self.store = store
        self.writer = writer
        self.max_backlog = max_backlog
        self._retry_initial_s = retry_initial_s
        self._retry_max_s = retry_max_s
        self._queue: deque[_Queued] = deque()
        self._final_through: int | None = None  # chain position to record after the queued states
        self._written_through = -1
        self._decisions: list[store_pkg.EligibilityDecision] = []
        self._premiums: list[store_pkg.TradePremium] = []
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()  # one writer at a time keeps the order
        self._wakeup: asyncio.Event | None = None
        self.write_failures = 0
        self.last_error: str | None = None

    # ------------------------------------------------------------ projection

    def enqueue(self, cmd_seq: int, cmd: Command, result: Result) -> None:
        self.writer.enqueue(cmd_seq, cmd, result)

    # ------------------------------------------------------------ settlement states

    def record_settlement(self, notice: SettlementNotice, then: Callable[[], None] | None = None) -> None:
        update = SettlementUpdate(
            trade_id=notice.trade_id, status=notice.state,
            tx_hash=notice.tx_hash, block=notice.block, gas_used=notice.gas_used, reason=notice.reason,
            updated_ts=time.time_ns(),
        )
        with self._lock:
            self._queue.append(_Queued(update, then, time.monotonic()))
        if self._wakeup is not None:
            self._wakeup.set()

    def record_final_through(self, block: int | None) -> None:
        """The settlement service's ``final_through``: written after the states queued before it."""
        if block is None:
            return
        with self._lock:
            if block > max(self._final_through or -1, self._written_through):
                self._final_through = block
        if self._wakeup is not None:
            self._wakeup.set()

    @property
    def backlog(self) -> int:
        """Settlement states, eligibility decisions and projection commands not yet in the store."""
        return len(self._queue) + len(self._decisions) + len(self._premiums) + self.writer.pending

    @property
    def oldest_age_s(self) -> float:
        with self._lock:
            oldest = self._queue[0].since if self._queue else None
        return 0.0 if oldest is None else time.monotonic() - oldest

    @property
    def full(self) -> bool:
        return self.backlog >= self.max_backlog

    def _write_some(self) -> list[_Queued]:
        """Write the head of the queue in one transaction (blocking); raises ``StoreError``.
        Returns the states written (the batch is taken here, under the lock, so a state queued
        after the caller looked is never written untold); their ``then`` callbacks are the
        caller's to run."""
        with self._write_lock:
            with self._lock:
                batch = [self._queue[i] for i in range(min(_MAX_BATCH, len(self._queue)))]
                final_through = self._final_through if len(batch) == len(self._queue) else None
            if not batch and final_through is None:
                return []
            self.store.record_settlements([q.update for q in batch], final_through=final_through)
            with self._lock:
                for _ in batch:
                    self._queue.popleft()
                if final_through is not None:
                    self._written_through = max(self._written_through, final_through)
                    if self._final_through == final_through:
                        self._final_through = None
            return batch

    async def run(self, stop: asyncio.Event, position: Callable[[], int | None] | None = None) -> None:
        """Write queued states until ``stop`` is set and the queue is empty; a failing database is
        retried with exponential backoff (capped), the queue kept in order. ``position`` (the
        settlement service's ``final_through``) is recorded after the states queued before it."""
        self._wakeup = asyncio.Event()
        collector = _BacklogMetrics(self)
        registered = True
        try:
            REGISTRY.register(collector)
        except ValueError:  # another venue in this process already reports its backlog
            registered = False
        try:
            await self._run(stop, position)
        finally:
            if registered:
                REGISTRY.unregister(collector)

    async def _run(self, stop: asyncio.Event, position: Callable[[], int | None] | None) -> None:
        wakeup = self._wakeup
        assert wakeup is not None
        delay = self._retry_initial_s
        while True:
            if position is not None:
                self.record_final_through(position())
            with self._lock:
                idle = not self._queue and self._final_through is None
            if idle:
                if stop.is_set():
                    return
                wakeup.clear()
                waits = {asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wakeup.wait())}
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED, timeout=1.0)
                for w in waits:
                    w.cancel()
                await self._flush_decisions()
                continue
            try:
                written = await asyncio.to_thread(self._write_some)
            except store_pkg.InvalidRecordError as exc:  # never writable: set it aside, keep the rest going
                self._told(await asyncio.to_thread(self._set_aside_invalid, exc))
                continue
            except store_pkg.StoreError as exc:
                self.write_failures += 1
                self.last_error = str(exc)
                log.warning("cannot record %d settlement states (oldest %.1fs), retrying in %.2fs: %s",
                            len(self._queue), self.oldest_age_s, delay, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._retry_max_s)
                continue
            delay = self._retry_initial_s
            self.last_error = None
            self._told(written)
            await self._flush_decisions()

    def _set_aside_invalid(self, exc: store_pkg.StoreError) -> list[_Queued]:
        """A batch the schema refuses: write its states one by one; one that can never be written is
        logged and set aside, unannounced (restart recovers its trade from the chain). Returns the
        states written, for the caller to tell on the event loop."""
        written: list[_Queued] = []
        with self._lock:
            batch = [self._queue[i] for i in range(min(_MAX_BATCH, len(self._queue)))]
        for item in batch:
            try:
                self.store.record_settlements([item.update])
            except store_pkg.InvalidRecordError as bad:
                self.write_failures += 1
                log.error("settlement state of trade %s can never be stored, set aside: %s", item.update.trade_id, bad)
            else:
                written.append(item)
            with self._lock:
                self._queue.popleft()
        log.warning("a settlement batch was refused (%s); its states were written one by one", exc)
        return written

    @staticmethod
    def _told(items: list[_Queued]) -> None:
        for item in items:
            if item.then is None:
                continue
            try:
                item.then()
            except Exception:  # a broken listener must not stop the writer
                log.exception("settlement notice of trade %s failed", item.update.trade_id)

    def flush(self, final_through: int | None = None) -> int:
        """Write everything queued now (blocking; at shutdown, after ``run`` ended). On a store error
        the states stay queued and unannounced (restart recovers them from the chain)."""
        self.record_final_through(final_through)
        written = 0
        try:
            while self._queue or self._final_through is not None:
                batch = self._write_some()
                self._told(batch)
                written += len(batch)
                if not batch and not self._queue:
                    break
        except store_pkg.StoreError:
            log.exception("stopping with %d settlement states not recorded", len(self._queue))
        return written + self._write_decisions()

    # ------------------------------------------------------------ eligibility decisions

    def record_decision(self, record: compliance.DecisionRecord) -> None:
        decision = store_pkg.EligibilityDecision(
            ts=record.ts, participant=record.participant, symbol=record.symbol,
            outcome=store_pkg.Outcome.ACCEPTED if record.ok else store_pkg.Outcome.REJECTED,
            code=str(record.code) if record.code else "OK", message=record.message,
        )
        with self._lock:
            self._decisions.append(decision)

    def record_premium(self, premium: store_pkg.TradePremium) -> None:
        """A trade's premium/discount to the NAV in force: batched and retried like the decisions."""
        with self._lock:
            self._premiums.append(premium)

    async def _flush_decisions(self) -> None:
        if self._decisions or self._premiums:
            await asyncio.to_thread(self._write_decisions)

    def _write_premiums(self) -> int:
        return self._write_queued("_premiums", self.store.record_trade_premiums, "trade premiums")

    def _write_decisions(self) -> int:
        """Write the queued eligibility decisions (and trade premiums); on a store error they stay
        queued (in order)."""
        self._write_premiums()
        return self._write_queued("_decisions", self.store.record_eligibility_decisions, "eligibility decisions")

    def _write_queued(self, queue: str, write: Callable[[list[Any]], object], what: str) -> int:
        """Write and empty the list held in attribute ``queue``; on a store error put it back in
        front (order kept) and log one line."""
        with self._lock:
            items: list[Any] = getattr(self, queue)
            setattr(self, queue, [])
        if not items:
            return 0
        try:
            write(items)
        except store_pkg.StoreError as exc:
            log.warning("cannot record %d %s yet: %s", len(items), what, exc)
            with self._lock:
                getattr(self, queue)[:0] = items
            return 0
        return len(items)

    # ------------------------------------------------------------ audit & operator

    def audit(self, actor: str, action: str, details: Mapping[str, object]) -> None:
        with _operator_store("audit"):
            self.store.append_audit(actor, action, dict(details))

    def set_participant_status(self, participant: str, status: str) -> None:
        with _operator_store("participant status"):
            self.store.update_participant(participant, status=status)

    def audit_entries(self, limit: int) -> list[AuditEntry]:
        with _operator_store("audit log"):
            entries = self.store.list_audit(limit=limit)
        return [AuditEntry(id=e.id, ts=e.ts, actor=e.actor, action=e.action, details=e.details, hash=e.hash)
                for e in entries]

    def audit_ok(self) -> bool:
        with _operator_store("audit check"):
            return self.store.verify_audit_chain().ok

    def intake_refusal(self) -> Rejection | None:
        """``STORE_BACKLOG`` while the store's backlog is at its bound (intake pauses, nothing is dropped)."""
        if not self.full:
            return None
        return Rejection(code="STORE_BACKLOG", message=codes.message("STORE_BACKLOG"))


class _BacklogMetrics(Collector):
    """The store backlog at scrape time: size, age of the oldest unwritten state, failed writes."""

    def __init__(self, adapter: StoreAdapter) -> None:
        self._adapter = adapter

    def collect(self) -> Iterator[Metric]:
        a = self._adapter
        yield GaugeMetricFamily("venue_store_backlog", "Records waiting to be written to the store", value=a.backlog)
        yield GaugeMetricFamily("venue_store_backlog_oldest_seconds",
                                "Age of the oldest settlement state not yet in the store", value=a.oldest_age_s)
        yield GaugeMetricFamily("venue_store_backlog_limit", "Backlog at which new orders are refused",
                                value=a.max_backlog)
        yield CounterMetricFamily("venue_store_write_failures", "Failed settlement writes (each retried)",
                                  value=a.write_failures)


@contextlib.contextmanager
def _operator_store(what: str) -> Iterator[None]:
    """An operator action's store call: an unreachable database answers ``STORE_UNAVAILABLE`` (503)."""
    try:
        yield
    except store_pkg.StoreUnavailableError as exc:
        raise codes.Unavailable("STORE_UNAVAILABLE", f"{what}: {exc}") from exc
