"""``venue demo``: a complete venue with a live OMN market.

Deploys the contracts on a fresh chain, lists an OMN note series, onboards a market maker and
investors (identities registered on chain, notes minted, stablecoin funded, settlement contract
approved), an ineligible retail account (its orders show up as rejections) and an operator, then
runs a quoting market maker over websockets and investors trading over REST, so trades settle on
chain continuously; an RFQ and a block trade print every round of ``OffBookTrader``.

A second series (``CALL_SYMBOL``, its own token on the same identity registry, stablecoin and DvP
contract) trades in periodic call auctions (listing rule ``call_interval_s``): ``CallTrader`` bots
place GTC limit orders during each call, the console shows the indicative uncross, and every uncross
prints AUCTION trades that settle like any other. Prints the console URL and every API key.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import math
import shutil
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import store as store_pkg
from attestation import DemoAttestor, ProductionModel, Publisher, demo_statements, register_demo_attestors
from compliance.countries import ALPHA2_TO_NUMERIC
from engine import InstrumentSpec, InstrumentStatus
from gateway.ports import ApiKey, Listing, Role
from settlement.deploy import DemoAdmin, deploy_demo_series
from venue.bots import CallTrader, Investor, MarketMaker, OffBookTrader
from venue.config import VenueConfig
from venue.listings import ListingRules, rules_to_dict
from venue.runtime import StartupError, Venue
from venueclient import VenueClient, generate_keypair

SYMBOL = "OMN-2029A"
BLOCK_LOTS = 10  # the demo listing's minimum block trade (notes)
CASH_DECIMALS = 6
FAIR_PRICE = Decimal("45000.00")  # USDC per note (1 PH/s for 36 months)
DAY_S = 86_400
ISSUED_DAYS_AGO = 60
MAX_AGE_S = 600  # a NAV or custody attestation older than this halts the instrument
ATTEST_EVERY_S = 30.0
CALL_SYMBOL = "OMN-2030C"  # the series that trades in periodic call auctions
CALL_FAIR_PRICE = Decimal("42000.00")
CALL_INTERVAL_S = 60.0  # one uncross a minute


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoAccount:
    participant: str
    category: str
    jurisdiction: str
    notes: int
    cash: int  # whole USDC
    role: Role = Role.TRADER


def demo_accounts(investors: int) -> list[DemoAccount]:
    # a Luxembourg note sold to MiFID II professional clients and eligible counterparties
    places = [("MIFID_PROFESSIONAL", "DE"), ("ELIGIBLE_COUNTERPARTY", "NL"), ("MIFID_PROFESSIONAL", "FR"),
              ("MIFID_PROFESSIONAL", "IE"), ("ELIGIBLE_COUNTERPARTY", "LU")]
    accounts = [DemoAccount(participant="mm-1", category="ELIGIBLE_COUNTERPARTY", jurisdiction="LU",
                            notes=400, cash=20_000_000)]
    for i in range(investors):
        category, jurisdiction = places[i % len(places)]
        accounts.append(DemoAccount(participant=f"inv-{i + 1}", category=category, jurisdiction=jurisdiction,
                                    notes=40, cash=4_000_000))
    accounts.append(DemoAccount(participant="retail-1", category="RETAIL", jurisdiction="DE", notes=0, cash=100_000))
    return accounts


def demo_listing(venue: Venue) -> tuple[Listing, ListingRules]:
    now = time.time_ns()
    maturity = now + 36 * 30 * 24 * 3600 * 10**9
    spec = InstrumentSpec(
        symbol=SYMBOL, tick_size=10_000, lot_size=1, min_qty=1, max_qty=1_000,
        band_low=1_000_000, band_high=10_000_000, status=InstrumentStatus.OPEN,
    )  # tick 0.01 USDC per note; band 10,000 - 100,000 USDC
    listing = Listing(
        spec=spec, name="Omnes Mining Note 2029 Series A (1 PH/s, 36 months)",
        token_address=venue.deployment.token, cash_token_address=venue.deployment.stablecoin,
        token_decimals=0, cash_decimals=CASH_DECIMALS, maturity_ts=maturity,
    )
    issued = dt.datetime.fromtimestamp(now / 1e9 - ISSUED_DAYS_AGO * DAY_S, tz=dt.UTC).date()
    rules = ListingRules(blocked_jurisdictions=("RU", "KP", "IR"), holding_cap=2_000, max_holders=500,
                         trading_end_ts=maturity - 7 * 24 * 3600 * 10**9,
                         nav_collar_below_pct="20", nav_collar_above_pct="10", attestation_max_age_s=MAX_AGE_S,
                         hashrate_ph_s_per_note="1", tenor_months=36, issue_date=issued.isoformat(),
                         maturity_date=dt.datetime.fromtimestamp(maturity / 1e9, tz=dt.UTC).date().isoformat(),
                         expense_ratio_bps=200, settlement_asset="USDC (demo stablecoin)", identifier="XSOMN2029A07",
                         min_block_lots=BLOCK_LOTS, block_confirm_s=120, rfq_max_ttl_s=120)
    return listing, rules


def call_listing(venue: Venue, token: str, *, call_interval_s: float) -> tuple[Listing, ListingRules]:
    """The second series: continuous trading replaced by a call auction every ``call_interval_s``
    seconds. No attestations are published for it, so its uncross reference is the last trade."""
    now = time.time_ns()
    maturity = now + 48 * 30 * 24 * 3600 * 10**9
    spec = InstrumentSpec(
        symbol=CALL_SYMBOL, tick_size=10_000, lot_size=1, min_qty=1, max_qty=1_000,
        band_low=1_000_000, band_high=10_000_000, status=InstrumentStatus.OPEN,
    )
    listing = Listing(
        spec=spec, name="Omnes Mining Note 2030 Series C (1 PH/s, 48 months, call auctions)",
        token_address=token, cash_token_address=venue.deployment.stablecoin,
        token_decimals=0, cash_decimals=CASH_DECIMALS, maturity_ts=maturity,
    )
    rules = ListingRules(blocked_jurisdictions=("RU", "KP", "IR"), holding_cap=2_000, max_holders=500,
                         trading_end_ts=maturity - 7 * 24 * 3600 * 10**9, hashrate_ph_s_per_note="1",
                         tenor_months=48, settlement_asset="USDC (demo stablecoin)", call_interval_s=call_interval_s)
    return listing, rules


async def list_call_series(venue: Venue, keys: dict[str, dict[str, str]], accounts: list[DemoAccount], *,
                           call_interval_s: float) -> None:
    """Deploy the second series' token, mint it to the accounts that hold notes and approve the
    DvP contract for it (their identities are registered already), then list it."""
    deployment = await asyncio.to_thread(deploy_demo_series, venue.chain, venue.deployment,
                                         token_name="Omnes Mining Note 2030 C", token_symbol="OMNC")
    admin = DemoAdmin(venue.chain, deployment)
    for acct in accounts:
        if acct.notes:
            wallet = keys[acct.participant]["wallet"]
            await asyncio.to_thread(admin.mint_notes, wallet, acct.notes)
            await asyncio.to_thread(admin.approve_notes, wallet)
    listing, rules = call_listing(venue, deployment.token, call_interval_s=call_interval_s)
    await list_instrument(venue, listing, rules)


async def onboard(venue: Venue, accounts: list[DemoAccount]) -> dict[str, dict[str, str]]:
    """Store records, on-chain identity/funding/approvals, API keys. Returns the secrets."""
    store = venue.store
    secrets_out: dict[str, dict[str, str]] = {}
    for acct in accounts:
        wallet = await asyncio.to_thread(venue.chain.new_account)
        record = store_pkg.Participant(
            id=acct.participant, name=acct.participant, status=store_pkg.ParticipantStatus.ACTIVE,
            investor_category=acct.category, jurisdiction=acct.jurisdiction,
            kyc_expiry=dt.date.today() + dt.timedelta(days=365),
        )
        store.add_participant(record)
        store.add_wallet(acct.participant, wallet)
        await asyncio.to_thread(
            venue.admin.onboard, wallet, country=ALPHA2_TO_NUMERIC[acct.jurisdiction], notes=acct.notes,
            cash=acct.cash * 10**CASH_DECIMALS,
        )
        venue.register_participant(record, wallet)
        secrets_out[acct.participant] = _new_key(venue, acct.participant, Role.TRADER)
        secrets_out[acct.participant]["wallet"] = wallet
    secrets_out["operator"] = _new_key(venue, "operator", Role.OPERATOR)
    await asyncio.to_thread(venue.watcher.poll_once)
    venue.rebaseline()
    store.append_audit("demo", "demo.onboarded", {"participants": [a.participant for a in accounts]})
    return secrets_out


def _new_key(venue: Venue, participant: str, role: Role) -> dict[str, str]:
    private, public = generate_keypair()
    key_id = f"{participant}-key"
    venue.store.add_api_key(store_pkg.ApiKeyRecord(key_id=key_id, participant=participant,
                                                   role=store_pkg.KeyRole(role.value), public_key=public))
    venue.core.add_key(ApiKey(key_id=key_id, participant=participant, role=role, public_key=public))
    return {"key_id": key_id, "private_key": private.hex()}


async def start_demo_market(venue: Venue, *, investors: int,
                            call_interval_s: float | None = None) -> dict[str, dict[str, str]]:
    keys, _ = await demo_market(venue, investors=investors, call_interval_s=call_interval_s)
    return keys


async def demo_market(venue: Venue, *, investors: int, call_interval_s: float | None = None
                      ) -> tuple[dict[str, dict[str, str]], DemoAttestor]:
    """Onboard the accounts (notes minted), publish the first attestations (so the series has a
    NAV and full custody before it opens), then list the instrument; with ``call_interval_s`` also
    the second series, in periodic call auctions."""
    listing, rules = demo_listing(venue)
    accounts = demo_accounts(investors)
    keys = await onboard(venue, accounts)
    attestor = await asyncio.to_thread(demo_attestor, venue, listing)
    await list_instrument(venue, listing, rules)
    if call_interval_s is not None:
        await list_call_series(venue, keys, accounts, call_interval_s=call_interval_s)
    if venue.attestations.monitor is not None:
        venue.attestations.monitor.refresh_prices()  # the first NAV is in force (and the collar on) at once
    await asyncio.to_thread(venue.watcher.poll_once)
    venue.rebaseline()
    return keys, attestor


def demo_attestor(venue: Venue, listing: Listing) -> DemoAttestor:
    """Register a custodian, an administrator and a facility for the series (the token's owner
    does it) and publish the model's statements once; ``DemoAttestor.run`` keeps publishing. The BTC
    price is scaled so the first NAV is the market maker's fair price, then drifts slowly."""
    publisher = Publisher(venue.chain, venue.attestations.deployment)
    token = listing.token_address
    who = register_demo_attestors(publisher, token, issuer=venue.deployment.admin)
    now = int(time.time())
    issued_at = now - ISSUED_DAYS_AGO * DAY_S
    maturity = int((listing.maturity_ts or (now + 3 * 365 * DAY_S) * 10**9) / 10**9)
    model = ProductionModel(ph_s_per_note=Decimal(1), network_ph_s=Decimal(750_000), epoch=issued_at,
                            halving_at=issued_at + 900 * DAY_S)
    unit = demo_statements(model, notes=1, issued_at=issued_at, maturity=maturity, t=now, period_s=3_600,
                           btc_price=Decimal(1)).nav.nav_per_note
    base = (FAIR_PRICE / unit).quantize(Decimal("0.01"))

    def btc_price(t: int) -> Decimal:  # +-3 % over a 20-minute cycle, so the demo shows NAV moving
        return (base * (1 + Decimal(math.sin((t - now) / 190.0)) * Decimal("0.03"))).quantize(Decimal("0.01"))

    attestor = DemoAttestor(publisher, token, who, model, issued_at=issued_at, maturity=maturity,
                            btc_price=btc_price)
    attestor.publish(now)
    venue.attestations.watcher.track(token)
    venue.attestations.watcher.poll_once()
    return attestor


