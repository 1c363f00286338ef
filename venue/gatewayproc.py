"""``venue gateway``: a process serving the venue's REST + websocket API (``gateway.create_app``)
over ``RemoteVenue``, a ``VenuePort`` that forwards to whichever process leads, over NATS
(``venue.remote`` is the leader's side).

* Commands (``submit``, ``submit_batch``, ``set_status``) are NATS requests under one request id;
  when no leader answers (none subscribed: a failover; or the reply was lost) the same request
  (same id, same client order id) is sent again until ``forward_timeout_s``, then the client gets
  ``LEADER_UNAVAILABLE`` (503). A retry reaching the same leader gets the first answer; one reaching
  a new leader is refused or answered by its client order id (``venue.remote``): never executed twice.
* Reads the gateway's port makes synchronously (book, an order, open orders, recent trades) are
  requests too, bounded by ``read_timeout_s`` (they block this gateway's event loop that long at
  most); API keys are cached for ``cache_s``, served stale while no leader answers; listings are
  served from the cache and re-read in the background once older than ``cache_s``.
* Events and settlement notices arrive on the leader's subjects and are fanned out to this
  process's subscribers (``gateway.streams.Hub``) on its event loop, in ``seq`` order; revoked API
  keys (the ``keys`` subject) close their websocket sessions here with 4010 ``KEY_REVOKED``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import itertools
import logging
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import nats
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.errors import Error as NatsError

from engine import AmendOrder, CancelOrder, Event, InstrumentStatus, L2Snapshot, MassCancel, NewOrder, OrderView
from gateway.ports import ApiKey, Listing, Outcome, SettlementNotice, Trade, Unsubscribe
from gateway.sessions import close_sessions_of
from gateway.state import GatewayState
from market import wire
from market.codes import Unavailable
from market.history import OrderRecord, Page, TradeQuery
from venue.remote import keys_subject, subjects

if TYPE_CHECKING:
    from venue.shardroute import ShardedVenue

log = logging.getLogger(__name__)
T = TypeVar("T")


class RemoteError(Exception):
    """The leader answered a forwarded call with an error (``code`` from ``market.codes``)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


