"""Call auction benchmark: the uncross of books of 1k / 10k / 100k resting orders, both implementations.

    .venv/bin/python benchmarks/auction.py [--sizes 1000,10000,100000] [--repeat 5] [--markdown]

Each book is a call (``InstrumentStatus.CALL``) restored from a generated snapshot (so building it
is not timed and costs no per-order indication): half bids, half asks, limit prices spread over
±100 ticks around a mid so that bids and asks overlap over about 100 ticks, quantities 1-100 lots,
200 participants (some pairs at the uncross are one participant's own orders, which are decremented).
Timed: one ``process(Uncross(...))``, i.e. the price determination, the allocation in price-time
priority, every fill/decrement event, the level deltas and the ``Result`` objects. ``--repeat``
rounds; each round restores a fresh book per implementation (interleaved, so machine-load swings
hit both alike). Reported: CPU time (``time.process_time``) of the uncross, median and best of the
rounds, the same through ``process_many`` (compact results: the compiled core builds no event objects),
the number of fills, and the compiled core's speed-up over the pure-Python reference (``process``
medians).
Also timed, per book: one limit order entered during the call (the book does not match; the
command ends with its ``IndicativeUncross``, which walks the levels where the book crosses).
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

# Run as a script, this file's directory comes first on sys.path and its name would shadow the package.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

from engine import Fill, NewOrder, Side, Uncross, implementations  # noqa: E402

SYMBOL = "OMN-AUCTION"
MID = 10_000


def book_snapshot(orders: int, seed: int = 7) -> dict[str, Any]:
    """A snapshot of one instrument in a call with ``orders`` resting orders (ids in arrival order)."""
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    for oid in range(1, orders + 1):
        buy = rng.random() < 0.5
        price = rng.randint(MID - 100, MID + 50) if buy else rng.randint(MID - 50, MID + 100)
        qty = rng.randint(1, 100)
        rows.append({
            "order_id": oid, "client_order_id": "", "participant": f"p{rng.randrange(200)}", "session": "",
            "side": "BUY" if buy else "SELL", "price": price, "qty": qty, "remaining": qty, "tif": "GTC",
            "expire_ts": None, "accepted_ts": oid, "post_only": False, "stp": "CANCEL_NEWEST",
        })
    # priority order inside a level is the order of the rows: by id here
    bids = sorted((r for r in rows if r["side"] == "BUY"), key=lambda r: (-r["price"], r["order_id"]))
    asks = sorted((r for r in rows if r["side"] == "SELL"), key=lambda r: (r["price"], r["order_id"]))
    return {
        "format": 1, "seq": orders, "clock": orders, "next_order_id": orders + 1, "next_trade_id": 1,
        "instruments": [{
            "symbol": SYMBOL, "tick_size": 1, "lot_size": 1, "min_qty": 1, "max_qty": 1_000_000,
            "band_low": 1, "band_high": 10**9, "status": "CALL", "md_seq": 0, "last_price": MID,
            "orders": bids + asks,
        }],
    }


def run(sizes: list[int], repeat: int) -> list[dict[str, Any]]:
    impls = implementations()
    rows: list[dict[str, Any]] = []
    for size in sizes:
        snapshot = book_snapshot(size)
        uncross: dict[str, list[float]] = {name: [] for name in impls}
        compact: dict[str, list[float]] = {name: [] for name in impls}
        entry: dict[str, list[float]] = {name: [] for name in impls}
        fills: dict[str, int] = {}
        order = NewOrder(ts=size + 1, participant="bench", symbol=SYMBOL, side=Side.BUY, qty=5, price=MID)
        cmd = Uncross(ts=size + 2, symbol=SYMBOL, reference_price=MID)
        for _ in range(repeat):
            for name, cls in impls.items():
                engine = cls.from_snapshot(snapshot)
                gc.collect()  # the previous books' garbage is not this uncross's cost
                start = time.process_time()
                engine.process(order)
                entry[name].append(time.process_time() - start)
                start = time.process_time()
                result = engine.process(cmd)
                uncross[name].append(time.process_time() - start)
                assert result.code.name == "OK"
                fills[name] = sum(isinstance(e, Fill) for e in result.events)
                del engine, result
                engine = cls.from_snapshot(snapshot)
                engine.process(order)
                gc.collect()
                start = time.process_time()
                engine.process_many([cmd])
                compact[name].append(time.process_time() - start)
                del engine
        assert len(set(fills.values())) == 1, fills
        for name in impls:
            rows.append({
                "orders": size, "implementation": name,
                "uncross_median_ms": 1000 * statistics.median(uncross[name]),
                "uncross_best_ms": 1000 * min(uncross[name]),
                "compact_median_ms": 1000 * statistics.median(compact[name]),
                "entry_median_ms": 1000 * statistics.median(entry[name]),
                "fills": fills[name],
                "speedup": (statistics.median(uncross["python"]) / statistics.median(uncross[name])
                            if "python" in uncross else float("nan")),
            })
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000", help="resting orders per book, comma separated")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--markdown", action="store_true", help="(the output is always a markdown table)")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    rows = run(sizes, max(1, args.repeat))
    print("| resting orders | implementation | uncross, median (ms CPU) | uncross, best (ms CPU) "
          "| uncross via process_many, median (ms CPU) | order entry in the call (ms CPU) | fills "
          "| speed-up vs python |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['orders']:,} | {r['implementation']} | {r['uncross_median_ms']:.2f} | {r['uncross_best_ms']:.2f} "
              f"| {r['compact_median_ms']:.2f} | {r['entry_median_ms']:.3f} | {r['fills']:,} | {r['speedup']:.1f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
