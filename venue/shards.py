"""Sharding by instrument: several sequencer/engine groups, each owning a set of instruments.

    map        ``NAME=INDEX:SYM,SYM;NAME=INDEX:SYM`` (``ShardMap.parse``), the same text given to every
               shard leader (``venue run --shard NAME --shards MAP``) and every gateway
               (``venue gateway --shards MAP``). An instrument belongs to exactly one shard.
    names      shard ``a`` of the venue on stream ``OMN`` journals to stream ``OMN_a`` (its rpc,
               events and settlement subjects follow: ``omn.OMN_a.*``) and contends for the lease in
               bucket ``omn_leader_OMN_a``: each shard is a leader + standbys group of its own.
    ids        shard ``i``'s engine numbers its orders and trades from ``i << 40`` (``numbered_engine``),
               so ids are globally unique (one settlement contract checks trade ids for all shards)
               and an order id names its shard: ``order_id >> 40``. A gateway routes a cancel or an
               amend, which carries only the order id, by that. Index 0 is the unsharded numbering.
    owner      a shard leader refuses a new order or amend for an instrument it does not own with
               ``INSTRUMENT_NOT_ON_SHARD`` (``ShardGuard``, before the venue's own guards).
    cash       a buyer's cash is shared by every shard: ``venue.funding``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from engine import AmendOrder, Engine, NewOrder, OrderView
from journal.nats import parse_url
from journal.snapshot import EngineFactory
from market.codes import message
from market.model import Rejection

if TYPE_CHECKING:
    from journal.nats import NatsLoop
    from venue.runtime import Venue

ID_BITS = 40  # ids of shard i lie in (i << 40, (i + 1) << 40): about 10^12 orders per shard
MAX_SHARDS = 1024  # (1024 << 40) < 2^53: ids stay exact in JSON clients' doubles
NOT_OWNED = "INSTRUMENT_NOT_ON_SHARD"


class ShardMapError(ValueError):
    code = "SHARD_MAP_INVALID"


def shard_of_id(order_id: int) -> int:
    """The index of the shard whose engine gave this order (or trade) id."""
    return order_id >> ID_BITS


def id_base(index: int) -> int:
    return index << ID_BITS


@dataclass(frozen=True, slots=True)
class Shard:
    name: str
    index: int
    instruments: frozenset[str]

    def stream(self, base: str) -> str:
        return f"{base}_{self.name}"

    def url(self, journal_url: str) -> str:
        """The shard's journal URL: the venue's URL with the shard's stream."""
        servers, base = parse_url(journal_url)
        return "nats://" + ",".join(s.removeprefix("nats://") for s in servers) + "/" + self.stream(base)

    def engine_factory(self) -> EngineFactory[Engine]:
        return EngineFactory(new=lambda: numbered_engine(id_base(self.index)), from_snapshot=Engine.from_snapshot)


def numbered_engine(base: int) -> Engine:
    """An empty engine whose order and trade ids start after ``base``: built from an empty engine's
    snapshot with its id counters moved (the same for the compiled and the reference engine; a
    snapshot keeps the counters, so recovery keeps the range)."""
    data = Engine().snapshot()
    data["next_order_id"] = base + 1
    data["next_trade_id"] = base + 1
    return Engine.from_snapshot(data)