async def list_instrument(venue: Venue, listing: Listing, rules: ListingRules) -> None:
    """Record the instrument and its eligibility rules, then open it in the running venue."""
    venue.store.add_instrument(store_pkg.Instrument(
        symbol=listing.symbol, name=listing.name, token_address=listing.token_address,
        cash_token_address=listing.cash_token_address, token_decimals=listing.token_decimals,
        cash_decimals=listing.cash_decimals, tick_size=listing.spec.tick_size, lot_size=listing.spec.lot_size,
        min_qty=listing.spec.min_qty, max_qty=listing.spec.max_qty, band_low=listing.spec.band_low,
        band_high=listing.spec.band_high, status=store_pkg.InstrumentState.OPEN, maturity_ts=listing.maturity_ts,
    ), rules_to_dict(rules))
    await venue.add_listing(listing, rules)


async def run_bots(venue: Venue, keys: dict[str, dict[str, str]], stop: asyncio.Event) -> list[Any]:
    listing = venue.core.listing(SYMBOL)
    assert listing is not None
    increment = listing.price_increment
    clients: list[VenueClient] = []
    bots: list[Any] = []

    def client(participant: str) -> VenueClient:
        c = VenueClient(venue.base_url, keys[participant]["key_id"], keys[participant]["private_key"])
        clients.append(c)
        return c

    bots.append(MarketMaker(client("mm-1"), SYMBOL, fair=FAIR_PRICE, increment=increment))
    for i, participant in enumerate(sorted(p for p in keys if p.startswith("inv-"))):
        bots.append(Investor(client(participant), SYMBOL, increment=increment, seed=10 + i))
    bots.append(Investor(client("retail-1"), SYMBOL, increment=increment, interval=8.0, max_qty=1, seed=99))
    bots.append(OffBookTrader(client("inv-1"), client("mm-1"), SYMBOL, fair=FAIR_PRICE, increment=increment,
                              requester_id="inv-1", dealer_id="mm-1", block_qty=BLOCK_LOTS))
    call = venue.core.listing(CALL_SYMBOL)
    if call is not None:  # the series in periodic call auctions (``venue demo``)
        traders = ["mm-1", *sorted(p for p in keys if p.startswith("inv-"))]
        bots.extend(CallTrader(client(p), CALL_SYMBOL, fair=CALL_FAIR_PRICE, increment=call.price_increment,
                               seed=30 + i) for i, p in enumerate(traders))
    tasks = [asyncio.create_task(bot.run(stop), name=f"bot-{i}") for i, bot in enumerate(bots)]
    try:
        await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        for c in clients:
            await c.aclose()
    return bots


