"""Matching engine benchmark: both implementations and the PyPI peers on the same command streams.

    .venv/bin/python benchmarks/engine.py [--ops 100000] [--repeat 5] [--profile] [--compare]
    .venv-bench/bin/python benchmarks/engine.py --compare --profile --markdown   # README table

(``scripts/bench_venv.sh`` creates ``.venv-bench`` with the project and the four peers.)

Streams (generated up front, outside the timed region, by driving a scratch engine so that every
cancel/move addresses a live order; a stream's ``setup`` part is applied before the clock starts):

- ``insert``: passive GTC limit orders only (never cross); the book grows to ``--ops`` orders.
- ``exchange-core``: exchange-core's benchmark mix: ~9% GTC, 3% IOC, 6% cancel, 82% move (amend to
  a new price, which loses priority and may trade); 1,000 accounts; a steady book of ~1,000
  resting orders over ~750 price levels (prefilled in ``setup``).
- ``project``: this project's own mix: 45% passive GTC, 10% marketable IOC (crosses 1-3 levels),
  20% price move, 5% quantity reduce (keeps priority), 20% cancel; 200 participants, ~2,000 resting.

Runners: ``python``/``compiled`` x ``process`` (one call per command, a ``Result`` with event objects
each) / ``process_many`` (one call for the whole stream, compact results), ``compiled many x4096``
(one call per 4,096 commands, as recovery replays), ``compiled many+objects`` (process_many, then
every ``Result`` and event object built), and the peers if installed:
``pyorderbook`` (pure Python), ``cython-orderbook`` (Cython), ``lightmatchingengine`` (pure Python),
``limit-order-book`` (C++ through ctypes). The peers have no IOC, no amend, no events, no validation,
STP or GTD: IOC = place, then cancel what rests; move = cancel, then place the remaining quantity at
the new price (a new order); reduce = cancel and re-place smaller. Their order objects are built
inside the timed loop (as their APIs require); the id bookkeeping their APIs force is timed too.

Measurement: CPU time (``time.process_time``) of each runner over the whole stream; ``--repeat``
rounds, each running every runner once (interleaved, so machine-load swings hit all alike); the
table shows ops per CPU-second for the best (min CPU time) and the median round, and the ratio of
``compiled process_many`` to each peer (medians). Latency percentiles per operation class come from
a further run with ``perf_counter_ns`` around each ``process`` call (both implementations).
``--profile`` prints cProfile of the reference engine on the exchange-core stream (cProfile cannot
see inside the compiled core; for it the table's ``process_many`` vs ``many+objects`` rows split
matching from building event objects).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import importlib
import io
import logging
import pstats
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
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
    implementations,
)

SYMBOL = "OMN-BENCH"
MID = 10_000
CLASSES = ("new", "marketable", "move", "reduce", "cancel")

# A peer op: (kind, our order id, is_buy, qty, price); kinds below. Built from our commands.
NEW, IOC, MOVE, CANCEL = 0, 1, 2, 3


@dataclass
class Stream:
    name: str
    setup: list[Command] = field(default_factory=list)
    commands: list[Command] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)
    setup_ops: list[tuple[int, int, bool, int, int]] = field(default_factory=list)
    ops: list[tuple[int, int, bool, int, int]] = field(default_factory=list)


def _spec() -> InstrumentSpec:
    return InstrumentSpec(symbol=SYMBOL, tick_size=1, lot_size=1, max_qty=10**9, band_low=1, band_high=10**9)


def _fresh(cls: type[Engine]) -> Engine:
    engine = cls()
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


class _Builder:
    """Drives a scratch engine while a stream is generated: ids, live orders, best prices."""

    def __init__(self, stream: Stream, seed: int, participants: int) -> None:
        self.stream = stream
        self.rng = random.Random(seed)
        self.engine = _fresh(Engine)
        self.live = _Live()
        self.ts = 0
        self.participants = [f"p{i}" for i in range(participants)]

    def best(self, side: Side) -> int | None:
        snap = self.engine.l2(SYMBOL, 1)
        levels = snap.bids if side is Side.BUY else snap.asks
        return levels[0].price if levels else None

    def apply(self, cmd: Command, kind: str, op: tuple[int, int, bool, int, int], *, setup: bool = False) -> None:
        result = self.engine.process(cmd)
        assert result.code is ResultCode.OK, (cmd, result.code)
        for event in result.events:
            if isinstance(event, Fill) and event.maker_remaining == 0:
                self.live.discard(event.maker_order_id)
        oid = result.order_id
        assert oid is not None
        if self.engine.order(oid) is None:
            self.live.discard(oid)
        else:
            self.live.add(oid)
        if isinstance(cmd, NewOrder):
            op = (op[0], oid, op[2], op[3], op[4])
        if setup:
            self.stream.setup.append(cmd)
            self.stream.setup_ops.append(op)
        else:
            self.stream.commands.append(cmd)
            self.stream.classes.append(kind)
            self.stream.ops.append(op)

    def place(self, *, spread: Callable[[], int], qty: int, setup: bool = False) -> None:
        rng = self.rng
        self.ts += 1
        buy = rng.random() < 0.5
        side = Side.BUY if buy else Side.SELL
        opp = self.best(side.opposite)
        ref = opp if opp is not None else MID
        price = max(ref - spread() if buy else ref + spread(), 1)
        cmd = NewOrder(ts=self.ts, participant=rng.choice(self.participants), symbol=SYMBOL, side=side, qty=qty,
                       price=price)
        self.apply(cmd, "new", (NEW, 0, buy, qty, price), setup=setup)

    def ioc(self, *, depth: int, qty: int) -> bool:
        rng = self.rng
        buy = rng.random() < 0.5
        side = Side.BUY if buy else Side.SELL
        opp = self.best(side.opposite)
        if opp is None:
            return False
        self.ts += 1
        price = opp + rng.randrange(depth) if buy else max(opp - rng.randrange(depth), 1)
        cmd = NewOrder(ts=self.ts, participant=rng.choice(self.participants), symbol=SYMBOL, side=side, qty=qty,
                       price=price, tif=TimeInForce.IOC)
        self.apply(cmd, "marketable", (IOC, 0, buy, qty, price))
        return True

    def move(self, delta: int) -> None:
        view = self.engine.order(self.live.pick(self.rng))
        assert view is not None
        self.ts += 1
        new_price = max(view.price + delta, 1)
        if new_price == view.price:
            new_price += 1
        cmd = AmendOrder(ts=self.ts, participant=view.participant, order_id=view.order_id, price=new_price)
        self.apply(cmd, "move", (MOVE, view.order_id, view.side is Side.BUY, view.remaining, new_price))

    def reduce(self) -> bool:
        view = self.engine.order(self.live.pick(self.rng))
        assert view is not None
        filled = view.qty - view.remaining
        if filled + 1 >= view.qty:
            return False
        self.ts += 1
        new_qty = self.rng.randrange(filled + 1, view.qty)
        cmd = AmendOrder(ts=self.ts, participant=view.participant, order_id=view.order_id, qty=new_qty)
        self.apply(cmd, "reduce", (MOVE, view.order_id, view.side is Side.BUY, new_qty - filled, view.price))
        return True

    def cancel(self) -> None:
        view = self.engine.order(self.live.pick(self.rng))
        assert view is not None
        self.ts += 1
        cmd = CancelOrder(ts=self.ts, participant=view.participant, order_id=view.order_id)
        self.apply(cmd, "cancel", (CANCEL, view.order_id, view.side is Side.BUY, 0, 0))


def insert_stream(n: int, seed: int = 1) -> Stream:
    stream = Stream("insert")
    b = _Builder(stream, seed, 200)
    rng = b.rng
    for i in range(n):
        buy = rng.random() < 0.5
        price = MID - 1 - rng.randrange(500) if buy else MID + 1 + rng.randrange(500)
        qty = 1 + rng.randrange(100)
        cmd = NewOrder(ts=i + 1, participant=rng.choice(b.participants), symbol=SYMBOL,
                       side=Side.BUY if buy else Side.SELL, qty=qty, price=price)
        stream.commands.append(cmd)
        stream.classes.append("new")
        stream.ops.append((NEW, i + 1, buy, qty, price))
    return stream


def exchange_core_stream(n: int, seed: int = 3, target: int = 1_000) -> Stream:
    """exchange-core's mix: 9% GTC, 3% IOC, 6% cancel, 82% move; 1,000 accounts; ~1,000 orders."""
    stream = Stream("exchange-core")
    b = _Builder(stream, seed, 1_000)
    rng = b.rng

    def spread() -> int:
        return 1 + min(int(rng.expovariate(1 / 300)), 1200)

    while len(b.live.ids) < target:
        b.place(spread=spread, qty=1 + rng.randrange(100), setup=True)
    while len(stream.commands) < n:
        roll = rng.random()
        live = len(b.live.ids)
        if roll < 0.09 or live < target * 0.9:
            if live > target * 1.02:  # too many resting: this GTC crosses and takes out a few makers
                b.place(spread=lambda: -rng.randrange(3), qty=100 + rng.randrange(200))
            else:
                b.place(spread=spread, qty=1 + rng.randrange(100))
        elif roll < 0.12:
            b.ioc(depth=3, qty=1 + rng.randrange(60))
        elif roll < 0.18 and live > target * 0.8:
            b.cancel()
        else:
            b.move(rng.choice((-1, 1)) * (1 + int(rng.expovariate(1 / 12))))
    return stream


