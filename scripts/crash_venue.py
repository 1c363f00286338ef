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
  restarts), becomes final, and both wallets' balances moved by exactly the sum of the trades.

Then two phases on the same chain and data:
- "failed trade stays failed": the settler loses its role (the chain refuses the whole batch, so it
  never records the trade), a trade prints, the venue is SIGKILLed the moment the buyer's
  ``settlements`` stream says "failed"; the role is restored and the venue restarted: the trade is
  still failed in the store and was never settled on chain;
- "retry after restart": a signed IOC request is sent, the venue SIGKILLed and restarted, and the
  very same signed request sent again: it must be refused as a replay or answered as the same
  order, never executed twice.

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

import json  # noqa: E402

import store as store_pkg  # noqa: E402
from journal import recover  # noqa: E402
from settlement.chain import Chain, start_anvil  # noqa: E402
from settlement.deploy import DemoAdmin, deploy_demo  # noqa: E402
from venue import admin  # noqa: E402
from venue.config import VenueConfig  # noqa: E402
from venueclient import ApiError, TransportError, VenueClient  # noqa: E402
from venueclient.signing import HEADER_KEY, HEADER_SIGNATURE, HEADER_TIMESTAMP, sign, signing_payload  # noqa: E402

SYMBOL = "OMN-CRASH"
BLOCK_TIME = 0.5
FINALITY = 2
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
        band=("1000", "100000"), rules={"allowed_categories": ["MIFID_PROFESSIONAL"]},
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
    # anvil mines a block every BLOCK_TIME s, so a depth of FINALITY blocks makes a settlement final
    env = {**os.environ, "VENUE_SETTLER_KEY": settler_key, "VENUE_FINALITY": str(FINALITY)}
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
    chain = start_anvil(block_time=BLOCK_TIME)
    try:
        url_rpc = str(chain.w3.provider.endpoint_uri)  # type: ignore[attr-defined]
        config = VenueConfig(data_dir=workdir / "var", chain=url_rpc, port=free_port())
        settler_key = "0x" + chain.private_key(chain.accounts[1]).hex()
        keys = setup(chain, config)
        before = {p: DemoAdmin(chain, _deployment(config)).balances(keys[p]["wallet"]) for p in PARTICIPANTS}
        log_path = workdir / "venue.log"
        acks = Acks()
        results: dict[str, bool] = {}
        if "main" in args.phases:
            results["main"] = await kill_and_restart(args, config, chain, keys, settler_key, log_path, rng, acks,
                                                     before) == 0
        if "failed" in args.phases:
            results["failed-trade-stays-failed"] = await failed_trade_stays_failed(
                config, chain, keys, settler_key, log_path)
        if "retry" in args.phases:
            results["retry-after-restart"] = await retry_after_restart(config, keys, settler_key, log_path)
        print("phases: " + ", ".join(f"{name} {'OK' if ok else 'FAILED'}" for name, ok in results.items()))
        print("OK" if all(results.values()) else "FAILED")
        return 0 if all(results.values()) else 1
    finally:
        chain.close()


async def kill_and_restart(args: argparse.Namespace, config: VenueConfig, chain: Chain,
                           keys: dict[str, dict[str, str]], settler_key: str, log_path: Path, rng: random.Random,
                           acks: Acks, before: dict[str, tuple[int, int]]) -> int:
    url = f"http://127.0.0.1:{config.port}"
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
            if all(s in ("final", "failed") for s in states.values()) or time.monotonic() > deadline:
                return states
            await asyncio.sleep(0.5)
    finally:
        store.close()


def _verify(config: VenueConfig, chain: Chain, keys: dict[str, dict[str, str]], acks: Acks,
            before: dict[str, tuple[int, int]], live: Any, settled: dict[int, str],
            replay: tuple[Levels, Levels] | None = None) -> int:
    """``replay``: the book of a clean replay when the journal is not the config's file journal."""
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
        not_settled = sorted(tid for tid, s in settled.items() if s != "final")
        if not_settled:
            problems.append(f"trades not final on chain: {not_settled[:10]} ({len(not_settled)})")
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
    replay = replay if replay is not None else replayed_levels(config)
    if replay != live:
        problems.append(f"live book {live} != clean replay {replay}")
    print(f"kills: {acks.kills}; acknowledged orders: {len(acks.orders)}; acknowledged trades: {len(acks.trades)}; "
          f"trades in store: {len(settled)} (all final on chain: {bool(settled) and not not_settled}); "
          f"book levels: {len(live[0])} bids / {len(live[1])} asks")
    for p in problems:
        print("PROBLEM:", p)
    print("main phase OK" if not problems else f"main phase FAILED ({len(problems)} problems)")
    return 0 if not problems else 1


