"""Helpers for the signed-order suites: sign an order with a wallet's key, settle through the service."""

from __future__ import annotations

from dataclasses import dataclass

from eth_account import Account

from market.signed import SignedOrder, signed_order_from_wire
from settlement import Chain, TradeToSettle
from settlement.investor import InvestorActions
from tests.settlement.conftest import Market
from venueclient.signed_orders import OrderDomain, order_digest, sign_order

FAR = 10**6  # seconds of validity for orders that must not expire during a test


def now(chain: Chain) -> int:
    return int(chain.w3.eth.get_block("latest")["timestamp"])


def domain(market: Market) -> OrderDomain:
    return OrderDomain(chain_id=int(market.chain.w3.eth.chain_id), verifying_contract=market.deployment.settlement)


@dataclass(frozen=True)
class Signer:
    market: Market
    domain: OrderDomain

    def order(self, wallet: str, *, sell: bool, limit_price: int, max_quantity: int, expiry: int | None = None,
              nonce: int = 0, key: bytes | None = None, wallet_override: str | None = None,
              domain: OrderDomain | None = None) -> SignedOrder:
        """``limit_price`` in cash base units per 10**18 note base units (the contract's unit)."""
        m = self.market
        wire = {"wallet": wallet_override or wallet, "token": m.deployment.token,
                "cash_token": m.deployment.stablecoin, "side": "sell" if sell else "buy",
                "limit_price": str(limit_price), "max_quantity": str(max_quantity),
                "expiry": str(expiry if expiry is not None else now(m.chain) + FAR), "nonce": str(nonce)}
        signing_key = key if key is not None else m.chain.private_key(wallet)
        return signed_order_from_wire(dict(sign_order(wire, domain or self.domain, signing_key)))

    def digest(self, order: SignedOrder) -> bytes:
        return order_digest(order.to_wire(), self.domain)


def per_unit(cash: int, quantity: int) -> int:
    """The contract limit price of ``cash`` for ``quantity`` note base units (exact in the tests)."""
    assert cash * 10**18 % quantity == 0
    return cash * 10**18 // quantity


def signed_trade(market: Market, quantity: int, cash: int, *, sell_order: SignedOrder | None = None,
                 buy_order: SignedOrder | None = None, **kwargs: str) -> TradeToSettle:
    t = market.trade(quantity, cash, **kwargs)
    return TradeToSettle(trade_id=t.trade_id, token=t.token, seller=t.seller, buyer=t.buyer, quantity=t.quantity,
                         cash_token=t.cash_token, cash_amount=t.cash_amount, sell_order=sell_order,
                         buy_order=buy_order)


def fresh_key() -> bytes:
    return bytes(Account.create().key)


def investor(market: Market) -> InvestorActions:
    return InvestorActions(market.chain, market.deployment.settlement)