def project_stream(n: int, depth: int = 2_000, seed: int = 2) -> Stream:
    stream = Stream("project")
    b = _Builder(stream, seed, 200)
    rng = b.rng

    def spread() -> int:
        return 1 + rng.randrange(100)

    while len(b.live.ids) < depth // 2:
        b.place(spread=spread, qty=1 + rng.randrange(100), setup=True)
    while len(stream.commands) < n:
        roll = rng.random()
        if len(b.live.ids) < depth // 2 or roll < 0.45:
            b.place(spread=spread, qty=1 + rng.randrange(100))
        elif roll < 0.55:
            b.ioc(depth=3, qty=1 + rng.randrange(150))
        elif roll < 0.75:
            b.move(rng.choice((-3, -2, -1, 1, 2, 3)))
        elif roll < 0.80:
            b.reduce()
        else:
            b.cancel()
    return stream


# ------------------------------------------------------------------ runners (each returns CPU seconds)

Runner = Callable[[Stream], float]


def _ours(cls: type[Engine], mode: str) -> Runner:
    def run(stream: Stream) -> float:
        engine = _fresh(cls)
        engine.process_many(stream.setup)
        commands = stream.commands
        gc.collect()
        if mode == "process":
            process = engine.process
            start = time.process_time()
            for cmd in commands:
                process(cmd)
            return time.process_time() - start
        if mode == "chunks":  # as recovery replays: 4,096 commands per call
            start = time.process_time()
            for i in range(0, len(commands), 4096):
                engine.process_many(commands[i:i + 4096])
            return time.process_time() - start
        start = time.process_time()
        batch = engine.process_many(commands)
        if mode == "objects":
            for _ in batch:
                pass
        return time.process_time() - start

    return run