@dataclass(frozen=True, slots=True)
class ShardMap:
    shards: tuple[Shard, ...]

    @classmethod
    def parse(cls, text: str) -> ShardMap:
        shards = []
        for part in (p.strip() for p in text.split(";")):
            if not part:
                continue
            name, eq, rest = part.partition("=")
            index, colon, symbols = rest.partition(":")
            name = name.strip()
            if not eq or not colon or not name or not name.replace("-", "").isalnum() or not index.strip().isdigit():
                raise ShardMapError(f"shard {part!r}: expected NAME=INDEX:SYMBOL,SYMBOL")
            owned = frozenset(s.strip() for s in symbols.split(",") if s.strip())
            shards.append(Shard(name=name, index=int(index), instruments=owned))
        return cls.of(shards)

    @classmethod
    def of(cls, shards: Iterable[Shard]) -> ShardMap:
        found = tuple(sorted(shards, key=lambda s: s.index))
        if not found:
            raise ShardMapError("the shard map names no shard")
        names = [s.name for s in found]
        indices = [s.index for s in found]
        symbols = [sym for s in found for sym in s.instruments]
        if len(set(names)) != len(names) or len(set(indices)) != len(indices):
            raise ShardMapError("two shards share a name or an index")
        if len(set(symbols)) != len(symbols):
            raise ShardMapError("an instrument is given to two shards")
        if any(not 0 <= i < MAX_SHARDS for i in indices):
            raise ShardMapError(f"shard indices are 0..{MAX_SHARDS - 1}")
        return cls(found)

    def named(self, name: str) -> Shard:
        for shard in self.shards:
            if shard.name == name:
                return shard
        raise ShardMapError(f"the shard map has no shard {name!r}")

    def owner(self, symbol: str) -> Shard | None:
        return next((s for s in self.shards if symbol in s.instruments), None)

    def of_order(self, order_id: int) -> Shard | None:
        index = shard_of_id(order_id)
        return next((s for s in self.shards if s.index == index), None)


class Guard(Protocol):
    """The venue's own entry guards as the pipeline sees them (``venue.pipeline.EntryGuard``)."""

    def refuse(self, cmd: NewOrder | AmendOrder, order: OrderView | None) -> Rejection | None: ...


class ShardGuard:
    """Refuses new orders (and amends) for instruments this shard does not own, then asks ``inner``."""

    def __init__(self, shard: Shard, inner: Guard | None) -> None:
        self.shard = shard
        self.inner = inner

    def refuse(self, cmd: NewOrder | AmendOrder, order: OrderView | None) -> Rejection | None:
        symbol = cmd.symbol if isinstance(cmd, NewOrder) else (order.symbol if order is not None else None)
        if symbol is not None and symbol not in self.shard.instruments:
            return Rejection(code=NOT_OWNED, message=f"{message(NOT_OWNED)} ({symbol} is not on shard "
                                                     f"{self.shard.name})")
        return None if self.inner is None else self.inner.refuse(cmd, order)


def shard_config(journal_url: str, shards: str, name: str) -> tuple[Shard, str]:
    """``venue run --shard NAME --shards MAP``: (the shard, its journal URL)."""
    shard = ShardMap.parse(shards).named(name)
    return shard, shard.url(journal_url)


def base_stream(shard: Shard, shard_url: str) -> str:
    """The venue's stream name, from a shard's journal URL."""
    return parse_url(shard_url)[1].removesuffix(f"_{shard.name}")


def attach(venue: Venue, shard: Shard, journal_url: str, *, replicas: int = 1, epoch: int = 0) -> NatsLoop | None:
    """On a shard leader, once its venue started and before it answers anyone: the ownership guard
    in front of the venue's guards, and the shared cash pool (``venue.funding``) with this shard's
    entries re-derived from the holds its recovery rebuilt, stamped with ``epoch`` (the stream
    sequence of this leader's claim). Runs on the venue's event loop (nothing may change the ledger
    while its entries are written). Returns the pool's connection (to close)."""
    from journal.nats import NatsLoop
    from venue.funding import FundingPool, bucket_name

    pipeline = venue.core.pipeline
    pipeline.guard = ShardGuard(shard, pipeline.guard)
    gatekeeper = getattr(venue, "gatekeeper", None)
    if gatekeeper is None:
        return None
    servers, _ = parse_url(journal_url)
    conn = NatsLoop(servers, timeout=2.0)
    cache = gatekeeper.cache
    pool = FundingPool(conn, bucket_name(base_stream(shard, journal_url)), shard.name, replicas=replicas,
                       view_block=lambda: cache.block, epoch=epoch)
    pool.rederive(dict(+gatekeeper.ledger.cash_reserved))
    gatekeeper.share_cash(pool)
    return conn


__all__: Sequence[str] = ("ID_BITS", "NOT_OWNED", "Shard", "ShardGuard", "ShardMap", "ShardMapError", "attach",
                          "shard_config", "shard_of_id")
