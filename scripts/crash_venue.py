"""Crash test of the whole venue process: SIGKILL `venue run` at random points, restart, verify.

A persistent chain is needed for restarts (an in-process EVM dies with the venue), so the driver
starts its own anvil, deploys the contracts, lists an instrument and onboards two investors (on
chain and in the store), then repeatedly:

    start `venue run` -> two clients send random orders over signed REST -> SIGKILL mid-flight

and finally restarts once more and checks:
- every acknowledged order is in the journal-fed store with its client order id;
- every trade any acknowledgement reported exists with the same price and quantity;
- the live book equals a clean replay of the journal in a fresh engine;
- every trade settles on chain exactly once (the DvP contract's replay protection after
  restarts), and both wallets' balances moved by exactly the sum of the trades.

    .venv/bin/python scripts/crash_venue.py --kills 5 --seed 7
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import store as store_pkg  # noqa: E402
from journal import recover  # noqa: E402
from settlement.chain import Chain, start_anvil  # noqa: E402
from settlement.deploy import DemoAdmin, deploy_demo  # noqa: E402
from venue import admin  # noqa: E402
from venue.config import VenueConfig  # noqa: E402
from venueclient import ApiError, TransportError, VenueClient  # noqa: E402

SYMBOL = "OMN-CRASH"
PARTICIPANTS = ("fund-a", "fund-b")


@dataclass
class Acks:
    orders: dict[int, str] = field(default_factory=dict)  # order id -> client order id
    trades: dict[int, tuple[str, str]] = field(default_factory=dict)  # trade id -> (price, qty)
    kills: int = 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def setup(chain: Chain, config: VenueConfig) -> dict[str, dict[str, str]]:
    deployment = deploy_demo(chain, admin=chain.accounts[0], settler=chain.accounts[1])
    config.data_dir.mkdir(parents=True, exist_ok=True)
    deployment.save(config.deployment_path)
    admin.migrate(config)
    admin.add_instrument(
        config, SYMBOL, name="crash test series", token=deployment.token, cash_token=deployment.stablecoin,
        token_decimals=0, cash_decimals=6, tick="0.01", lot="1", min_qty=1, max_qty=100,
        band=("1000", "100000"), categories=["MIFID_PROFESSIONAL"], blocked=[], holding_cap=None, max_holders=None,
    )
    demo = DemoAdmin(chain, deployment)
    keys: dict[str, dict[str, str]] = {}
    for participant in PARTICIPANTS:
        wallet = chain.new_account()
        demo.onboard(wallet, country=276, notes=100_000, cash=10**15)
        admin.add_participant(config, participant, name=participant, category="MIFID_PROFESSIONAL",
                              jurisdiction="DE", kyc_days=30, wallet=wallet)
        keys[participant] = {**admin.create_key(config, participant, role="trader"), "wallet": wallet}
    return keys


def start_venue(config: VenueConfig, settler_key: str, log_path: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "VENUE_SETTLER_KEY": settler_key}
    cmd = [sys.executable, "-m", "venue.cli", "run", "--data-dir", str(config.data_dir), "--chain", config.chain,
           "--port", str(config.port)]
    log = log_path.open("ab")
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


async def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as http:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise SystemExit(f"venue exited with {proc.returncode} during start-up (see the log)")
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(f"{url}/health")).status_code == 200:
                    return
            await asyncio.sleep(0.2)
    raise SystemExit("venue did not become ready")


async def trade(client: VenueClient, rng: random.Random, acks: Acks, stop: asyncio.Event) -> None:
    while not stop.is_set():
        side = rng.choice(("buy", "sell"))
        price = Decimal(45_000) + Decimal(rng.randint(-20, 20)) / 10
        try:
            if rng.random() < 0.15 and acks.orders:
                await client.cancel(rng.choice(list(acks.orders)))
                continue
            ack = await client.place(SYMBOL, side, rng.randint(1, 3), price)
        except ApiError:
            continue  # refused (e.g. unknown order after a fill): nothing was acknowledged
        except TransportError:
            await asyncio.sleep(0.05)  # the venue is down: nothing was acknowledged
            continue
        acks.orders[int(ack["order_id"])] = ack["client_order_id"]
        for fill in ack["fills"]:
            acks.trades[int(fill["trade_id"])] = (fill["price"], fill["qty"])


async def run_once(url: str, keys: dict[str, dict[str, str]], rng: random.Random, acks: Acks, seconds: float) -> None:
    stop = asyncio.Event()
    clients = [VenueClient(url, keys[p]["key_id"], keys[p]["private_key"]) for p in PARTICIPANTS]
    tasks = [asyncio.create_task(trade(c, random.Random(rng.random()), acks, stop)) for c in clients]
    await asyncio.sleep(seconds)
    stop.set()
    await asyncio.gather(*tasks)
    for c in clients:
        await c.aclose()


Levels = list[tuple[Decimal, Decimal]]  # (price per note, notes), compared as numbers


async def book_levels(url: str, key: dict[str, str]) -> tuple[Levels, Levels]:
    async with VenueClient(url, key["key_id"], key["private_key"]) as c:
        book = await c.book(SYMBOL, depth=1000)

    def side(levels: list[dict[str, Any]]) -> list[tuple[Decimal, Decimal]]:
        return [(Decimal(lv["price"]), Decimal(lv["qty"])) for lv in levels]

    return side(book["bids"]), side(book["asks"])


def replayed_levels(config: VenueConfig) -> tuple[Levels, Levels]:
    engine, _ = recover(config.journal_dir)
    spec = engine.spec(SYMBOL)
    assert spec is not None, "the journal never listed the instrument"
    snap = engine.l2(SYMBOL)

    def fmt(levels: Any) -> Levels:
        # ticks of tick_size cash units per lot (1 note), 6 cash decimals
        return [(Decimal(lv.price * spec.tick_size) / 10**6, Decimal(lv.qty)) for lv in levels]

    return fmt(snap.bids), fmt(snap.asks)


async def main_async(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    workdir = Path(args.dir or tempfile.mkdtemp(prefix="crash-venue-"))
    chain = start_anvil()
    try:
        url_rpc = str(chain.w3.provider.endpoint_uri)  # type: ignore[attr-defined]
        config = VenueConfig(data_dir=workdir / "var", chain=url_rpc, port=free_port())
        settler_key = "0x" + chain.private_key(chain.accounts[1]).hex()
        keys = setup(chain, config)
        before = {p: DemoAdmin(chain, _deployment(config)).balances(keys[p]["wallet"]) for p in PARTICIPANTS}
        url = f"http://127.0.0.1:{config.port}"
        log_path = workdir / "venue.log"
        acks = Acks()
        for _ in range(args.kills):
            proc = start_venue(config, settler_key, log_path)
            await wait_ready(url, proc)
            run = asyncio.create_task(run_once(url, keys, rng, acks, seconds=args.seconds + 1))
            await asyncio.sleep(rng.uniform(0.3, args.seconds))
            proc.send_signal(signal.SIGKILL)  # mid-flight: requests are outstanding
            proc.wait()
            acks.kills += 1
            await run
        proc = start_venue(config, settler_key, log_path)
        await wait_ready(url, proc)
        await run_once(url, keys, rng, acks, seconds=1.0)  # trades after the last restart too
        live = await book_levels(url, keys[PARTICIPANTS[0]])
        settled = await _wait_settled(config, chain, timeout=120)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        return _verify(config, chain, keys, acks, before, live, settled)
    finally:
        chain.close()


def _deployment(config: VenueConfig) -> Any:
    from settlement.deploy import DemoDeployment

    return DemoDeployment.load(config.deployment_path)


async def _wait_settled(config: VenueConfig, chain: Chain, timeout: float) -> dict[int, str]:
    store = store_pkg.Store.open(config.database_url, migrate=False)
    try:
        deadline = time.monotonic() + timeout
        while True:
            trades = store.list_trades(symbol=SYMBOL)
            states = {t.trade_id: t.settlement_status.value for t in trades}
            if all(s in ("confirmed", "failed") for s in states.values()) or time.monotonic() > deadline:
                return states
            await asyncio.sleep(0.5)
    finally:
        store.close()


def _verify(config: VenueConfig, chain: Chain, keys: dict[str, dict[str, str]], acks: Acks,
            before: dict[str, tuple[int, int]], live: Any, settled: dict[int, str]) -> int:
    problems: list[str] = []
    store = store_pkg.Store.open(config.database_url, migrate=False)
    try:
        for order_id, coid in acks.orders.items():
            row = store.get_order(order_id)
            if row is None or row.client_order_id != coid:
                problems.append(f"acknowledged order {order_id} ({coid}) missing or different in the store")
        trades = {t.trade_id: t for t in store.list_trades(symbol=SYMBOL)}
        for trade_id, (price, qty) in acks.trades.items():
            t = trades.get(trade_id)
            if t is None or t.qty != int(Decimal(qty)) or Decimal(t.price) / 100 != Decimal(price):
                problems.append(f"acknowledged trade {trade_id} at {price} x {qty} missing or different")
        not_settled = sorted(tid for tid, s in settled.items() if s != "confirmed")
        if not_settled:
            problems.append(f"trades not confirmed on chain: {not_settled[:10]} ({len(not_settled)})")
        dvp = DemoAdmin(chain, _deployment(config)).settlement
        unsettled_on_chain = [tid for tid in trades if not dvp.functions.settled(tid).call()]
        if unsettled_on_chain:
            problems.append(f"trades the contract never settled: {unsettled_on_chain[:10]}")
        # balances moved by exactly the trades: each settled once, never twice
        a, b = PARTICIPANTS
        delta_notes = 0
        delta_cash = 0
        for t in trades.values():
            cash = t.price * 10_000 * t.qty
            sign = 1 if t.buyer == a else -1
            delta_notes += sign * t.qty
            delta_cash -= sign * cash
        after_a = DemoAdmin(chain, _deployment(config)).balances(keys[a]["wallet"])
        after_b = DemoAdmin(chain, _deployment(config)).balances(keys[b]["wallet"])
        if after_a != (before[a][0] + delta_notes, before[a][1] + delta_cash):
            problems.append(f"{a} balances {after_a} != start {before[a]} + trades ({delta_notes}, {delta_cash})")
        if after_b != (before[b][0] - delta_notes, before[b][1] - delta_cash):
            problems.append(f"{b} balances {after_b} != start {before[b]} - trades")
    finally:
        store.close()
    replay = replayed_levels(config)
    if replay != live:
        problems.append(f"live book {live} != clean replay {replay}")
    print(f"kills: {acks.kills}; acknowledged orders: {len(acks.orders)}; acknowledged trades: {len(acks.trades)}; "
          f"trades in store: {len(settled)} (all confirmed on chain: {bool(settled) and not not_settled}); "
          f"book levels: {len(live[0])} bids / {len(live[1])} asks")
    for p in problems:
        print("PROBLEM:", p)
    print("OK" if not problems else f"FAILED ({len(problems)} problems)")
    return 0 if not problems else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=2.5, help="max trading time before each kill")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--dir", help="work directory (default: a new temp dir)")
    args = parser.parse_args(argv)
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    raise SystemExit(main())