def _peer_pyorderbook() -> Runner | None:
    try:
        pyorderbook = importlib.import_module("pyorderbook")
    except ImportError:
        return None
    logging.getLogger("pyorderbook.book").setLevel(logging.WARNING)
    bid, ask = pyorderbook.Side.BID, pyorderbook.Side.ASK
    make = pyorderbook.Order

    def run(stream: Stream) -> float:
        book = pyorderbook.Book()
        live: dict[int, Any] = {}
        order_map = book.order_map

        def play(ops: Sequence[tuple[int, int, bool, int, int]]) -> None:
            for kind, oid, buy, qty, price in ops:
                if kind == NEW:
                    order = make(bid if buy else ask, SYMBOL, price, qty)
                    book.match(order)
                    if order.quantity:
                        live[oid] = order
                elif kind == IOC:
                    order = make(bid if buy else ask, SYMBOL, price, qty)
                    book.match(order)
                    if order.quantity:
                        book.cancel(order)
                else:
                    order = live.pop(oid, None)
                    if order is None or order.id not in order_map:
                        continue
                    book.cancel(order)
                    if kind == MOVE:
                        order = make(bid if buy else ask, SYMBOL, price, qty)
                        book.match(order)
                        if order.quantity:
                            live[oid] = order

        play(stream.setup_ops)
        gc.collect()
        start = time.process_time()
        play(stream.ops)
        return time.process_time() - start

    return run


