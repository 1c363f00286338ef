"""One shared suite over both backends: every test taking ``chain`` runs on the in-process EVM
and on a real anvil node (marked ``anvil``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import count

import pytest
from eth_typing import ChecksumAddress

from settlement import (
    Chain,
    DemoAdmin,
    DemoDeployment,
    SettlementService,
    SettlementUpdate,
    TradeToSettle,
)
from tests.chains import deploy_and_fund, in_process_evm

in_process = pytest.fixture(scope="session", name="in_process")(in_process_evm)


@dataclass
class Market:
    """A fresh demo deployment with a funded seller and buyer who approved the settlement contract."""

    chain: Chain
    deployment: DemoDeployment
    admin: DemoAdmin
    seller: ChecksumAddress
    buyer: ChecksumAddress
    outsider: ChecksumAddress  # funded with ETH, not registered
    updates: list[SettlementUpdate] = field(default_factory=list)
    _ids: count[int] = field(default_factory=lambda: count(1))

    def trade(
        self,
        quantity: int = 10,
        cash: int = 1_000_000,
        *,
        seller: str | None = None,
        buyer: str | None = None,
        trade_id: int | None = None,
        token: str | None = None,
    ) -> TradeToSettle:
        return TradeToSettle(
            trade_id=trade_id if trade_id is not None else next(self._ids),
            token=token or self.deployment.token,
            seller=seller or self.seller,
            buyer=buyer or self.buyer,
            quantity=quantity,
            cash_token=self.deployment.stablecoin,
            cash_amount=cash,
        )

    def service(self, **kwargs: object) -> SettlementService:
        return SettlementService(
            self.chain,
            self.deployment.settlement,
            self.chain.private_key(self.deployment.settler),
            on_update=self.updates.append,
            **kwargs,  # type: ignore[arg-type]
        )

    def balances(self) -> dict[str, tuple[int, int]]:
        return {w: self.admin.balances(w) for w in (self.seller, self.buyer, self.outsider)}


SELLER_NOTES = 1_000
BUYER_CASH = 1_000_000_000


@pytest.fixture
def market(chain: Chain) -> Market:
    funded = deploy_and_fund(chain, notes=SELLER_NOTES, cash=BUYER_CASH, seller_country=756, buyer_country=276)
    return Market(chain, funded.deployment, funded.admin, funded.seller, funded.buyer, chain.new_account())
