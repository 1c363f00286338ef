"""Property: a batch of random trades (some unaffordable, some frozen) ends exactly as a sequential
model of DvP says: each trade moves both legs or nothing, and value is conserved."""

from __future__ import annotations

from itertools import count

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from settlement import Chain, DemoAdmin, SettlementService, SettlementStatus, TradeToSettle, deploy_demo

pytestmark = pytest.mark.anvil

WALLETS = 3
trade_st = st.tuples(
    st.integers(0, WALLETS - 1),  # seller
    st.integers(0, WALLETS - 1),  # buyer (same as seller -> refused before the chain)
    st.integers(1, 60),  # quantity
    st.integers(1, 600),  # cash
)


@pytest.fixture(scope="module")
def setup(anvil: Chain) -> tuple[DemoAdmin, list[str], SettlementService]:
    dep = deploy_demo(anvil, admin=anvil.accounts[0], settler=anvil.accounts[1])
    admin = DemoAdmin(anvil, dep)
    wallets: list[str] = [anvil.new_account() for _ in range(WALLETS)]
    for w in wallets:
        admin.onboard(w, country=756, notes=100, cash=1_000)
    service = SettlementService(anvil, dep.settlement, anvil.private_key(dep.settler), on_update=lambda u: None)
    return admin, wallets, service


_ids = count(1)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(trades=st.lists(trade_st, min_size=1, max_size=8), frozen=st.sets(st.integers(0, WALLETS - 1), max_size=1))
def test_batch_matches_sequential_model(
    setup: tuple[DemoAdmin, list[str], SettlementService],
    trades: list[tuple[int, int, int, int]],
    frozen: set[int],
) -> None:
    admin, wallets, service = setup
    for i in frozen:
        admin.freeze(wallets[i])
    try:
        notes = {w: admin.balances(w)[0] for w in wallets}
        cash = {w: admin.balances(w)[1] for w in wallets}
        total_before = (sum(notes.values()), sum(cash.values()))
        batch = [
            TradeToSettle(
                trade_id=next(_ids),
                token=admin.deployment.token,
                seller=wallets[s],
                buyer=wallets[b],
                quantity=q,
                cash_token=admin.deployment.stablecoin,
                cash_amount=c,
            )
            for s, b, q, c in trades
            if s != b
        ]
        updates = service.settle_batch(batch)
        expected: list[SettlementStatus] = []
        for t in batch:
            ok = (
                wallets.index(t.seller) not in frozen
                and wallets.index(t.buyer) not in frozen
                and notes[t.seller] >= t.quantity
                and cash[t.buyer] >= t.cash_amount
            )
            if ok:
                notes[t.seller] -= t.quantity
                notes[t.buyer] += t.quantity
                cash[t.buyer] -= t.cash_amount
                cash[t.seller] += t.cash_amount
            expected.append(SettlementStatus.CONFIRMED if ok else SettlementStatus.FAILED)
        assert [u.status for u in updates] == expected
        assert all(u.reason for u in updates if u.status is SettlementStatus.FAILED)
        actual = {w: admin.balances(w) for w in wallets}
        assert actual == {w: (notes[w], cash[w]) for w in wallets}
        assert (sum(n for n, _ in actual.values()), sum(c for _, c in actual.values())) == total_before
    finally:
        for i in frozen:
            admin.freeze(wallets[i], False)