def _peer_cython_orderbook() -> Runner | None:
    try:
        mod = importlib.import_module("cython_orderbook")
    except ImportError:
        return None
    bid, ask = mod.OrderSide.BID, mod.OrderSide.ASK
    make = mod.Order

    def run(stream: Stream) -> float:
        book = mod.OrderBook()
        live: dict[int, Any] = {}
        add = book.add_limit_order
        cancel = book.cancel_order

        def play(ops: Sequence[tuple[int, int, bool, int, int]]) -> None:
            for kind, oid, buy, qty, price in ops:
                if kind == NEW:
                    order = make(bid if buy else ask, qty, price)
                    add(order)
                    if order.remaining_quantity:
                        live[oid] = order
                elif kind == IOC:
                    order = make(bid if buy else ask, qty, price)
                    add(order)
                    if order.remaining_quantity:
                        cancel(order.order_id)
                else:
                    order = live.pop(oid, None)
                    if order is None or not cancel(order.order_id):
                        continue
                    if kind == MOVE:
                        order = make(bid if buy else ask, qty, price)
                        add(order)
                        if order.remaining_quantity:
                            live[oid] = order

        play(stream.setup_ops)
        gc.collect()
        start = time.process_time()
        play(stream.ops)
        return time.process_time() - start

    return run


def _peer_lightmatchingengine() -> Runner | None:
    try:
        mod = importlib.import_module("lightmatchingengine.lightmatchingengine")
    except ImportError:
        return None
    buy_side, sell_side = mod.Side.BUY, mod.Side.SELL

    def run(stream: Stream) -> float:
        lme = mod.LightMatchingEngine()
        live: dict[int, Any] = {}
        add = lme.add_order
        cancel = lme.cancel_order

        def play(ops: Sequence[tuple[int, int, bool, int, int]]) -> None:
            for kind, oid, buy, qty, price in ops:
                # its id map keeps filled orders (cancelling one fails an assertion): check leaves_qty
                if kind == NEW:
                    order, _ = add(SYMBOL, price, qty, buy_side if buy else sell_side)
                    if order.leaves_qty:
                        live[oid] = order
                elif kind == IOC:
                    order, _ = add(SYMBOL, price, qty, buy_side if buy else sell_side)
                    if order.leaves_qty:
                        cancel(order.order_id, SYMBOL)
                else:
                    order = live.pop(oid, None)
                    if order is None or not order.leaves_qty:
                        continue
                    cancel(order.order_id, SYMBOL)
                    if kind == MOVE:
                        order, _ = add(SYMBOL, price, qty, buy_side if buy else sell_side)
                        if order.leaves_qty:
                            live[oid] = order

        play(stream.setup_ops)
        gc.collect()
        start = time.process_time()
        play(stream.ops)
        return time.process_time() - start

    return run