async def run_demo(config: VenueConfig, *, duration: float | None = None, investors: int = 3,
                   call_interval_s: float = CALL_INTERVAL_S) -> None:
    demo_dir = config.data_dir / "demo"
    shutil.rmtree(demo_dir, ignore_errors=True)  # the demo chain is fresh, so is its data
    config = dataclasses.replace(config, data_dir=demo_dir, db_url=config.db_url)
    venue = Venue(config, fresh_chain=True)
    await venue.start()
    if venue.store.list_participants() or venue.store.list_instruments():
        await venue.stop()
        raise StartupError(f"the demo needs an empty database, and {venue.store.dialect} at --db-url already holds "
                           "participants or instruments (from an earlier demo?): use a fresh database")
    stop = asyncio.Event()
    bots: asyncio.Task[list[Any]] | None = None
    attesting: asyncio.Task[None] | None = None
    try:
        keys, attestor = await demo_market(venue, investors=investors, call_interval_s=call_interval_s)
        attesting = asyncio.create_task(attestor.run(stop, interval_s=ATTEST_EVERY_S), name="demo-attestor")
        ready = asyncio.Event()
        server = asyncio.create_task(venue.serve(on_ready=ready.set))
        await asyncio.wait({asyncio.create_task(ready.wait()), server}, return_when=asyncio.FIRST_COMPLETED)
        if server.done():
            server.result()  # e.g. the port is taken: raise it
            return
        _print_banner(venue, keys, call_interval_s)
        bots = asyncio.create_task(run_bots(venue, keys, stop))
        # the server exits on Ctrl-C (uvicorn handles the signal) or when the duration is over
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(server), duration)
    finally:
        stop.set()
        if bots is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(bots, 10)
        if attesting is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(attesting, 30)
        await venue.stop()


