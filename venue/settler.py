"""Settlement as a durable consumer: ``venue settler``, and the leader's side of it.

    leader (--settlement external)                      settler (any machine; one per venue)
      trade passes the pre-settlement re-check
      -> publish TradeToSettle on the stream    ──>   durable pull consumer (explicit ack)
         <STREAM>_SETTLE (file, replicated)            -> SettlementService.recover: asks the chain first
                                                          (decided: report it; else queue and settle)
      durable consumer ``leader``               <──   every state of the trade, stored in order on
      -> core.on_settlement_update, then ack           <STREAM>_SETTLED (file, replicated)
                                                       -> ack the trade's request once terminal

Exactly once: a settle request is acknowledged only when its trade's terminal state (CONFIRMED, or
FINAL with finality tracking, or FAILED) is stored on ``<STREAM>_SETTLED``. A settler that dies
redelivers the unacknowledged requests to its successor, which asks the chain before sending
(``recover``: a trade decided before the crash is reported, not sent again), and the contract
refuses a second decision for a trade id in any case (``TradeAlreadyDecided``). The leader stays
the one that decides *whether* a trade settles (its pre-settlement re-check) and the one that
records and publishes settlement states (store, subscribers, gateways). It applies the states from
one durable consumer shared by every leader of the stream and acknowledges them once applied, so a
state published while no leader listened (a NATS reconnect, a takeover) reaches the next one from
the ack floor; a repeated state is ignored (``_notify``, the trade book). A new leader also sends
every unfinished trade again at takeover (``ExternalSettlement.recover``); the settler answers a
request for a decided trade with its decision from the chain.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import nats
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from journal.nats import NatsLoop, parse_url
from market import wire
from market.model import SettlementState, SettlementUpdate
from market.signed import SignedOrder
from settlement.service import SettlementService, TradeToSettle

log = logging.getLogger(__name__)

UpdateSink = Callable[[SettlementUpdate], None]
_TRADE_FIELDS = tuple(f.name for f in dataclasses.fields(TradeToSettle))


def settle_stream(stream: str) -> str:
    return f"{stream}_SETTLE"


def settle_subject(stream: str) -> str:
    return f"omn.{stream}.settle"


def settled_subject(stream: str) -> str:
    return f"omn.{stream}.settled"


def settled_stream(stream: str) -> str:
    return f"{stream}_SETTLED"


SETTINGS_HEADER = "Omn-Settlement-Settings"  # the leader's finality/confirmations: the settler's must match
AGAIN_HEADER = "Omn-Settle-Again"  # a request sent before (a takeover's recover): maybe decided long ago
LEADER_DURABLE = "leader"  # one durable for every leader of a stream: a new leader resumes from its ack floor


class SettlerError(Exception):
    """The settler cannot settle with this configuration (``code`` from ``market.codes``)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def settings_of(service: SettlementService) -> str:
    """What the leader and the settler must agree on: when a state is terminal (``finality``) and
    how deep a receipt must be before ``CONFIRMED`` (``confirmations``)."""
    return json.dumps({"finality": service.finality, "confirmations": service.confirmations}, sort_keys=True)


def encode_trade(trade: TradeToSettle) -> bytes:
    return wire.dumps({name: getattr(trade, name) for name in _TRADE_FIELDS})


def decode_trade(data: bytes) -> TradeToSettle:
    """A settle request; ``wire.WireError`` if it is not one."""
    raw = wire.loads(data)
    if not isinstance(raw, dict) or set(raw) != set(_TRADE_FIELDS):
        raise wire.WireError("not a settle request")
    for side in ("sell_order", "buy_order"):
        if raw[side] is not None and not isinstance(raw[side], SignedOrder):
            raise wire.WireError(f"{side} is not a signed order")
    try:
        return TradeToSettle(**raw)
    except TypeError as exc:
        raise wire.WireError(str(exc)) from exc


def decode_update(data: bytes) -> SettlementUpdate:
    update = wire.loads(data)
    if not isinstance(update, SettlementUpdate):
        raise wire.WireError("not a settlement update")
    return update