class RemoteVenue:
    """``gateway.ports.VenuePort`` over NATS (see the module docstring). The NATS connection runs
    on an event loop of its own, in a thread, so a blocking read cannot starve it."""

    def __init__(self, servers: list[str], stream: str, *, forward_timeout_s: float = 30.0,
                 read_timeout_s: float = 2.0, attempt_timeout_s: float = 2.0, cache_s: float = 2.0) -> None:
        self.rpc, self.events_subject, self.settlements_subject = subjects(stream)
        self.keys_subject = keys_subject(stream)
        self.forward_timeout_s, self.read_timeout_s = forward_timeout_s, read_timeout_s
        self.attempt_timeout_s, self.cache_s = attempt_timeout_s, cache_s
        self._nloop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._nloop.run_forever, name="gateway-nats", daemon=True)
        self._thread.start()
        self._nc: NatsClient = self._run(nats.connect(
            servers=servers, name="omn-gateway", reconnect_time_wait=0.2, max_reconnect_attempts=-1,
            allow_reconnect=True), timeout=20.0)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._events: list[Callable[[Event], None]] = []
        self._settlements: list[Callable[[SettlementNotice], None]] = []
        self._revocations: list[Callable[[list[str]], None]] = []
        self._listings: tuple[float, list[Listing]] = (0.0, [])
        self._listings_refresh: concurrent.futures.Future[None] | None = None
        self._keys: dict[str, tuple[float, ApiKey | None]] = {}
        self.last_seq = 0  # the seq of the last event fanned out
        self._position = 0  # ``stream_seq``: of the events being fanned out, or of the last book read
        self.gaps = 0  # times an event batch did not follow the previous one
        self._ids = itertools.count(1)
        self._prefix = uuid.uuid4().hex[:12]

    # -- plumbing

    def _run(self, coro: Coroutine[Any, Any, T], *, timeout: float) -> T:
        future = asyncio.run_coroutine_threadsafe(asyncio.wait_for(coro, timeout), self._nloop)
        return future.result(timeout=timeout + 1.0)

    async def start(self) -> None:
        """Subscribe to the leader's subjects; events are dispatched on the calling event loop."""
        self._loop = asyncio.get_running_loop()

        async def subscribe() -> None:
            await self._nc.subscribe(self.events_subject, cb=self._on_events)
            await self._nc.subscribe(self.settlements_subject, cb=self._on_settlement)
            await self._nc.subscribe(self.keys_subject, cb=self._on_revoked)
            await self._nc.flush()

        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(subscribe(), self._nloop))

    def close(self) -> None:
        if self._listings_refresh is not None:
            self._listings_refresh.cancel()
        with contextlib.suppress(Exception):
            self._run(self._nc.close(), timeout=5.0)
        self._nloop.call_soon_threadsafe(self._nloop.stop)
        self._thread.join(timeout=5.0)

    async def _on_events(self, msg: Msg) -> None:  # on the NATS thread
        try:
            events = wire.loads(msg.data)
        except wire.WireError as exc:
            log.error("undecodable event batch: %s", exc)
            return
        if not (isinstance(events, list) and all(
                isinstance(g, list) and len(g) == 2 and isinstance(g[0], int) and isinstance(g[1], list)
                for g in events)):
            log.error("malformed event batch (not [[stream_seq, [event, ...]], ...])")
            return
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._dispatch, events)

    def _dispatch(self, groups: list[list[Any]]) -> None:
        for position, events in groups:
            fresh = [e for e in events if e.seq > self.last_seq]
            if not fresh:
                continue
            if self.last_seq and fresh[0].seq != self.last_seq + 1:
                self.gaps += 1  # published by a leader that died, or lost while NATS reconnected
                log.warning("event gap: %d after %d (book subscribers resynchronise by md_seq)",
                            fresh[0].seq, self.last_seq)
            self._position = position
            for event in fresh:
                for listener in list(self._events):
                    listener(event)
            self.last_seq = fresh[-1].seq

    @property
    def stream_seq(self) -> int:
        """The journal position of the events being fanned out, or of the last book snapshot read
        (the leader sends it with every event group and every answer)."""
        return self._position

    async def _on_settlement(self, msg: Msg) -> None:
        try:
            notice = wire.loads(msg.data)
        except wire.WireError as exc:
            log.error("undecodable settlement notice: %s", exc)
            return
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._fan_settlement, notice)

    async def _on_revoked(self, msg: Msg) -> None:
        try:
            key_ids = wire.loads(msg.data)
        except wire.WireError as exc:
            log.error("undecodable key revocation: %s", exc)
            return
        if not (isinstance(key_ids, list) and all(isinstance(k, str) for k in key_ids)):
            log.error("malformed key revocation (not a list of key ids)")
            return
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._fan_revocation, key_ids)

    def _fan_revocation(self, key_ids: list[str]) -> None:
        for key_id in key_ids:
            self._keys.pop(key_id, None)  # the next login or REST request asks the leader again
        for listener in list(self._revocations):
            listener(key_ids)

    def subscribe_revocations(self, listener: Callable[[list[str]], None]) -> Unsubscribe:
        """``listener(key_ids)`` on this gateway's loop when the leader drops API keys."""
        self._revocations.append(listener)
        return lambda: self._revocations.remove(listener) if listener in self._revocations else None

    def _fan_settlement(self, notice: SettlementNotice) -> None:
        for listener in list(self._settlements):
            listener(notice)

    async def _request_once(self, payload: bytes, timeout: float) -> Any:
        return (await self._answer_once(payload, timeout))[0]

    async def _answer_once(self, payload: bytes, timeout: float) -> tuple[Any, int]:
        """(the answer's value, the journal position it was read at)."""
        msg = await self._nc.request(self.rpc, payload, timeout=timeout)
        answer = wire.loads(msg.data)
        if not isinstance(answer, dict):
            raise RemoteError("REMOTE_ERROR", "malformed answer")
        if "err" in answer:
            raise RemoteError(str(answer["err"]), str(answer.get("msg", "")))
        position = answer.get("pos")
        return answer.get("ok"), position if isinstance(position, int) else 0

    def _payload(self, op: str, args: Sequence[Any], kw: dict[str, Any] | None, rid: str | None) -> bytes:
        return wire.dumps({"op": op, "args": list(args), "kw": kw or {}, "id": rid})

    def _read(self, op: str, *args: Any, **kw: Any) -> Any:
        """A synchronous read: one request, bounded by ``read_timeout_s``."""
        return self._read_at(op, *args, **kw)[0]

    def _read_at(self, op: str, *args: Any, **kw: Any) -> tuple[Any, int]:
        """``_read`` and the journal position the leader read it at."""
        try:
            return self._run(self._answer_once(self._payload(op, args, kw, None), self.read_timeout_s),
                             timeout=self.read_timeout_s)
        except RemoteError:
            raise
        except (TimeoutError, NatsError, OSError) as exc:
            raise Unavailable("LEADER_UNAVAILABLE", f"no leader answered ({type(exc).__name__})") from None

    async def _forward(self, op: str, *args: Any, **kw: Any) -> Any:
        """A command: the same request (one id) until a leader answers or ``forward_timeout_s``."""
        payload = self._payload(op, args, kw, f"{self._prefix}-{next(self._ids)}")
        deadline = time.monotonic() + self.forward_timeout_s
        attempt = 0
        while True:
            attempt += 1
            future = asyncio.run_coroutine_threadsafe(self._request_once(payload, self.attempt_timeout_s), self._nloop)
            try:
                return await asyncio.wrap_future(future)
            except RemoteError:
                raise
            except (TimeoutError, NatsError, OSError) as exc:
                if time.monotonic() >= deadline:
                    raise Unavailable("LEADER_UNAVAILABLE", f"no leader answered in {self.forward_timeout_s:g} s "
                                                            f"({attempt} attempts)") from None
                if attempt == 1:
                    log.warning("%s: no leader answered (%s); retrying the same request until one does",
                                op, type(exc).__name__)
                await asyncio.sleep(min(0.2, max(0.0, deadline - time.monotonic())))

    # -- VenuePort

    def listings(self) -> list[Listing]:
        at, cached = self._listings
        if not cached:
            cached = list(self._read("listings"))
            self._listings = (time.monotonic(), cached)
        elif time.monotonic() - at > self.cache_s:
            self._refresh_listings()  # stale: answered from the cache, refreshed in the background
        return cached

    def _refresh_listings(self) -> None:
        """Re-read the listings on the NATS thread: the event fan-out asks for a listing per event,
        and a blocking read there would stall this gateway's loop for a round trip every ``cache_s``."""
        if self._listings_refresh is not None and not self._listings_refresh.done():
            return

        async def fetch() -> None:
            try:
                value, _ = await self._answer_once(self._payload("listings", (), None, None), self.read_timeout_s)
                self._listings = (time.monotonic(), list(value))
            except (RemoteError, TimeoutError, NatsError, OSError, wire.WireError) as exc:
                log.debug("listings refresh failed (served from the cache): %r", exc)

        self._listings_refresh = asyncio.run_coroutine_threadsafe(fetch(), self._nloop)

    def listing(self, symbol: str) -> Listing | None:
        return next((x for x in self.listings() if x.symbol == symbol), None)

    def api_key(self, key_id: str) -> ApiKey | None:
        at, key = self._keys.get(key_id, (0.0, None))
        if time.monotonic() - at > self.cache_s:
            try:
                key = self._read("api_key", key_id)
                if len(self._keys) > 100_000:
                    self._keys.clear()
                self._keys[key_id] = (time.monotonic(), key)
            except Unavailable:
                if key_id not in self._keys:
                    raise
        return key

    async def submit(self, participant: str, cmd: NewOrder | AmendOrder | CancelOrder | MassCancel) -> Outcome:
        result: Outcome = await self._forward("submit", participant, cmd)
        return result

    async def submit_batch(self, participant: str,
                           cmds: Sequence[NewOrder | CancelOrder | MassCancel]) -> list[Outcome]:
        result: list[Outcome] = await self._forward("submit_batch", participant, list(cmds))
        return result

    async def set_status(self, symbol: str, status: InstrumentStatus, *, operator: str) -> Outcome:
        result: Outcome = await self._forward("set_status", symbol, status, operator=operator)
        return result

    def l2(self, symbol: str, depth: int | None = None) -> L2Snapshot:
        result: L2Snapshot
        result, self._position = self._read_at("l2", symbol, depth)  # a snapshot's stream_seq
        return result

    def order(self, order_id: int) -> OrderView | None:
        result: OrderView | None = self._read("order", order_id)
        return result

    def open_orders(self, participant: str, symbol: str | None = None) -> list[OrderView]:
        result: list[OrderView] = self._read("open_orders", participant, symbol)
        return result

    def trades(self, *, symbol: str | None = None, participant: str | None = None, limit: int = 100) -> list[Trade]:
        result: list[Trade] = self._read("trades", symbol=symbol, participant=participant, limit=limit)
        return result

    def subscribe_events(self, listener: Callable[[Event], None]) -> Unsubscribe:
        self._events.append(listener)
        return lambda: self._events.remove(listener) if listener in self._events else None

    def subscribe_settlements(self, listener: Callable[[SettlementNotice], None]) -> Unsubscribe:
        self._settlements.append(listener)
        return lambda: self._settlements.remove(listener) if listener in self._settlements else None

    async def order_record(self, participant: str, order_id: int) -> OrderRecord | None:
        result: OrderRecord | None = await self._forward("order_record", participant, order_id)
        return result

    async def trade_history(self, query: TradeQuery) -> Page[Trade]:
        result: Page[Trade] = await self._forward("trade_history", query)
        return result