def _print_banner(venue: Venue, keys: dict[str, dict[str, str]], call_interval_s: float) -> None:
    lines = [
        "",
        f"OMN venue demo running: {venue.base_url}   (chain: {venue.config.chain}, db: {venue.store.dialect})",
        f"  operator console: {venue.console_url()}",
        f"  API docs:         {venue.base_url}/docs",
        f"  metrics:          {venue.base_url}/metrics",
        f"  instrument:       {SYMBOL}  token {venue.deployment.token}  cash {venue.deployment.stablecoin}"
        "  (continuous; RFQs and block trades)",
    ]
    call = venue.core.listing(CALL_SYMBOL)
    if call is not None:
        lines.append(f"  instrument:       {CALL_SYMBOL}  token {call.token_address}"
                     f"  (periodic call auctions: an uncross every {call_interval_s:g} s)")
    lines += [
        f"  DvP contract:     {venue.deployment.settlement}",
        f"  EAS / resolver:   {venue.attestations.deployment.eas} / {venue.attestations.deployment.resolver}",
        f"  reference:        {venue.base_url}/v1/instruments/{SYMBOL}/reference (signed like every /v1 call)",
        "  API keys (Ed25519, private keys shown once):",
    ]
    for participant, secret in keys.items():
        lines.append(f"    {participant:10s} key_id={secret['key_id']:16s} private_key={secret['private_key']}")
    lines.append("Ctrl-C stops the demo.")
    print("\n".join(lines), flush=True)
