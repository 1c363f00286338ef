"""A gateway of a sharded venue: ``gateway.ports.VenuePort`` over one ``RemoteVenue`` per shard.

Routing (the shard map and the id scheme: ``venue.shards``):

    by symbol    new orders, a mass cancel of one instrument, instrument status, book, recent trades
                 and trade history of one instrument, open orders of one instrument
    by order id  cancel, amend, an order's view and record: the shard index is ``order_id >> 40``
    to all       a mass cancel without an instrument (also cancel-on-disconnect, a mass cancel by
                 session): sent to every shard, the answers merged; open orders and recent trades
                 of every instrument: concatenated (trades newest first)
    any          API keys (every shard serves the same reference data): the first shard that answers

A batch is split by shard, the parts sent at once, the answers put back in the batch's order.
Listings are each shard's own instruments. Events and settlement notices of every shard are fanned
out to this gateway's subscribers: engine event ``seq`` numbers and ``stream_seq`` are per shard
(each shard has its own stream), but an instrument lives on one shard and the book's ``md_seq`` is
per instrument, so a client's gap detection (by instrument) is unchanged. API key revocations of
every shard close this gateway's sessions.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from engine import (
    AmendOrder,
    CancelOrder,
    Event,
    InstrumentStatus,
    L2Snapshot,
    MassCancel,
    NewOrder,
    OrderView,
    ResultCode,
)
from engine import Result as EngineResult
from gateway.ports import ApiKey, Listing, Outcome, SettlementNotice, Trade, Unsubscribe
from market.codes import Unavailable, message
from market.history import OrderRecord, Page, TradeQuery
from market.model import OrderAck, Rejection
from venue.gatewayproc import RemoteVenue
from venue.shards import Shard, ShardMap

Command = NewOrder | AmendOrder | CancelOrder | MassCancel


def _refused(code: str, detail: str, *, symbol: str = "", order_id: int | None = None) -> Outcome:
    rejection = Rejection(code=code, message=f"{message(code)} ({detail})")
    return Outcome(rejection=rejection, ack=OrderAck.rejected(rejection, symbol=symbol, order_id=order_id))


def merge_mass_cancels(outcomes: Sequence[Outcome]) -> Outcome:
    """One answer for a mass cancel sent to every shard: the first refusal, else every shard's
    cancellations as one result."""
    for outcome in outcomes:
        if outcome.result is None or outcome.result.code is not ResultCode.OK:
            return outcome
    events = tuple(e for o in outcomes if o.result is not None for e in o.result.events)
    return Outcome(result=EngineResult(code=ResultCode.OK, events=events, order_id=None))


def _all(undo: list[Unsubscribe]) -> Unsubscribe:
    def unsubscribe() -> None:
        for u in undo:
            u()
    return unsubscribe


class ShardedVenue:
    """See the module docstring."""

    def __init__(self, shards: ShardMap, remotes: Mapping[str, RemoteVenue]) -> None:
        self.map = shards
        self.remotes = {s.name: remotes[s.name] for s in shards.shards}
        self._current: RemoteVenue | None = None  # the shard whose events or book are being read

    @classmethod
    def connect(cls, servers: list[str], base_stream: str, shards: ShardMap, **remote: Any) -> ShardedVenue:
        """One ``RemoteVenue`` per shard, on the shard's subjects (``omn.<BASE>_<NAME>.*``)."""
        return cls(shards, {s.name: RemoteVenue(servers, s.stream(base_stream), **remote) for s in shards.shards})

    async def start(self) -> None:
        for remote in self.remotes.values():
            await remote.start()

    def close(self) -> None:
        for remote in self.remotes.values():
            remote.close()

    def _at(self, shard: Shard) -> RemoteVenue:
        return self.remotes[shard.name]

    def _of_symbol(self, symbol: str) -> RemoteVenue | None:
        shard = self.map.owner(symbol)
        return None if shard is None else self._at(shard)

    def _of_order(self, order_id: int) -> RemoteVenue | None:
        shard = self.map.of_order(order_id)
        return None if shard is None else self._at(shard)

    def _route(self, cmd: Command) -> RemoteVenue | list[RemoteVenue] | None:
        """The shard a command goes to; a list for every shard; None when no shard owns it."""
        if isinstance(cmd, NewOrder):
            return self._of_symbol(cmd.symbol)
        if isinstance(cmd, MassCancel):
            return list(self.remotes.values()) if cmd.symbol is None else self._of_symbol(cmd.symbol)
        return self._of_order(cmd.order_id)

    # -- commands

    async def submit(self, participant: str, cmd: Command) -> Outcome:
        target = self._route(cmd)
        if isinstance(target, list):
            outcomes = await asyncio.gather(*(r.submit(participant, cmd) for r in target))
            return merge_mass_cancels(outcomes)
        if target is not None:
            return await target.submit(participant, cmd)
        if isinstance(cmd, NewOrder | MassCancel):
            return _refused("UNKNOWN_INSTRUMENT", f"no shard trades {cmd.symbol}", symbol=cmd.symbol or "")
        return _refused("UNKNOWN_ORDER", f"no shard gave order id {cmd.order_id}", order_id=cmd.order_id)

    async def submit_batch(self, participant: str,
                           cmds: Sequence[NewOrder | CancelOrder | MassCancel]) -> list[Outcome]:
        answers: list[Outcome | None] = [None] * len(cmds)
        parts: dict[str, list[int]] = {}
        for i, cmd in enumerate(cmds):
            target = self._route(cmd)
            if isinstance(target, RemoteVenue):
                parts.setdefault(next(n for n, r in self.remotes.items() if r is target), []).append(i)
            else:  # fanned out or unroutable: on its own (a batch member answers like ``submit``)
                answers[i] = await self.submit(participant, cmd)
        names = list(parts)
        results = await asyncio.gather(*(self.remotes[n].submit_batch(participant, [cmds[i] for i in parts[n]])
                                         for n in names))
        for name, outcomes in zip(names, results, strict=True):
            for i, outcome in zip(parts[name], outcomes, strict=True):
                answers[i] = outcome
        return [a for a in answers if a is not None]

    async def set_status(self, symbol: str, status: InstrumentStatus, *, operator: str) -> Outcome:
        target = self._of_symbol(symbol)
        if target is None:
            return _refused("UNKNOWN_INSTRUMENT", f"no shard trades {symbol}", symbol=symbol)
        return await target.set_status(symbol, status, operator=operator)

    # -- reads

    def listings(self) -> list[Listing]:
        found: list[Listing] = []
        failures = 0
        for shard in self.map.shards:
            try:
                found += [x for x in self._at(shard).listings() if x.symbol in shard.instruments]
            except Unavailable:
                failures += 1
        if failures == len(self.map.shards):
            raise Unavailable("LEADER_UNAVAILABLE", "no shard leader answered")
        return found

    def listing(self, symbol: str) -> Listing | None:
        target = self._of_symbol(symbol)
        return None if target is None else target.listing(symbol)

    def api_key(self, key_id: str) -> ApiKey | None:
        last: Unavailable | None = None
        for remote in self.remotes.values():
            try:
                return remote.api_key(key_id)
            except Unavailable as exc:
                last = exc
        assert last is not None
        raise last

    def l2(self, symbol: str, depth: int | None = None) -> L2Snapshot:
        target = self._of_symbol(symbol)
        if target is None:
            return next(iter(self.remotes.values())).l2(symbol, depth)  # the shard answers UNKNOWN_INSTRUMENT
        self._current = target
        return target.l2(symbol, depth)

    @property
    def stream_seq(self) -> int:
        """``VenuePort.stream_seq`` in the stream of the shard whose events are being fanned out (or
        whose book was read last)."""
        return 0 if self._current is None else self._current.stream_seq

    def order(self, order_id: int) -> OrderView | None:
        target = self._of_order(order_id)
        return None if target is None else target.order(order_id)

    def open_orders(self, participant: str, symbol: str | None = None) -> list[OrderView]:
        if symbol is not None:
            target = self._of_symbol(symbol)
            return [] if target is None else target.open_orders(participant, symbol)
        return [v for r in self.remotes.values() for v in r.open_orders(participant, None)]

    def trades(self, *, symbol: str | None = None, participant: str | None = None, limit: int = 100) -> list[Trade]:
        if symbol is not None:
            target = self._of_symbol(symbol)
            return [] if target is None else target.trades(symbol=symbol, participant=participant, limit=limit)
        merged = [t for r in self.remotes.values() for t in r.trades(participant=participant, limit=limit)]
        return sorted(merged, key=lambda t: t.ts, reverse=True)[:limit]

    async def order_record(self, participant: str, order_id: int) -> OrderRecord | None:
        target = self._of_order(order_id)
        return None if target is None else await target.order_record(participant, order_id)

    async def trade_history(self, query: TradeQuery) -> Page[Trade]:
        """One instrument: its shard's pages. Every instrument: the newest ``limit`` trades of all
        shards merged (no cursor when there is more: page per instrument to read further)."""
        if query.symbol is not None:
            target = self._of_symbol(query.symbol)
            return Page(items=()) if target is None else await target.trade_history(query)
        pages = await asyncio.gather(*(r.trade_history(query) for r in self.remotes.values()))
        items = sorted((t for p in pages for t in p.items), key=lambda t: t.ts, reverse=True)
        more = len(items) > query.limit or any(p.next_cursor for p in pages)
        if more and len(pages) == 1:
            return pages[0]
        return Page(items=tuple(items[:query.limit]))

    # -- subscriptions: every shard's

    def subscribe_events(self, listener: Callable[[Event], None]) -> Unsubscribe:
        def of(remote: RemoteVenue) -> Callable[[Event], None]:
            def on_event(event: Event) -> None:
                self._current = remote
                listener(event)
            return on_event
        return _all([r.subscribe_events(of(r)) for r in self.remotes.values()])

    def subscribe_revocations(self, listener: Callable[[list[str]], None]) -> Unsubscribe:
        return _all([r.subscribe_revocations(listener) for r in self.remotes.values()])

    def subscribe_settlements(self, listener: Callable[[SettlementNotice], None]) -> Unsubscribe:
        return _all([r.subscribe_settlements(listener) for r in self.remotes.values()])