async def failed_trade_stays_failed(config: VenueConfig, chain: Chain, keys: dict[str, dict[str, str]],
                                    settler_key: str, log_path: Path) -> bool:
    """SIGKILL right after the buyer is told "failed" (a failure the chain never records); restart
    with the cause gone: the trade must still be failed, and never settled on chain."""
    demo = DemoAdmin(chain, _deployment(config))
    settler = chain.accounts[1]
    seller_id, buyer_id = PARTICIPANTS
    url = f"http://127.0.0.1:{config.port}"
    proc = start_venue(config, settler_key, log_path)
    await wait_ready(url, proc)
    demo.revoke_settler(settler)
    try:
        async with _client(url, keys, seller_id) as seller, _client(url, keys, buyer_id) as buyer:
            await seller.mass_cancel(SYMBOL)  # an empty book: the two orders below meet each other
            await buyer.mass_cancel(SYMBOL)
            stream = await buyer.connect()
            await stream.subscribe("settlements")
            await seller.place(SYMBOL, "sell", 1, "45000.00")
            ack = await buyer.place(SYMBOL, "buy", 1, "45000.00", tif="ioc")
            trade_id = int(ack["fills"][0]["trade_id"])
            msg = await stream.next_event(timeout=60, where=lambda m: m.get("trade_id") == trade_id
                                          and m.get("state") in ("failed", "confirmed", "final"))
            proc.send_signal(signal.SIGKILL)  # the instant the buyer heard the outcome
            proc.wait()
            with contextlib.suppress(Exception):
                await stream.close()
    finally:
        demo.grant_settler(settler)
    told = msg["state"]
    proc = start_venue(config, settler_key, log_path)
    await wait_ready(url, proc)
    await asyncio.sleep(5 * BLOCK_TIME + 2.0)  # time to (wrongly) settle it again
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    stored = _stored_state(config, trade_id)
    settled = bool(demo.settlement.functions.settled(trade_id).call())
    print(f"failed-trade-stays-failed: trade {trade_id} told {told!r}; after restart: stored {stored!r}, "
          f"settled on chain: {settled}")
    return told == "failed" and stored == "failed" and not settled


async def retry_after_restart(config: VenueConfig, keys: dict[str, dict[str, str]], settler_key: str,
                              log_path: Path) -> bool:
    """The same signed IOC request sent before and after a restart executes at most once."""
    seller_id, buyer_id = PARTICIPANTS
    url = f"http://127.0.0.1:{config.port}"
    proc = start_venue(config, settler_key, log_path)
    await wait_ready(url, proc)
    async with _client(url, keys, seller_id) as seller, _client(url, keys, buyer_id) as buyer:
        await seller.mass_cancel(SYMBOL)
        await buyer.mass_cancel(SYMBOL)
        await seller.place(SYMBOL, "sell", 2, "45000.00")  # room for the request to execute twice
    coid = f"retry-{int(time.time() * 1000)}"
    body = json.dumps({"symbol": SYMBOL, "side": "buy", "qty": "1", "type": "limit", "tif": "ioc",
                       "price": "45000.00", "client_order_id": coid}).encode()
    ts = int(time.time() * 1000)
    key = keys[buyer_id]
    headers = {"content-type": "application/json", HEADER_KEY: key["key_id"], HEADER_TIMESTAMP: str(ts),
               HEADER_SIGNATURE: sign(key["private_key"], signing_payload(ts, "POST", b"/v1/orders", body))}
    answers: list[tuple[int, str]] = []
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        first = await http.post("/v1/orders", content=body, headers=headers)
        answers.append((first.status_code, first.text[:200]))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc = start_venue(config, settler_key, log_path)
        await wait_ready(url, proc)
        again = await http.post("/v1/orders", content=body, headers=headers)
        answers.append((again.status_code, again.text[:200]))
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    store = store_pkg.Store.open(config.database_url, migrate=False)
    try:
        orders = [o for o in store.list_orders(participant=buyer_id, symbol=SYMBOL) if o.client_order_id == coid]
        filled = sum(o.filled for o in orders)
    finally:
        store.close()
    print(f"retry-after-restart: answers {answers}; orders with that client order id: {len(orders)}, "
          f"filled {filled} (must be 1 order, 1 filled)")
    return first.status_code == 200 and len(orders) == 1 and filled == 1


def _client(url: str, keys: dict[str, dict[str, str]], participant: str) -> VenueClient:
    return VenueClient(url, keys[participant]["key_id"], keys[participant]["private_key"])


def _stored_state(config: VenueConfig, trade_id: int) -> str | None:
    store = store_pkg.Store.open(config.database_url, migrate=False)
    try:
        record = store.get_settlement(trade_id)
        return None if record is None else record.status.value
    finally:
        store.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=2.5, help="max trading time before each kill")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--dir", help="work directory (default: a new temp dir)")
    parser.add_argument("--phases", default="main,failed,retry",
                        help="comma-separated: main (kills), failed (a failed trade stays failed), "
                             "retry (the same signed request after a restart)")
    args = parser.parse_args(argv)
    args.phases = set(args.phases.split(","))
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    raise SystemExit(main())
