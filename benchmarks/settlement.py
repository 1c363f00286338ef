"""Settlement benchmark: gas per trade by batch size (demo OMN token and reference T-REX), T-REX's
own DvP (DVDTransferManager) for comparison, and trades/s settled through the service.

    .venv/bin/python benchmarks/settlement.py [--trades 1000] [--skip-in-process] [--gas-only]
                                              [--baseline GIT_REF]

``--baseline main`` compiles ``DvPSettlement`` as it is at that git ref (with the pinned solc, in a temp
copy) and measures its gas per trade in the same run, next to the current contract.

Gas runs use a fresh seller and a fresh buyer per trade (cold storage, buyer becomes a new holder),
so the numbers are the expensive case. Throughput runs reuse a pool of wallets (steady state).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from itertools import count
from pathlib import Path

# Run as a script, this file's directory comes first on sys.path and its name would shadow the package.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

from eth_typing import ChecksumAddress  # noqa: E402

from market.signed import signed_order_from_wire  # noqa: E402
from settlement import (  # noqa: E402
    Artifact,
    Chain,
    DemoAdmin,
    SettlementService,
    SettlementStatus,
    SettlementUpdate,
    TradeToSettle,
    deploy_demo,
    in_process_chain,
    start_anvil,
)
from settlement.artifacts import NODE_MODULES, REPO_ROOT  # noqa: E402
from settlement.deploy import MAX_UINT256, DemoDeployment  # noqa: E402
from settlement.investor import InvestorActions  # noqa: E402
from settlement.trex import deploy_dvd_manager, deploy_trex_suite  # noqa: E402
from venueclient.signed_orders import OrderDomain, sign_order  # noqa: E402

BATCH_SIZES = (1, 10, 50)


@dataclass
class Venue:
    chain: Chain
    admin: DemoAdmin
    token: str
    onboard: Callable[[ChecksumAddress, int, int], None]  # wallet, notes, cash
    ids: count[int]

    def service(self, on_update: Callable[[SettlementUpdate], None], **kw: int) -> SettlementService:
        dep = self.admin.deployment
        return SettlementService(
            self.chain, dep.settlement, self.chain.private_key(dep.settler), on_update=on_update, **kw
        )

    def trade(self, seller: str, buyer: str, qty: int = 1, cash: int = 1_000_000) -> TradeToSettle:
        return TradeToSettle(
            trade_id=next(self.ids),
            token=self.token,
            seller=seller,
            buyer=buyer,
            quantity=qty,
            cash_token=self.admin.deployment.stablecoin,
            cash_amount=cash,
        )


def demo_venue(chain: Chain) -> Venue:
    dep = deploy_demo(chain, admin=chain.accounts[0], settler=chain.accounts[1])
    admin = DemoAdmin(chain, dep)

    def onboard(wallet: ChecksumAddress, notes: int, cash: int) -> None:
        admin.onboard(wallet, country=756, notes=notes, cash=cash)

    return Venue(chain, admin, dep.token, onboard, count(1))


def trex_venue(chain: Chain, *, also_approve: str | None = None) -> tuple[Venue, object]:
    owner = chain.accounts[0]
    suite = deploy_trex_suite(chain, owner=owner)
    dep = deploy_demo(chain, admin=owner, settler=chain.accounts[1])
    admin = DemoAdmin(chain, dep)

    def onboard(wallet: ChecksumAddress, notes: int, cash: int) -> None:
        suite.register(wallet, 756)
        if notes:
            suite.mint(wallet, notes)
        if cash:
            admin.fund_cash(wallet, cash)
        for spender in (admin.deployment.settlement, *([also_approve] if also_approve else [])):
            chain.transact(suite.token.functions.approve(spender, MAX_UINT256), wallet)
            chain.transact(admin.stablecoin.functions.approve(spender, MAX_UINT256), wallet)

    return Venue(chain, admin, suite.token.address, onboard, count(1)), suite


def fresh_pairs(venue: Venue, n: int) -> list[tuple[ChecksumAddress, ChecksumAddress]]:
    pairs = []
    for _ in range(n):
        seller, buyer = venue.chain.new_account(), venue.chain.new_account()
        venue.onboard(seller, 100, 0)
        venue.onboard(buyer, 0, 10**12)
        pairs.append((seller, buyer))
    return pairs


def baseline_artifact(ref: str) -> Artifact:
    """``DvPSettlement`` compiled from the sources at git ``ref`` (same build script, same solc)."""
    with tempfile.TemporaryDirectory(prefix="dvp-baseline-") as tmp:
        archive = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "archive", ref, "contracts", "package.json"],
            capture_output=True, check=True, timeout=60,
        ).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True, timeout=60)
        os.symlink(NODE_MODULES, os.path.join(tmp, "node_modules"))
        shutil.rmtree(os.path.join(tmp, "contracts", "artifacts"), ignore_errors=True)
        subprocess.run(["node", os.path.join(tmp, "contracts", "build.mjs")], capture_output=True, check=True,
                       timeout=300)
        data = json.loads(Path(tmp, "contracts", "artifacts", "DvPSettlement.json").read_text())
    return Artifact(name=f"DvPSettlement@{ref}", abi=data["abi"], bytecode=data["bytecode"])


def with_settlement(venue: Venue, artifact: Artifact) -> Venue:
    """The same tokens and wallets setup, settled through another build of the DvP contract."""
    dep = venue.admin.deployment
    contract = venue.chain.deploy(artifact, dep.admin, dep.admin, dep.settler)
    moved = DemoDeployment(**{**{f: getattr(dep, f) for f in dep.__dataclass_fields__},
                              "settlement": contract.address})
    venue.admin.deployment = moved
    return Venue(venue.chain, venue.admin, venue.token, venue.onboard, count(1))


def baseline_gas_per_trade(venue: Venue, artifact: Artifact, batch: int) -> int:
    """Gas per trade of a baseline contract, called directly (its events may differ from ours)."""
    pairs = fresh_pairs(venue, batch)
    dep = venue.admin.deployment
    contract = venue.chain.contract(dep.settlement, artifact.abi)
    trades = [venue.trade(s, b, qty=10).normalized() for s, b in pairs]
    receipt = venue.chain.transact(contract.functions.settle([t.as_tuple() for t in trades]), dep.settler)
    assert all(contract.functions.settled(t.trade_id).call() for t in trades)
    return int(receipt["gasUsed"]) // batch


def signed_trades(venue: Venue, pairs: list[tuple[ChecksumAddress, ChecksumAddress]]) -> list[TradeToSettle]:
    """One trade per pair, both sides in signed mode (``setSignedOnly``) with a fresh signed order each:
    the expensive case (every order's first fill, a signature check per side)."""
    chain, dep = venue.chain, venue.admin.deployment
    domain = OrderDomain(chain_id=int(chain.w3.eth.chain_id), verifying_contract=dep.settlement)
    investor = InvestorActions(chain, dep.settlement)
    expiry = str(int(chain.w3.eth.get_block("latest")["timestamp"]) + 86_400)
    trades = []
    for seller, buyer in pairs:
        orders = []
        for wallet, side in ((seller, "sell"), (buyer, "buy")):
            investor.set_signed_only(wallet)
            wire = {"wallet": wallet, "token": venue.token, "cash_token": dep.stablecoin, "side": side,
                    "limit_price": str(1_000_000 * 10**18 // 10), "max_quantity": "10", "expiry": expiry, "nonce": "0"}
            orders.append(signed_order_from_wire(dict(sign_order(wire, domain, chain.private_key(wallet)))))
        t = venue.trade(seller, buyer, qty=10)
        trades.append(TradeToSettle(trade_id=t.trade_id, token=t.token, seller=seller, buyer=buyer, quantity=10,
                                    cash_token=t.cash_token, cash_amount=t.cash_amount, sell_order=orders[0],
                                    buy_order=orders[1]))
    return trades


def gas_per_trade(venue: Venue, batch: int, *, signed: bool = False) -> int:
    pairs = fresh_pairs(venue, batch)
    updates: list[SettlementUpdate] = []
    service = venue.service(updates.append, max_batch=batch)
    trades = signed_trades(venue, pairs) if signed else [venue.trade(s, b, qty=10) for s, b in pairs]
    result = service.settle_batch(trades)
    assert all(u.status is SettlementStatus.CONFIRMED for u in result), result
    receipt = venue.chain.w3.eth.get_transaction_receipt(result[0].tx_hash)  # type: ignore[arg-type]
    return int(receipt["gasUsed"]) // batch


def trex_dvd_gas(chain: Chain) -> tuple[int, int]:
    """(initiateDVDTransfer, takeDVDTransfer) gas for one DvP through T-REX's DVDTransferManager."""
    dvd = deploy_dvd_manager(chain, chain.accounts[0])
    venue, _ = trex_venue(chain, also_approve=dvd.address)
    [(seller, buyer)] = fresh_pairs(venue, 1)
    cash = venue.admin.deployment.stablecoin
    r1 = chain.transact(dvd.functions.initiateDVDTransfer(venue.token, 10, buyer, cash, 1_000_000), seller)
    transfer_id = dvd.events.DVDTransferInitiated().process_receipt(r1)[0]["args"]["transferID"]
    r2 = chain.transact(dvd.functions.takeDVDTransfer(transfer_id), buyer)
    return int(r1["gasUsed"]), int(r2["gasUsed"])


def throughput(venue: Venue, trades: int, max_batch: int, wallets: int = 20) -> tuple[float, int]:
    """Trades/s through SettlementService.run (submit all, drain) and the number of transactions."""
    pairs = fresh_pairs(venue, wallets)  # each seller holds 100 notes
    for seller, _ in pairs:
        venue.admin.mint_notes(seller, trades // wallets + 1)
    updates: list[SettlementUpdate] = []
    service = venue.service(updates.append, max_batch=max_batch)
    batch = [venue.trade(pairs[i % wallets][0], pairs[i % wallets][1], qty=1, cash=1_000) for i in range(trades)]

    async def go() -> float:
        t0 = time.perf_counter()
        for t in batch:
            service.submit(t)
        task = service.start()
        await service.drain()
        elapsed = time.perf_counter() - t0
        service.stop()
        await task
        return elapsed

    elapsed = asyncio.run(go())
    final = [u for u in updates if u.status in (SettlementStatus.CONFIRMED, SettlementStatus.FAILED)]
    assert len(final) == trades and all(u.status is SettlementStatus.CONFIRMED for u in final)
    txs = len({u.tx_hash for u in final})
    return trades / elapsed, txs


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trades", type=int, default=1000)
    parser.add_argument("--skip-in-process", action="store_true")
    parser.add_argument("--gas-only", action="store_true", help="skip the throughput runs")
    parser.add_argument("--baseline", metavar="GIT_REF", help="also measure DvPSettlement as of this git ref")
    args = parser.parse_args()
    rows: list[tuple[str, str]] = []
    baseline = baseline_artifact(args.baseline) if args.baseline else None
    with start_anvil() as chain:
        for label, make in (("demo OMN", demo_venue), ("T-REX token", lambda c: trex_venue(c)[0])):
            venue = make(chain)
            # the baseline contract on its own tokens, measured in the same order as ours (unsigned, then
            # signed, batch after batch), so both see the same storage history (e.g. the decisions word)
            base = with_settlement(make(chain), baseline) if baseline is not None else None
            for size in BATCH_SIZES:
                now = gas_per_trade(venue, size)
                signed = gas_per_trade(venue, size, signed=True)
                if baseline is None:
                    rows.append((f"gas/trade, signed mode (both sides), {label}, batch {size}",
                                 f"{signed:,} ({signed / now:.2f}x unsigned)"))
                    rows.append((f"gas/trade, {label}, batch {size}", f"{now:,}"))
                    continue
                assert base is not None
                before = baseline_gas_per_trade(base, baseline, size)
                at = f"at {args.baseline}"
                if any(item.get("name") == "settleSigned" for item in baseline.abi):  # same interface as ours
                    signed_before = gas_per_trade(base, size, signed=True)
                    at += f": {signed_before:,} ({signed_before / before:.2f}x unsigned)"
                rows.append((f"gas/trade, signed mode (both sides), {label}, batch {size}",
                             f"{signed:,} ({signed / now:.2f}x unsigned; {at})"))
                rows.append((f"gas/trade, {label}, batch {size}", f"{now:,} (at {args.baseline}: {before:,})"))
        initiate, take = trex_dvd_gas(chain)
        rows.append(("T-REX DVDTransferManager takeDVDTransfer (1 DvP)", f"{take:,}"))
        rows.append(("T-REX DVDTransferManager initiate + take (1 DvP)", f"{initiate + take:,}"))
        for max_batch in () if args.gas_only else (50, 200):
            tps, txs = throughput(demo_venue(chain), args.trades, max_batch)
            rows.append(
                (f"anvil: {args.trades} trades via service, max_batch {max_batch}", f"{tps:,.0f} trades/s ({txs} txs)")
            )
    if not args.skip_in_process and not args.gas_only:
        with in_process_chain() as chain:
            tps, txs = throughput(demo_venue(chain), 200, 50, wallets=10)
            rows.append(
                ("in-process EVM: 200 trades via service, max_batch 50", f"{tps:,.0f} trades/s ({txs} txs)")
            )
    print("| measurement | value |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
