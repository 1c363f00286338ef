"""One venue for a load test, in its own process (locust's gevent must not share a process with asyncio).

``python -m loadtests.host --data-dir D --makers 2 --investors 8 --keys-out keys.json`` starts a
venue on a fresh chain, lists ``OMN-2029A`` and onboards market makers ``mm-1..N`` and investors
``inv-1..M`` (notes and cash for thousands of trades, no holding cap), writes their keys to the
key file and prints one line ``READY {"base_url": ..., "keys": ...}``. Then it reads commands on
stdin: ``check`` prints ``CHECK {json}`` (the venue's own view, see ``venue_view``); ``stop`` or
end of input stops the venue.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import faulthandler
import json
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

from engine import Side
from gateway.decimals import format_price, format_qty
from gateway.ports import Listing
from venue import demo
from venue.config import VenueConfig
from venue.demo import SYMBOL, DemoAccount, demo_listing, onboard
from venue.listings import ListingRules
from venue.runtime import Venue

MAKER_NOTES = 100_000
MAKER_CASH = 10_000_000_000  # whole USDC
INVESTOR_NOTES = 2_000
INVESTOR_CASH = 200_000_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def load_accounts(makers: int, investors: int) -> list[DemoAccount]:
    places = [("MIFID_PROFESSIONAL", "DE"), ("US_QIB", "US"), ("ELIGIBLE_COUNTERPARTY", "NL")]
    accounts = [DemoAccount(participant=f"mm-{i + 1}", category="ELIGIBLE_COUNTERPARTY", jurisdiction="LU",
                            notes=MAKER_NOTES, cash=MAKER_CASH) for i in range(makers)]
    for i in range(investors):
        category, jurisdiction = places[i % len(places)]
        accounts.append(DemoAccount(participant=f"inv-{i + 1}", category=category, jurisdiction=jurisdiction,
                                    notes=INVESTOR_NOTES, cash=INVESTOR_CASH))
    return accounts


async def list_instrument(venue: Venue) -> None:
    listing, _ = demo_listing(venue)
    # no holding cap: market makers hold far more notes than an investor may
    await demo.list_instrument(venue, listing, ListingRules(
        allowed_categories=("MIFID_PROFESSIONAL", "ELIGIBLE_COUNTERPARTY", "US_QIB"),
        blocked_jurisdictions=("RU", "KP", "IR")))


async def _store_caught_up(venue: Venue, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if venue.store.last_projected_seq() >= venue.sequencer.applied_seq:
            return True
        await asyncio.sleep(0.05)
    return False


def _reserved(venue: Venue, listing: Listing) -> dict[str, int]:
    """Cash and notes the gatekeeper still reserves, per participant (these reads also release the
    obligations of settlements the chain cache has seen)."""
    reserved: dict[str, int] = {}
    for participant in venue.core.participant_ids():
        wallet = venue.core.wallet_of(participant)
        if wallet is None:
            continue
        amounts = (venue.gatekeeper.reserved_cash(wallet, listing.cash_token_address),
                   venue.gatekeeper.reserved_notes(wallet, listing.token_address),
                   venue.gatekeeper.incoming_notes(wallet, listing.token_address))
        if any(amounts):
            reserved[participant] = sum(amounts)
    return reserved


async def venue_view(venue: Venue, *, settle_timeout: float, release_timeout: float = 15.0) -> dict[str, Any]:
    """Everything the consistency check needs from inside the venue, after settlement drained."""
    drained = True
    try:
        await venue.settlement.drain(timeout=settle_timeout)
    except Exception:  # a timeout: unsettled trades are reported one by one below
        drained = False
    # settlement notices reach the core and the store flush loop (0.2 s); obligations are released two
    # chain-watcher polls (0.25 s) after their block
    await asyncio.sleep(1.5)
    # the running store writer records settlement states and then tells the core; flushing behind its
    # back would store states nobody is told of, so wait for its queue to drain instead
    deadline = time.monotonic() + 10.0
    while venue.store_adapter.backlog and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    store_ok = await _store_caught_up(venue, 10.0)
    listing = venue.core.listing(SYMBOL)
    assert listing is not None

    engine_error = None
    try:
        venue.engine.validate()
    except Exception as exc:
        engine_error = f"{type(exc).__name__}: {exc}"
    gatekeeper_error = None
    try:
        venue.gatekeeper.validate()
    except Exception as exc:
        gatekeeper_error = f"{type(exc).__name__}: {exc}"
    book = venue.core.l2(SYMBOL, 1)
    best_bid = book.bids[0].price if book.bids else None
    best_ask = book.asks[0].price if book.asks else None

    # A settlement state reaches the core (and subscribers) only once the store has it, so the store
    # may be a moment ahead: compare until the core agrees or 5 s pass (a lasting mismatch is reported).
    agree_by = time.monotonic() + 5.0
    while True:
        settlements = {s.trade_id: s for s in venue.store.list_settlements()}
        trades = []
        for stored in venue.store.list_trades(symbol=SYMBOL):
            t = stored.to_trade()
            s = settlements.get(t.trade_id)
            core = venue.core.trade(t.trade_id)
            trades.append({
                "trade_id": t.trade_id, "buyer": t.buyer, "seller": t.seller,
                "buy_order_id": t.buy_order_id, "sell_order_id": t.sell_order_id,
                "price": format_price(t.price, listing), "qty": format_qty(t.qty, listing),
                "settlement": s.status.value if s is not None else t.settlement.value,
                "reason": s.reason if s is not None else None,
                "core_settlement": core.settlement.value if core is not None else None,
            })
        if time.monotonic() > agree_by or all(t["core_settlement"] in (None, t["settlement"]) for t in trades):
            break
        await asyncio.sleep(0.1)
    open_orders = venue.engine.open_orders(None, SYMBOL)
    # obligations of confirmed trades are released once the chain watcher has applied their block
    waited = time.monotonic()
    deadline = waited + release_timeout
    reserved = _reserved(venue, listing)
    while reserved and not open_orders and time.monotonic() < deadline:
        await asyncio.sleep(0.25)
        reserved = _reserved(venue, listing)
    waited = time.monotonic() - waited
    head = await asyncio.to_thread(lambda: int(venue.chain.w3.eth.block_number))
    return {
        "drained": drained,
        "store_caught_up": store_ok,
        "engine_error": engine_error,
        "gatekeeper_error": gatekeeper_error,
        "best_bid": format_price(best_bid, listing) if best_bid is not None else None,
        "best_ask": format_price(best_ask, listing) if best_ask is not None else None,
        "crossed": best_bid is not None and best_ask is not None and best_bid >= best_ask,
        "open_orders": len(open_orders),
        "open_buy_orders": sum(1 for o in open_orders if o.side is Side.BUY),
        "open_holds": venue.gatekeeper.open_holds(),
        "pending_obligations": venue.gatekeeper.pending_obligations(),
        "reserved": reserved,
        "watcher": {"cache_block": venue.cache.block, "chain_head": head, "polls": venue.cache.syncs,
                    "release_wait_s": round(waited, 2)},
        "settlement_counts": venue.core.settlement_counts(),
        "rejection_counts": venue.core.rejection_counts(),
        "trades": trades,
        "journal_commands": venue.sequencer.applied_seq,
    }


async def _read_line() -> str:
    return await asyncio.to_thread(sys.stdin.readline)


async def host(args: argparse.Namespace) -> None:
    config = VenueConfig(
        data_dir=args.data_dir, chain=args.chain, port=args.port or free_port(), host="127.0.0.1",
        anvil_block_time=args.block_time,
        # the load test measures the venue, not the per-key throttle
        rate_limit_per_s=1_000_000.0, rate_limit_burst=1_000_000, settlement_batch=args.settlement_batch,
    )
    venue = Venue(config, fresh_chain=True)
    await venue.start()
    server: asyncio.Task[None] | None = None
    try:
        await list_instrument(venue)
        keys = await onboard(venue, load_accounts(args.makers, args.investors))
        args.keys_out.write_text(json.dumps({"base_url": venue.base_url, "symbol": SYMBOL, "keys": keys}, indent=1))
        ready = asyncio.Event()
        server = asyncio.create_task(venue.serve(on_ready=ready.set))
        await asyncio.wait({asyncio.create_task(ready.wait()), server}, return_when=asyncio.FIRST_COMPLETED)
        if server.done():
            server.result()
            raise SystemExit("the venue server stopped at start")
        print("READY " + json.dumps({"base_url": venue.base_url, "keys": str(args.keys_out)}), flush=True)
        while True:
            line = (await _read_line()).strip()
            if line == "check":
                view = await venue_view(venue, settle_timeout=args.settle_timeout)
                print("CHECK " + json.dumps(view), flush=True)
            elif line in ("stop", ""):
                break
    finally:
        await venue.stop()
        if server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server, 5)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--keys-out", type=Path, required=True)
    parser.add_argument("--makers", type=int, default=2)
    parser.add_argument("--investors", type=int, default=8)
    parser.add_argument("--chain", default="inprocess", help="inprocess | anvil | JSON-RPC URL")
    parser.add_argument("--port", type=int, default=0, help="0: a free port")
    parser.add_argument("--block-time", type=float, default=None,
                        help="anvil started by the venue: seconds per block (default: a block per transaction)")
    parser.add_argument("--settlement-batch", type=int, default=200)
    parser.add_argument("--settle-timeout", type=float, default=120.0)
    parser.add_argument("--profile", type=Path, help="cProfile the event loop thread, write the stats here")
    args = parser.parse_args(argv)
    faulthandler.register(signal.SIGUSR1)  # `kill -USR1 <pid>` prints every thread's stack (a stuck run)
    if args.profile is None:
        asyncio.run(host(args))
        return
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        asyncio.run(host(args))
    finally:
        profiler.disable()
        profiler.dump_stats(args.profile)


if __name__ == "__main__":
    main()
