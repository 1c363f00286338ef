"""Property (issue 16): no sequence of settle calls ever fills a signed order beyond its maximum.
Random batches of fills against one signed buy order, some repeating earlier trade ids; the
contract's cumulative fill, the buyer's notes and a sequential model agree, and never exceed the
order's maximum."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import count

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from market.signed import signed_order_from_wire
from settlement import Chain, DemoAdmin, DemoDeployment, SettlementService, TradeToSettle, deploy_demo
from settlement.investor import InvestorActions
from tests.settlement.signed_world import FAR, now
from venueclient.signed_orders import OrderDomain, sign_order


@dataclass
class World:
    chain: Chain
    dep: DemoDeployment
    admin: DemoAdmin
    seller: str
    service: SettlementService
    domain: OrderDomain


@pytest.fixture(scope="module")
def world(in_process: Chain) -> World:
    chain = in_process
    dep = deploy_demo(chain, admin=chain.accounts[0], settler=chain.accounts[1])
    admin = DemoAdmin(chain, dep)
    seller = chain.new_account()
    admin.onboard(seller, country=756, notes=10**9)
    service = SettlementService(chain, dep.settlement, chain.private_key(dep.settler), on_update=lambda u: None)
    domain = OrderDomain(chain_id=int(chain.w3.eth.chain_id), verifying_contract=dep.settlement)
    return World(chain, dep, admin, seller, service, domain)


_ids = count(1)


@pytest.mark.slow
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(maximum=st.integers(1, 30),
       batches=st.lists(st.lists(st.tuples(st.integers(1, 12), st.booleans()), min_size=1, max_size=5),
                        min_size=1, max_size=3))
def test_no_settle_sequence_fills_an_order_beyond_its_maximum(
    world: World, maximum: int, batches: list[list[tuple[int, bool]]]
) -> None:
    chain, dep = world.chain, world.dep
    buyer = chain.new_account()
    world.admin.onboard(buyer, country=276, cash=10**9)
    wire = {"wallet": buyer, "token": dep.token, "cash_token": dep.stablecoin, "side": "buy",
            "limit_price": str(10**18), "max_quantity": str(maximum), "expiry": str(now(chain) + FAR), "nonce": "0"}
    order = signed_order_from_wire(dict(sign_order(wire, world.domain, chain.private_key(buyer))))
    model_filled, earlier, decided = 0, [], set()
    for batch in batches:
        trades: list[TradeToSettle] = []
        for quantity, resend in batch:
            if resend and earlier:  # a settler resubmitting an earlier trade id
                again = earlier[quantity % len(earlier)]
                if again not in trades:
                    trades.append(again)
                continue
            trades.append(TradeToSettle(trade_id=next(_ids), token=dep.token, seller=world.seller, buyer=buyer,
                                        quantity=quantity, cash_token=dep.stablecoin, cash_amount=quantity,
                                        buy_order=order))
        world.service.settle_batch(trades)
        for t in trades:  # the sequential model of the contract
            if t.trade_id not in decided and model_filled + t.quantity <= maximum:
                model_filled += t.quantity
            decided.add(t.trade_id)
        earlier += [t for t in trades if t not in earlier]
        _, filled = InvestorActions(chain, dep.settlement).order_status(order)
        assert filled == model_filled <= maximum
        assert world.admin.balances(buyer)[0] == model_filled