def _peer_limit_order_book() -> Runner | None:
    try:
        mod = importlib.import_module("limit_order_book")
    except ImportError:
        return None

    def run(stream: Stream) -> float:
        book = mod.LimitOrderBook()
        limit, has, cancel = book.limit, book.has, book.cancel

        def play(ops: Sequence[tuple[int, int, bool, int, int]]) -> None:
            for kind, oid, buy, qty, price in ops:
                if kind == NEW:
                    limit(buy, oid, qty, price)
                elif kind == IOC:
                    limit(buy, oid, qty, price)
                    if has(oid):
                        cancel(oid)
                elif has(oid):
                    cancel(oid)
                    if kind == MOVE:
                        limit(buy, oid, qty, price)

        play(stream.setup_ops)
        gc.collect()
        start = time.process_time()
        play(stream.ops)
        return time.process_time() - start

    return run


PEERS: dict[str, Callable[[], Runner | None]] = {
    "pyorderbook": _peer_pyorderbook,
    "cython-orderbook": _peer_cython_orderbook,
    "lightmatchingengine": _peer_lightmatchingengine,
    "limit-order-book": _peer_limit_order_book,
}
MAIN = "compiled process_many"


def runners(compare: bool) -> tuple[dict[str, Runner], list[str]]:
    out: dict[str, Runner] = {}
    impls = implementations()
    for name in ("compiled", "python"):
        cls = impls.get(name)
        if cls is None:
            continue
        out[f"{name} process_many"] = _ours(cls, "many")
        out[f"{name} process"] = _ours(cls, "process")
        if name == "compiled":
            out["compiled many x4096"] = _ours(cls, "chunks")
            out["compiled many+objects"] = _ours(cls, "objects")
    missing = []
    if compare:
        for peer, factory in PEERS.items():
            runner = factory()
            if runner is None:
                missing.append(peer)
            else:
                out[peer] = runner
    return out, missing


# ------------------------------------------------------------------ measurement


def measure(streams: list[Stream], runs: dict[str, Runner], repeat: int) -> dict[str, dict[str, list[float]]]:
    """CPU seconds per (stream, runner) for ``repeat`` interleaved rounds."""
    times: dict[str, dict[str, list[float]]] = {s.name: {r: [] for r in runs} for s in streams}
    for _ in range(repeat):
        for stream in streams:
            for name, run in runs.items():
                times[stream.name][name].append(run(stream))
    return times


def latencies(cls: type[Engine], stream: Stream) -> dict[str, list[int]]:
    engine = _fresh(cls)
    engine.process_many(stream.setup)
    process = engine.process
    clock = time.perf_counter_ns
    gc.collect()
    samples: list[int] = []
    append = samples.append
    for cmd in stream.commands:
        t0 = clock()
        process(cmd)
        append(clock() - t0)
    out: dict[str, list[int]] = {}
    for kind, ns in zip(stream.classes, samples, strict=True):
        out.setdefault(kind, []).append(ns)
    return out


def _pct(sorted_ns: list[int], q: float) -> float:
    return sorted_ns[min(len(sorted_ns) - 1, int(q * len(sorted_ns)))] / 1000


