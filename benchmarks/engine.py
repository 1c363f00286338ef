"""Matching engine benchmark: throughput and latency percentiles per operation class.

    .venv/bin/python benchmarks/engine.py [--ops 200000] [--profile] [--compare]

Streams (generated up front, outside the timed region, by driving a separate engine so that every
cancel/amend addresses a live order):

- ``insert``: passive GTC limit orders only (never cross), book grows to ``--ops`` orders.
- ``mixed``: a steady-state book of ~``--depth`` resting orders, a mix loosely modelled on
  exchange-core's generator (placements, moves, cancels, some IOC; the proportions are ours):
  45% passive GTC limit, 10% marketable IOC limit (crosses 1-3 levels), 20% amend
  that moves the price (loses priority, may trade), 5% amend that reduces quantity (keeps
  priority), 20% cancel. 200 participants, one instrument.

Throughput is measured in a loop with no per-call instrumentation (best of ``--repeat`` runs: the
machine is shared, the best run is the least disturbed one); latency percentiles in a further
run with ``perf_counter_ns`` around every ``process`` call (which adds ~0.1 us). The GC stays on
(as in the venue); the overall line also shows a run with the cyclic GC off. Ops/s per class is
1 / mean latency of that class. ``--profile`` prints where the time goes (cProfile, mixed stream).
``--compare`` runs the same streams through ``pyorderbook`` (a pure-Python price-time order book
from PyPI; ``.venv/bin/pip install pyorderbook``, not a project dependency) and prints the ratio.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import logging
import pstats
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Run as a script, this file's directory comes first on sys.path and its name would shadow the package.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

from engine import (  # noqa: E402
    AddInstrument,
    AmendOrder,
    CancelOrder,
    Command,
    Engine,
    Fill,
    InstrumentSpec,
    NewOrder,
    ResultCode,
    Side,
    TimeInForce,
)

SYMBOL = "OMN-BENCH"
MID = 10_000
CLASSES = ("new", "marketable", "amend", "cancel")


@dataclass
class Stream:
    name: str
    commands: list[Command] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)


def _spec() -> InstrumentSpec:
    return InstrumentSpec(symbol=SYMBOL, tick_size=1, lot_size=1, max_qty=10**9, band_low=1, band_high=10**9)


def _fresh_engine() -> Engine:
    engine = Engine()
    engine.process(AddInstrument(ts=0, spec=_spec()))
    return engine


class _Live:
    """Live resting order ids with O(1) random pick and removal."""

    def __init__(self) -> None:
        self.ids: list[int] = []
        self.pos: dict[int, int] = {}

    def add(self, oid: int) -> None:
        if oid not in self.pos:
            self.pos[oid] = len(self.ids)
            self.ids.append(oid)

    def discard(self, oid: int) -> None:
        i = self.pos.pop(oid, None)
        if i is None:
            return
        last = self.ids.pop()
        if last != oid:
            self.ids[i] = last
            self.pos[last] = i

    def pick(self, rng: random.Random) -> int:
        return self.ids[rng.randrange(len(self.ids))]


def insert_stream(n: int, seed: int = 1) -> Stream:
    rng = random.Random(seed)
    stream = Stream("insert")
    for i in range(n):
        buy = rng.random() < 0.5
        price = MID - 1 - rng.randrange(500) if buy else MID + 1 + rng.randrange(500)
        stream.commands.append(NewOrder(
            ts=i + 1, participant=f"p{rng.randrange(200)}", symbol=SYMBOL, side=Side.BUY if buy else Side.SELL,
            qty=1 + rng.randrange(100), price=price))
        stream.classes.append("new")
    return stream


def mixed_stream(n: int, depth: int, seed: int = 2) -> Stream:
    """Generate by driving a scratch engine, so cancels and amends always address live orders."""
    rng = random.Random(seed)
    engine = _fresh_engine()
    live = _Live()
    stream = Stream("mixed")
    ts = 0

    def best(side: Side) -> int | None:
        snap = engine.l2(SYMBOL, 1)
        levels = snap.bids if side is Side.BUY else snap.asks
        return levels[0].price if levels else None

    while len(stream.commands) < n:
        ts += 1
        participant = f"p{rng.randrange(200)}"
        buy = rng.random() < 0.5
        side = Side.BUY if buy else Side.SELL
        roll = rng.random()
        cmd: Command
        if len(live.ids) < depth // 2 or roll < 0.45:
            opp = best(side.opposite)
            ref = opp if opp is not None else MID
            price = ref - 1 - rng.randrange(100) if buy else ref + 1 + rng.randrange(100)
            cmd = NewOrder(ts=ts, participant=participant, symbol=SYMBOL, side=side, qty=1 + rng.randrange(100),
                           price=max(price, 1))
            kind = "new"
        elif roll < 0.55:
            opp = best(side.opposite)
            if opp is None:
                continue
            price = opp + rng.randrange(3) if buy else opp - rng.randrange(3)
            cmd = NewOrder(ts=ts, participant=participant, symbol=SYMBOL, side=side, qty=1 + rng.randrange(150),
                           price=max(price, 1), tif=TimeInForce.IOC)
            kind = "marketable"
        elif roll < 0.80:
            view = engine.order(live.pick(rng))
            assert view is not None
            new_price = max(view.price + rng.choice((-3, -2, -1, 1, 2, 3)), 1)
            cmd = AmendOrder(ts=ts, participant=view.participant, order_id=view.order_id, price=new_price)
            kind = "amend"
        elif roll < 0.85:
            view = engine.order(live.pick(rng))
            assert view is not None
            if view.qty - view.remaining + 1 >= view.qty:
                continue
            new_qty = rng.randrange(view.qty - view.remaining + 1, view.qty)
            cmd = AmendOrder(ts=ts, participant=view.participant, order_id=view.order_id, qty=new_qty)
            kind = "amend"
        else:
            view = engine.order(live.pick(rng))
            assert view is not None
            cmd = CancelOrder(ts=ts, participant=view.participant, order_id=view.order_id)
            kind = "cancel"
        result = engine.process(cmd)
        assert result.code is ResultCode.OK, (cmd, result.code)
        for event in result.events:
            if isinstance(event, Fill) and event.maker_remaining == 0:
                live.discard(event.maker_order_id)
        oid = result.order_id
        assert oid is not None
        if engine.order(oid) is None:
            live.discard(oid)
        else:
            live.add(oid)
        stream.commands.append(cmd)
        stream.classes.append(kind)
    return stream


# ------------------------------------------------------------------ measurement


def throughput(stream: Stream, *, collect: bool = True) -> float:
    """Ops/s of one uninstrumented run; ``collect=False`` runs it with the cyclic GC disabled."""
    engine = _fresh_engine()
    process = engine.process
    commands = stream.commands
    gc.collect()
    if not collect:
        gc.disable()
    try:
        start = time.perf_counter()
        for cmd in commands:
            process(cmd)
        elapsed = time.perf_counter() - start
    finally:
        gc.enable()
    return len(commands) / elapsed


def latencies(stream: Stream) -> dict[str, list[int]]:
    engine = _fresh_engine()
    process = engine.process
    clock = time.perf_counter_ns
    out: dict[str, list[int]] = {}
    gc.collect()
    samples: list[int] = []
    append = samples.append
    for cmd in stream.commands:
        t0 = clock()
        process(cmd)
        append(clock() - t0)
    for kind, ns in zip(stream.classes, samples, strict=True):
        out.setdefault(kind, []).append(ns)
    return out


def _pct(sorted_ns: list[int], q: float) -> float:
    return sorted_ns[min(len(sorted_ns) - 1, int(q * len(sorted_ns)))] / 1000


def report(stream: Stream, repeat: int) -> dict[str, Any]:
    ops = max(throughput(stream) for _ in range(repeat))
    ops_no_gc = max(throughput(stream, collect=False) for _ in range(repeat))
    lat = latencies(stream)
    print(f"\n== {stream.name}: {len(stream.commands):,} ops, {ops:,.0f} ops/s overall (best of {repeat}; "
          f"{ops_no_gc:,.0f} ops/s with the cyclic GC off)")
    head = ("class", "count", "ops/s", "p50 us", "p90 us", "p99 us", "p99.9 us", "max us")
    print(f"{head[0]:<11} " + " ".join(f"{h:>9}" for h in head[1:]))
    rows: dict[str, Any] = {"overall_ops": ops}
    for kind in CLASSES:
        ns = lat.get(kind)
        if not ns:
            continue
        ns.sort()
        mean = sum(ns) / len(ns)
        row = {"count": len(ns), "ops": 1e9 / mean, "p50": _pct(ns, 0.5), "p90": _pct(ns, 0.9),
               "p99": _pct(ns, 0.99), "p999": _pct(ns, 0.999), "max": ns[-1] / 1000}
        rows[kind] = row
        print(f"{kind:<11} {row['count']:>9,} {row['ops']:>9,.0f} {row['p50']:>9.1f} {row['p90']:>9.1f} "
              f"{row['p99']:>9.1f} {row['p999']:>9.1f} {row['max']:>9.0f}")
    return rows


def profile(stream: Stream, top: int = 18) -> None:
    engine = _fresh_engine()
    process = engine.process
    prof = cProfile.Profile()
    prof.enable()
    for cmd in stream.commands:
        process(cmd)
    prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(top)
    print(f"\n== cProfile of the {stream.name} stream (sorted by own time)")
    print("\n".join(line for line in out.getvalue().splitlines() if line.strip())[:6000])


# ------------------------------------------------------------------ comparison with pyorderbook


def _pyorderbook_runner(stream: Stream) -> Callable[[], float] | None:
    """Build a timed runner over pyorderbook, or None if it is not installed.

    pyorderbook has no IOC and no amend: IOC = match, then cancel what rests; amend = cancel and
    re-enter (so a reduce loses priority there). Order objects for new orders are built up front,
    like our commands; amend replacements are built inside the timed loop (they depend on fills).
    """
    try:
        import pyorderbook
    except ImportError:
        return None
    logging.getLogger("pyorderbook.book").setLevel(logging.WARNING)
    py_side = {Side.BUY: pyorderbook.Side.BID, Side.SELL: pyorderbook.Side.ASK}

    def run() -> float:
        book = pyorderbook.Book()
        by_id: dict[int, Any] = {}
        next_id = 1
        prepared: list[tuple[int, Any, Any]] = []
        for cmd in stream.commands:
            if isinstance(cmd, NewOrder):
                assert cmd.price is not None
                order = pyorderbook.Order(py_side[cmd.side], SYMBOL, cmd.price, cmd.qty)
                prepared.append((0 if cmd.tif is TimeInForce.GTC else 1, order, next_id))
                next_id += 1
            elif isinstance(cmd, AmendOrder):
                prepared.append((2, cmd, None))
            elif isinstance(cmd, CancelOrder):
                prepared.append((3, cmd, None))
        order_map = book.order_map
        gc.collect()
        start = time.perf_counter()
        for kind, obj, oid in prepared:
            if kind == 0:
                book.match(obj)
                if obj.quantity:
                    by_id[oid] = obj
            elif kind == 1:
                book.match(obj)
                if obj.quantity:
                    book.cancel(obj)
            else:
                order = by_id.pop(obj.order_id, None)
                if order is None or order.id not in order_map:
                    continue
                book.cancel(order)
                if kind == 2:
                    price = obj.price if obj.price is not None else int(order.price)
                    filled = order.original_quantity - order.quantity
                    qty = order.quantity if obj.qty is None else max(1, obj.qty - filled)
                    replacement = pyorderbook.Order(order.side, SYMBOL, price, qty)
                    book.match(replacement)
                    if replacement.quantity:
                        by_id[obj.order_id] = replacement
        return len(prepared) / (time.perf_counter() - start)

    return run


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ops", type=int, default=200_000)
    parser.add_argument("--depth", type=int, default=2_000, help="target resting orders in the mixed stream")
    parser.add_argument("--repeat", type=int, default=3, help="throughput runs per stream; the best counts")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--compare", action="store_true", help="also run pyorderbook (if installed)")
    args = parser.parse_args(argv)

    print(f"python {sys.version.split()[0]}; generating streams ({args.ops:,} ops each) ...")
    streams = [insert_stream(args.ops), mixed_stream(args.ops, args.depth)]
    results = {s.name: report(s, args.repeat) for s in streams}
    if args.profile:
        profile(streams[1])
    if args.compare:
        print("\n== comparison with pyorderbook (same streams, ops/s overall)")
        for stream in streams:
            runner = _pyorderbook_runner(stream)
            if runner is None:
                print("pyorderbook not installed: .venv/bin/pip install pyorderbook")
                break
            theirs = max(runner() for _ in range(args.repeat))
            ours = results[stream.name]["overall_ops"]
            print(f"{stream.name:<8} engine {ours:>10,.0f}  pyorderbook {theirs:>10,.0f}  ratio {ours / theirs:.2f}x")


if __name__ == "__main__":
    main()