class Revocations(Protocol):
    def subscribe_revocations(self, listener: Callable[[list[str]], None]) -> Unsubscribe: ...


def close_revoked_sessions(venue: Revocations, state: GatewayState) -> Unsubscribe:
    """Revoked keys' websocket sessions on this gateway end with 4010 ``KEY_REVOKED``, as the
    leader ends its own (``gateway.sessions``)."""

    def on_revoked(key_ids: list[str]) -> None:
        closed = close_sessions_of(state, key_ids)
        log.info("API keys revoked: %s (%d websocket sessions closed)", ", ".join(key_ids), closed)

    return venue.subscribe_revocations(on_revoked)


async def serve_gateway(journal_url: str, *, host: str, port: int, data_dir: str | None = None,
                        shards: str | None = None) -> int:
    """``venue gateway``: serve the API over a ``RemoteVenue`` until SIGTERM / Ctrl-C."""
    import uvicorn

    from gateway.app import create_app
    from gateway.config import GatewayConfig
    from gateway.server import uvicorn_options
    from journal.nats import parse_url

    servers, stream = parse_url(journal_url)
    venue: RemoteVenue | ShardedVenue
    if shards:  # a sharded venue: route by symbol / order id (venue.shardroute)
        from venue.shardroute import ShardedVenue
        from venue.shards import ShardMap

        venue = await asyncio.to_thread(ShardedVenue.connect, servers, stream, ShardMap.parse(shards))
    else:
        venue = await asyncio.to_thread(RemoteVenue, servers, stream)
    await venue.start()
    memory = Path(data_dir) / "gateway-replay.json" if data_dir else None
    app = create_app(venue, config=GatewayConfig(replay_memory_path=memory))
    close_revoked_sessions(venue, app.state.gateway)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", **uvicorn_options(app)))
    started = asyncio.ensure_future(server.serve())
    for _ in range(600):
        if server.started or started.done():
            break
        await asyncio.sleep(0.05)
    print(f"gateway listening on http://{host}:{port} (venue {journal_url})", flush=True)
    try:
        await started
    finally:
        await asyncio.to_thread(venue.close)
    return 0