async def ensure_settle_streams(js: JetStreamContext, stream: str, replicas: int) -> None:
    """The requests' stream (leader -> settler) and the states' stream (settler -> leader)."""
    for attempt in range(50):  # a cluster that has just started elects its meta leader first
        try:
            for name, subject in ((settle_stream(stream), settle_subject(stream)),
                                  (settled_stream(stream), settled_subject(stream))):
                try:
                    await js.stream_info(name)
                except NotFoundError:
                    await js.add_stream(StreamConfig(name=name, subjects=[subject], storage=StorageType.FILE,
                                                     num_replicas=replicas, duplicate_window=120.0))
            return
        except NotFoundError:
            raise
        except Exception:
            if attempt == 49:
                raise
            await asyncio.sleep(0.2)


def terminal(status: SettlementState, *, finality: bool) -> bool:
    return status in (SettlementState.FAILED, SettlementState.FINAL) or (
        status is SettlementState.CONFIRMED and not finality)


# ---------------------------------------------------------------- the leader's side


class ExternalSettlement(SettlementService):
    """The leader's settlement service with ``settlement_mode = "external"``: ``submit`` and
    ``recover`` publish settle requests (durably: retried until the stream acknowledges), ``run``
    feeds the settler's updates to ``on_update``. It never sends a transaction."""

    def __init__(self, *args: Any, journal_url: str, replicas: int = 1, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        servers, self._stream = parse_url(journal_url)
        self._conn = NatsLoop(servers, timeout=5.0)
        self._conn.call(ensure_settle_streams(self._conn.js, self._stream, replicas))
        self._publisher = uuid.uuid4().hex[:12]  # a takeover sends again what its predecessor sent

    def submit(self, trade: TradeToSettle) -> None:
        trade = trade.normalized()
        self._request(trade)
        self._notify(SettlementUpdate(trade_id=trade.trade_id, status=SettlementState.PENDING), self._on_update)

    def recover(self, unfinished: Iterable[TradeToSettle], *, from_block: int = 0) -> list[SettlementUpdate]:
        """Ask the settler again about every unfinished trade: it answers from the chain."""
        for trade in unfinished:
            self._request(trade.normalized(), again=True)
        return []

    def _request(self, trade: TradeToSettle, *, again: bool = False) -> None:
        headers = {"Nats-Msg-Id": f"{self._publisher}:{trade.trade_id}", SETTINGS_HEADER: settings_of(self)}
        if again:
            headers[AGAIN_HEADER] = "1"
        self._conn.spawn(_publish_retried(self._conn.js, settle_subject(self._stream), encode_trade(trade), headers))

    async def run(self) -> None:
        """Apply the settler's states from the durable consumer ``leader`` on ``<STREAM>_SETTLED``,
        acknowledging each batch only once applied (a repeat of a state is ignored: ``_notify`` and
        the trade book both drop it), so a state published while no leader listened, or delivered to
        a leader that died before applying it, comes to this one."""
        self._stopping = False
        self._wakeup = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        sub = await asyncio.to_thread(self._conn.read, self._bind_states)
        try:
            while not self._stopping:
                try:
                    msgs = await asyncio.to_thread(self._conn.call, _fetch(sub, 0.5), timeout=0.5 + self._conn.timeout)
                except Exception as exc:  # NATS reconnecting: what was not acknowledged comes again
                    log.warning("settlement states not fetched (retrying): %r", exc)
                    await asyncio.sleep(0.5)
                    continue
                for msg in msgs:
                    self._apply(msg)
                if msgs:
                    with contextlib.suppress(Exception):  # not acknowledged: delivered again, applied once
                        await asyncio.to_thread(self._conn.call, msgs[-1].ack_sync())
        finally:
            with contextlib.suppress(Exception):
                self._conn.call(sub.unsubscribe())
            await asyncio.to_thread(self._conn.close)

    async def _bind_states(self) -> JetStreamContext.PullSubscription:
        return await self._conn.js.pull_subscribe(
            settled_subject(self._stream), durable=LEADER_DURABLE, stream=settled_stream(self._stream),
            config=ConsumerConfig(ack_policy=AckPolicy.ALL, ack_wait=10.0, max_ack_pending=-1))

    def _apply(self, msg: Msg) -> None:
        try:
            update = decode_update(msg.data)
        except wire.WireError as exc:
            log.warning("ignored a settlement update that is not one: %s", exc)
            return
        self._notify(update, self._on_update)


async def _fetch(sub: JetStreamContext.PullSubscription, timeout: float) -> list[Msg]:
    try:
        return await sub.fetch(256, timeout=timeout)
    except (TimeoutError, NatsTimeoutError):
        return []


async def _publish_retried(js: JetStreamContext, subject: str, data: bytes, headers: dict[str, str] | None, *,
                           attempts: int | None = 120) -> None:
    """Publish until the stream stores it; ``attempts=None``: until it does (about a minute for 120:
    a NATS node failing over)."""
    attempt = 0
    while True:
        attempt += 1
        try:
            await js.publish(subject, data, timeout=2.0, headers=headers)
            return
        except Exception as exc:
            if attempts is not None and attempt >= attempts:
                log.error("%s: %s not published (a takeover sends it again): %r", subject, headers, exc)
                return
            await asyncio.sleep(0.5)


def settlement_service(external: bool, journal_url: str | None, replicas: int,
                       *args: Any, **kwargs: Any) -> SettlementService:
    """The leader's settlement service: in process, or the settler's (``external``)."""
    if not external:
        return SettlementService(*args, **kwargs)
    if journal_url is None:
        raise ValueError("settlement_mode = external needs journal_url = nats://...")
    return ExternalSettlement(*args, journal_url=journal_url, replicas=replicas, **kwargs)


# ---------------------------------------------------------------- the settler


class Settler:
    """Consumes settle requests and settles them (see the module docstring). ``make_service``
    builds the ``SettlementService`` around the settler's ``on_update``."""

    def __init__(self, journal_url: str, make_service: Callable[[UpdateSink], SettlementService], *,
                 name: str = "settler", replicas: int = 1, ack_wait_s: float = 10.0,
                 position_path: Path | None = None) -> None:
        self._servers, self._stream = parse_url(journal_url)
        self._make_service = make_service
        self.name = name
        self._replicas = replicas
        # a request delivered to a settler that died comes again after this long; a live settler
        # keeps its unfinished requests with a heartbeat every third of it (``in_progress``)
        self._ack_wait_s = ack_wait_s
        self._inflight: dict[int, list[Msg]] = {}  # trade id -> its unacknowledged requests
        # the first block a new request's scan reads: a request seen for the first time was never
        # sent, so its decision can only be in blocks the previous scans had not reached (or not
        # final then); kept in ``position_path`` so a restart does not scan from the deployment
        self._position_path = position_path
        self.scan_from = _load_position(position_path)
        self._nc: NatsClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.service: SettlementService | None = None
        self.published: list[SettlementUpdate] = []  # stored on <STREAM>_SETTLED, in order
        self._outbox: asyncio.Queue[SettlementUpdate] = asyncio.Queue()
        self.ready = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        self._loop = asyncio.get_running_loop()
        nc = self._nc = await nats.connect(servers=self._servers, reconnect_time_wait=0.2, max_reconnect_attempts=-1,
                                           name=f"omn-{self.name}")
        js = nc.jetstream(timeout=5.0)
        await ensure_settle_streams(js, self._stream, self._replicas)
        psub = await js.pull_subscribe(settle_subject(self._stream), durable=self.name,
                                       stream=settle_stream(self._stream),
                                       config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT,
                                                             ack_wait=self._ack_wait_s))
        service = self.service = self._make_service(self._on_update)
        publisher = asyncio.create_task(self._publish_states(js))
        task = service.start()
        self.ready.set()
        heartbeat = time.monotonic()
        try:
            while not stop.is_set() and not task.done():
                if time.monotonic() - heartbeat >= self._ack_wait_s / 3:
                    heartbeat = time.monotonic()
                    for held in list(self._inflight.values()):
                        for msg in held:
                            with contextlib.suppress(Exception):
                                await msg.in_progress()
                try:
                    msgs = await psub.fetch(256, timeout=min(0.5, self._ack_wait_s / 6))
                except (TimeoutError, NatsTimeoutError):
                    continue
                fresh, again = self._take(msgs)
                if fresh or again:
                    await asyncio.to_thread(self._recover, service, fresh, again)
        finally:
            service.stop()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 30)
            # states not stored yet: their requests stay unacknowledged, asked again. Cancelled until
            # it ends: on Python 3.11 a cancel racing with nats-py's inner wait_for can be swallowed.
            while not publisher.done():
                publisher.cancel()
                await asyncio.wait({publisher}, timeout=0.5)
            await nc.close()

    def _recover(self, service: SettlementService, fresh: list[TradeToSettle], again: list[TradeToSettle]) -> None:
        """Resolve a batch from the chain, scanning only blocks after ``scan_from`` except for a
        request sent before (redelivered, or asked again by a new leader) that the contract says is
        decided: its decision may be anywhere since the deployment (the contract keeps only a bit)."""
        final = service.final_block()  # read first: blocks after it are scanned again next time
        decided: list[TradeToSettle] = []
        for trade in again:
            (decided if service.decision(trade.trade_id)[0] else fresh).append(trade)
        if decided:
            service.recover(decided, from_block=0)
        if fresh:
            service.recover(fresh, from_block=self.scan_from)
        self.scan_from = final + 1
        _save_position(self._position_path, self.scan_from)

    def _take(self, msgs: list[Msg]) -> tuple[list[TradeToSettle], list[TradeToSettle]]:
        """New requests, and requests sent before (see ``_recover``)."""
        self._check_settings(msgs)
        fresh: list[TradeToSettle] = []
        again: list[TradeToSettle] = []
        for msg in msgs:
            try:
                trade = decode_trade(msg.data).normalized()
            except Exception as exc:  # never settleable: refused for good, not redelivered
                log.error("settle request refused: %s", exc)
                self._spawn(msg.term())
                continue
            held = self._inflight.setdefault(trade.trade_id, [])
            held.append(msg)
            if len(held) == 1:
                sent_before = msg.metadata.num_delivered > 1 or bool((msg.headers or {}).get(AGAIN_HEADER))
                (again if sent_before else fresh).append(trade)
        return fresh, again

    def _check_settings(self, msgs: list[Msg]) -> None:
        """Refuse to settle for a leader configured otherwise: it would wait for a ``FINAL`` this
        settler never sends, or take a ``CONFIRMED`` for the last word too early. The requests stay
        unacknowledged, for a settler run with the leader's settings."""
        assert self.service is not None
        ours = settings_of(self.service)
        for msg in msgs:
            theirs = (msg.headers or {}).get(SETTINGS_HEADER)
            if theirs is not None and theirs != ours:
                raise SettlerError("SETTLEMENT_SETTINGS_MISMATCH",
                                   f"the leader settles with {theirs}, this settler with {ours}: "
                                   "run the settler with the leader's finality and confirmations")

    def _spawn(self, coro: Any) -> None:
        assert self._loop is not None
        asyncio.run_coroutine_threadsafe(coro, self._loop)

    def _on_update(self, update: SettlementUpdate) -> None:
        """Called on the event loop (``run``) or a worker thread (``recover``): queued in order for
        ``_publish_states``."""
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._outbox.put_nowait, update)

    async def _publish_states(self, js: JetStreamContext) -> None:
        """Store every state on ``<STREAM>_SETTLED`` in order (each retried until the stream has it);
        a request is acknowledged only after its trade's terminal state is stored."""
        assert self.service is not None
        while True:
            update = await self._outbox.get()
            await _publish_retried(js, settled_subject(self._stream), wire.dumps(update), None, attempts=None)
            self.published.append(update)
            if terminal(update.status, finality=self.service.finality is not None):
                for msg in self._inflight.pop(update.trade_id, []):
                    with contextlib.suppress(Exception):  # not acknowledged: redelivered, answered from the chain
                        await msg.ack()


def _load_position(path: Path | None) -> int:
    """The persisted scan position; 0 (the deployment block) when there is none or it is unreadable."""
    if path is None or not path.exists():
        return 0
    try:
        return max(0, int(json.loads(path.read_text())["scan_from"]))
    except (ValueError, KeyError, TypeError, OSError):
        log.warning("settler scan position %s unreadable: scanning from the deployment block", path)
        return 0


def _save_position(path: Path | None, scan_from: int) -> None:
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"scan_from": scan_from}))
    os.replace(tmp, path)  # a crash leaves the old position or the new one, never half of one
