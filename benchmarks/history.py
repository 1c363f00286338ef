#!/usr/bin/env python3
"""History reads from the store: one page of a participant's fills and of an instrument's trades,
with the history indexes of migration 0002 and, as the reference in the same run, with the
single-column indexes of 0001 (the schema is downgraded in place).

    .venv/bin/python benchmarks/history.py [--trades 200000] [--url postgresql+psycopg://...]

Trades are spread over ``--participants`` participants and two instruments. For each schema it
times (median of ``--repeat`` reads) the first page and a deep page (cursor in the middle of the
history) of ``Store.trade_page`` for one participant and one instrument. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import sqlalchemy as sa  # noqa: E402

from store import Store  # noqa: E402
from store.migrate import upgrade  # noqa: E402
from store.models import TradeRow  # noqa: E402


def fill(store: Store, trades: int, participants: int, seed: int) -> None:
    rng = random.Random(seed)
    names = [f"p{i:03d}" for i in range(participants)]
    rows: list[dict[str, Any]] = []
    with store.engine.begin() as conn:
        for trade_id in range(1, trades + 1):
            maker, taker = rng.sample(names, 2)
            rows.append({
                "trade_id": trade_id, "symbol": "OMN1" if trade_id % 3 else "OMN2", "price": 100, "qty": 1,
                "aggressor": "buy", "maker_order_id": 2 * trade_id, "maker_participant": maker,
                "taker_order_id": 2 * trade_id + 1, "taker_participant": taker, "ts": 10**18 + trade_id,
                "settlement_status": "confirmed", "cmd_seq": trade_id,
            })
            if len(rows) == 10_000:
                conn.execute(sa.insert(TradeRow), rows)
                rows = []
        if rows:
            conn.execute(sa.insert(TradeRow), rows)
        if store.dialect == "postgresql":
            conn.execute(sa.text("ANALYZE trades"))


def median_ms(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def measure(store: Store, trades: int, repeat: int) -> dict[str, float]:
    middle = trades // 2
    return {
        "participant, first page": median_ms(lambda: store.trade_page(participant="p007", limit=100), repeat),
        "participant, deep page": median_ms(
            lambda: store.trade_page(participant="p007", before_id=middle, limit=100), repeat),
        "instrument, first page": median_ms(lambda: store.trade_page(symbol="OMN2", limit=100), repeat),
        "instrument, deep page": median_ms(
            lambda: store.trade_page(symbol="OMN2", before_id=middle, limit=100), repeat),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trades", type=int, default=200_000)
    p.add_argument("--participants", type=int, default=50)
    p.add_argument("--repeat", type=int, default=30)
    p.add_argument("--url", default=None, help="database URL (default: a temporary SQLite file); emptied first")
    args = p.parse_args()
    url = args.url or f"sqlite:///{Path(tempfile.mkdtemp(prefix='history-bench-')) / 'bench.sqlite'}"
    store = Store.open(url)
    try:
        with store.engine.begin() as conn:
            conn.execute(sa.delete(TradeRow))
        fill(store, args.trades, args.participants, seed=1)
        with_0002 = measure(store, args.trades, args.repeat)
        _downgrade(store.engine)
        if store.dialect == "postgresql":
            with store.engine.begin() as conn:
                conn.execute(sa.text("ANALYZE trades"))
        with_0001 = measure(store, args.trades, args.repeat)
        upgrade(store.engine)  # leave the schema at head
    finally:
        store.close()
    print(f"{store.dialect}, {args.trades:,} trades, {args.participants} participants, median of {args.repeat}\n")
    print("| read (100 trades) | 0001 indexes | 0002 indexes |")
    print("|---|---|---|")
    for name, ms in with_0002.items():
        print(f"| {name} | {with_0001[name]:.2f} ms | {ms:.2f} ms |")


def _downgrade(engine: sa.Engine) -> None:
    from alembic import command

    from store.migrate import alembic_config

    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0001")


if __name__ == "__main__":
    main()
