"""anvil-only behaviour: mempool races, fee bumps, confirmations, node lifecycle."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hexbytes import HexBytes

from settlement import (
    Chain,
    ChainUnavailableError,
    DemoDeployment,
    SettlementService,
    SettlementStatus,
    SettlementUpdate,
    TradeToSettle,
    TransactionRevertedError,
    connect,
    deploy_demo,
    start_anvil,
)
from settlement.deploy import main as deploy_main
from tests.settlement.conftest import BUYER_CASH, Market

pytestmark = pytest.mark.anvil


@pytest.fixture
def chain(anvil: Chain) -> Chain:
    return anvil


@pytest.fixture
def manual_mining(anvil: Chain) -> Iterator[None]:
    anvil.w3.provider.make_request("evm_setAutomine", [False])  # type: ignore[arg-type]
    yield
    anvil.w3.provider.make_request("evm_setAutomine", [True])  # type: ignore[arg-type]
    anvil.mine(1)


Outcome = list[SettlementUpdate] | Exception


def _in_thread(fn: Callable[[], list[SettlementUpdate]]) -> tuple[threading.Thread, list[Outcome]]:
    out: list[Outcome] = []

    def target() -> None:
        try:
            out.append(fn())
        except Exception as exc:  # surfaced by the test's assertions
            out.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, out


def _wait_for(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


def test_stale_in_flight_transaction_cannot_settle_twice(market: Market, manual_mining: None) -> None:
    trade = market.trade(10, 1_000)

    class Crash(Exception):
        pass

    def crash_on_submitted(update: SettlementUpdate) -> None:
        if update.status is SettlementStatus.SUBMITTED:
            raise Crash

    crashed = SettlementService(
        market.chain,
        market.deployment.settlement,
        market.chain.private_key(market.deployment.settler),
        on_update=crash_on_submitted,
    )
    with pytest.raises(Crash):
        crashed.settle_batch([trade])  # broadcast, not mined: still in the mempool

    restarted = market.service()
    assert restarted.recover([trade]) == []  # not settled yet, so queued again
    thread, out = _in_thread(lambda: restarted.settle_batch([trade]))
    _wait_for(lambda: any(u.status is SettlementStatus.SUBMITTED for u in market.updates))
    market.chain.mine(1)  # both transactions land in the same block
    thread.join(30)
    [outcome] = out
    assert not isinstance(outcome, Exception)
    [update] = outcome
    assert update.status is SettlementStatus.CONFIRMED
    assert update.reason is not None and "already settled" in update.reason
    assert market.admin.balances(market.buyer) == (10, BUYER_CASH - 1_000)


def test_late_transaction_is_rebroadcast_with_higher_fees(market: Market, manual_mining: None) -> None:
    service = market.service(receipt_timeout=0.3, max_fee_bumps=5)
    thread, out = _in_thread(lambda: service.settle_batch([market.trade(10, 1_000)]))
    _wait_for(lambda: any(u.status is SettlementStatus.SUBMITTED for u in market.updates))
    first_hash = market.updates[-1].tx_hash
    assert first_hash is not None
    first_tx = market.chain.w3.eth.get_transaction(HexBytes(first_hash))
    time.sleep(0.8)  # at least one re-broadcast
    market.chain.mine(1)
    thread.join(30)
    [outcome] = out
    assert not isinstance(outcome, Exception)
    [update] = outcome
    assert update.status is SettlementStatus.CONFIRMED
    assert update.tx_hash != first_hash
    assert update.tx_hash is not None
    mined = market.chain.w3.eth.get_transaction(HexBytes(update.tx_hash))
    assert mined["nonce"] == first_tx["nonce"]
    assert mined["maxFeePerGas"] > first_tx["maxFeePerGas"]
    assert market.admin.balances(market.buyer) == (10, BUYER_CASH - 1_000)


def test_waits_for_confirmations(market: Market) -> None:
    service = market.service(confirmations=3)
    stop = threading.Event()

    def miner() -> None:
        while not stop.is_set():
            time.sleep(0.05)
            market.chain.mine(1)

    thread = threading.Thread(target=miner, daemon=True)
    thread.start()
    try:
        [update] = service.settle_batch([market.trade(1, 10)])
    finally:
        stop.set()
        thread.join(5)
    assert update.status is SettlementStatus.CONFIRMED and update.block is not None
    assert market.chain.w3.eth.block_number >= update.block + 3


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_anvil_stops_on_close_and_errors_are_translated() -> None:
    chain = start_anvil()
    port = int(chain.name.rsplit(":", 1)[1])
    assert _port_open(port)
    sender = chain.accounts[0]
    rpc = connect(f"http://127.0.0.1:{port}", private_keys=[chain.private_key(sender)])
    assert rpc.accounts == [sender]
    rpc.transfer_eth(sender, chain.accounts[1], 1)
    chain.close()
    assert not _port_open(port)
    with pytest.raises(ChainUnavailableError):
        rpc.transfer_eth(sender, chain.accounts[1], 1)
    with pytest.raises(ChainUnavailableError):
        connect(f"http://127.0.0.1:{port}")


async def test_run_loop_keeps_trades_queued_while_the_node_is_down() -> None:
    chain = start_anvil()
    try:
        deployment = deploy_demo(chain, admin=chain.accounts[0], settler=chain.accounts[1])
        updates: list[SettlementUpdate] = []
        service = SettlementService(
            chain,
            deployment.settlement,
            chain.private_key(deployment.settler),
            on_update=updates.append,
            retry_delay=0.05,
        )
        seller, buyer = chain.accounts[2], chain.accounts[3]
    finally:
        chain.close()
    trades = [
        TradeToSettle(
            trade_id=i,
            token=deployment.token,
            seller=seller,
            buyer=buyer,
            quantity=1,
            cash_token=deployment.stablecoin,
            cash_amount=1,
        )
        for i in (1, 2)
    ]
    for t in trades:
        service.submit(t)
    task = service.start()
    await asyncio.sleep(0.5)  # several failed attempts
    assert service.pending == 2
    assert {u.status for u in updates} == {SettlementStatus.PENDING}
    service.stop()
    await asyncio.wait_for(task, 10)
    with pytest.raises(ChainUnavailableError):
        service.settle_batch(trades)


def test_deploy_cli_writes_a_usable_config(anvil: Chain, tmp_path: Path) -> None:
    admin = anvil.accounts[0]
    out = tmp_path / "deployment.json"
    rpc = anvil.w3.provider.endpoint_uri  # type: ignore[attr-defined]
    assert deploy_main(
        ["--rpc", rpc, "--admin-key", anvil.private_key(admin).hex(), "--settler", anvil.accounts[1], "--out", str(out)]
    ) == 0
    deployment = DemoDeployment.load(out)
    assert deployment.admin == admin and deployment.settler == anvil.accounts[1]
    assert deployment.chain_id == anvil.w3.eth.chain_id
    token = anvil.our_contract("DemoSecurityToken", deployment.token)
    assert token.functions.identityRegistry().call() == deployment.identity_registry
    assert token.functions.compliance().call() == deployment.compliance
    assert token.functions.decimals().call() == 0
    assert anvil.our_contract("DemoStablecoin", deployment.stablecoin).functions.decimals().call() == 6


def test_too_little_gas_never_records_a_valid_trade_as_failed(market: Market) -> None:
    """Without the contract's gas guard, some gas limits would let the caught out-of-gas of the
    inner call look like a trade failure. Sweep gas limits: every mined transaction must have
    settled its (valid) trade; underfunded ones revert as a whole."""
    settlement = market.admin.settlement
    outcomes: list[str] = []
    for gas in range(60_000, 200_001, 4_000):
        trade = market.trade(1, 10)
        try:
            market.chain.transact(settlement.functions.settle([trade.as_tuple()]), market.deployment.settler, gas=gas)
        except TransactionRevertedError as exc:
            outcomes.append(exc.reason)
            assert not settlement.functions.settled(trade.trade_id).call()
            continue
        outcomes.append("ok")
        assert settlement.functions.settled(trade.trade_id).call(), f"valid trade not settled with gas {gas}"
    assert "ok" in outcomes
    assert any(o.startswith("BatchOutOfGas") for o in outcomes), outcomes
