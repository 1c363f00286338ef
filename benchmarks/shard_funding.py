#!/usr/bin/env python3
"""The cost of cash shared across shards (``venue.funding``) at the gate: a buy checked and then
cancelled (reserve + release) by the compliance gate alone (the reference) against the same with
the shared funding bucket on one NATS server (R1, started here on a free loopback port), same run.

    .venv/bin/python benchmarks/shard_funding.py [--buys 2000]

Prints a Markdown table: wall and CPU microseconds per buy (check + cancel) and their ratio.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from compliance import Gatekeeper  # noqa: E402
from engine import Side  # noqa: E402
from journal.nats import NatsLoop  # noqa: E402
from tests.compliance.events import EventMaker  # noqa: E402
from tests.compliance.world import NOW, SYMBOL, World  # noqa: E402
from tests.ha.cluster import NatsCluster  # noqa: E402
from venue.funding import FundingPool  # noqa: E402


def run(gk: Gatekeeper, buys: int) -> tuple[float, float]:
    """(wall us, cpu us) per buy checked, accepted and cancelled."""
    ev = EventMaker()
    wall, cpu = time.perf_counter(), time.process_time()
    for i in range(1, buys + 1):
        seq = 2 * i
        decision = gk.check_new_order(participant="buyer", symbol=SYMBOL, side=Side.BUY, qty=1, price=100,
                                      now_ts=NOW, seq=seq)
        assert decision.ok, decision
        gk.on_command(seq, [ev.accepted(i, "buyer", Side.BUY, 1, 100)])
        gk.on_command(seq + 1, [ev.cancelled(i, "buyer", Side.BUY, 1)])
    return ((time.perf_counter() - wall) / buys * 1e6, (time.process_time() - cpu) / buys * 1e6)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--buys", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cluster = NatsCluster(Path(tmp), size=1).start()
        conn = NatsLoop([f"nats://{cluster.servers}"], timeout=2.0)
        try:
            alone, _ = World().build()
            shared, _ = World().build()
            shared.share_cash(FundingPool(conn, "omn_funding_BENCH", "a"))
            run(shared, 50)  # warm-up: the bucket exists, the connection is hot
            ref = run(alone, args.buys)
            pooled = run(shared, args.buys)
        finally:
            conn.close()
            cluster.stop()
    print("| gate, per buy (check + cancel) | wall us | CPU us (this process) |")
    print("|---|---|---|")
    print(f"| alone (reference) | {ref[0]:.1f} | {ref[1]:.1f} |")
    print(f"| with the shared funding bucket (R1) | {pooled[0]:.1f} | {pooled[1]:.1f} |")
    print(f"| ratio | {pooled[0] / ref[0]:.0f}x | {pooled[1] / ref[1]:.0f}x |")


if __name__ == "__main__":
    main()