def report(streams: list[Stream], times: dict[str, dict[str, list[float]]], repeat: int, markdown: bool) -> None:
    for stream in streams:
        n = len(stream.commands)
        rows = times[stream.name]
        main = rows.get(MAIN) or next(iter(rows.values()))
        print(f"\n== {stream.name}: {n:,} ops, {n / statistics.median(main):,.0f} ops/s overall "
              f"(ops per CPU-second, median of {repeat} interleaved rounds, {MAIN if MAIN in rows else 'engine'})")
        print(f"{'runner':<24} {'best ops/s':>12} {'median ops/s':>13} {'vs compiled':>12}")
        for name, secs in rows.items():
            ratio = statistics.median(secs) / statistics.median(main)
            print(f"{name:<24} {n / min(secs):>12,.0f} {n / statistics.median(secs):>13,.0f} {ratio:>11.2f}x")
    for stream in streams:  # the line run_all.py parses (pyorderbook) and one per other peer
        rows = times[stream.name]
        main_ops = len(stream.commands) / statistics.median(rows.get(MAIN) or next(iter(rows.values())))
        for peer in PEERS:
            if peer in rows:
                theirs = len(stream.commands) / statistics.median(rows[peer])
                print(f"{stream.name:<14} engine {main_ops:>11,.0f}  {peer} {theirs:>11,.0f}  "
                      f"ratio {main_ops / theirs:.2f}x")
    if markdown:
        names = list(next(iter(times.values())))
        print("\n| runner (ops per CPU-second, median / best of " + str(repeat) + ") | "
              + " | ".join(s.name for s in streams) + " |")
        print("|---|" + "---:|" * len(streams))
        for name in names:
            cells = []
            for stream in streams:
                secs = times[stream.name][name]
                n = len(stream.commands)
                cells.append(f"{n / statistics.median(secs):,.0f} / {n / min(secs):,.0f}")
            print(f"| {name} | " + " | ".join(cells) + " |")
        print("| **compiled process_many vs peer (median ratio)** |" + " |" * len(streams))
        for peer in PEERS:
            if peer not in names:
                continue
            cells = []
            for stream in streams:
                rows = times[stream.name]
                cells.append(f"{statistics.median(rows[peer]) / statistics.median(rows[MAIN]):.1f}x")
            print(f"| vs {peer} | " + " | ".join(cells) + " |")


def latency_report(streams: list[Stream]) -> None:
    head = ("class", "count", "ops/s", "p50 us", "p90 us", "p99 us", "p99.9 us", "max us")
    for name, cls in implementations().items():
        for stream in streams:
            lat = latencies(cls, stream)
            print(f"\n== latency, {name} engine, {stream.name} (perf_counter_ns around each process call)")
            print(f"{head[0]:<11} " + " ".join(f"{h:>9}" for h in head[1:]))
            for kind in CLASSES:
                ns = lat.get(kind)
                if not ns:
                    continue
                ns.sort()
                mean = sum(ns) / len(ns)
                print(f"{kind:<11} {len(ns):>9,} {1e9 / mean:>9,.0f} {_pct(ns, 0.5):>9.2f} {_pct(ns, 0.9):>9.2f} "
                      f"{_pct(ns, 0.99):>9.2f} {_pct(ns, 0.999):>9.2f} {ns[-1] / 1000:>9.0f}")


def profile(stream: Stream, top: int = 16) -> None:
    engine = _fresh(implementations()["python"])
    engine.process_many(stream.setup)
    prof = cProfile.Profile()
    prof.enable()
    engine.process_many(stream.commands)
    prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(top)
    print(f"\n== cProfile of the reference engine, {stream.name} stream (sorted by own time)")
    print("\n".join(line for line in out.getvalue().splitlines() if line.strip())[:5000])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ops", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5, help="interleaved rounds")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--compare", action="store_true", help="also run the peers (those installed)")
    parser.add_argument("--markdown", action="store_true", help="also print the side-by-side markdown table")
    parser.add_argument("--streams", default="insert,exchange-core,project")
    args = parser.parse_args(argv)

    print(f"python {sys.version.split()[0]}; implementations: {', '.join(implementations())}; "
          f"generating streams ({args.ops:,} ops each) ...")
    makers = {"insert": insert_stream, "exchange-core": exchange_core_stream, "project": project_stream}
    streams = [makers[name](args.ops) for name in args.streams.split(",")]
    for stream in streams:
        counts = {k: stream.classes.count(k) for k in CLASSES if k in stream.classes}
        print(f"{stream.name}: setup {len(stream.setup):,} orders; " +
              ", ".join(f"{k} {v / len(stream.classes):.1%}" for k, v in counts.items()))
    runs, missing = runners(args.compare)
    for peer in missing:
        print(f"{peer} not installed: scripts/bench_venv.sh creates .venv-bench with every peer")
    times = measure(streams, runs, args.repeat)
    report(streams, times, args.repeat, args.markdown)
    latency_report(streams)
    if args.profile:
        profile(next((s for s in streams if s.name == "exchange-core"), streams[0]))


if __name__ == "__main__":
    main()
