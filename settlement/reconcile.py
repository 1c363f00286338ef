"""Compare on-chain balances with the venue's ledger."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

from settlement import artifacts
from settlement.chain import Chain, rpc_errors, to_address

_Wallet = TypeVar("_Wallet", bound=str)


@dataclass(frozen=True, slots=True, kw_only=True)
class Difference:
    wallet: str
    asset: str  # "token" or "cash"
    asset_address: str
    expected: int
    actual: int

    @property
    def delta(self) -> int:
        """On-chain minus ledger."""
        return self.actual - self.expected


def reconcile(
    chain: Chain, token: str, cash_token: str, expected: Mapping[_Wallet, tuple[int, int]]
) -> list[Difference]:
    """``expected`` maps wallet -> (token units, cash units) per the venue ledger. Returns every
    mismatch, sorted by wallet then asset; an empty list means the books agree."""
    erc20 = artifacts.load("DemoStablecoin").abi  # any ERC-20 ABI suffices for balanceOf
    contracts = {
        "token": chain.contract(token, erc20),
        "cash": chain.contract(cash_token, erc20),
    }
    diffs: list[Difference] = []
    for wallet in sorted(expected, key=str.lower):
        address = to_address(wallet)
        for index, asset in enumerate(("token", "cash")):
            want = expected[wallet][index]
            contract = contracts[asset]
            with rpc_errors("balanceOf"):
                actual = int(contract.functions.balanceOf(address).call())
            if actual != want:
                diffs.append(
                    Difference(
                        wallet=address, asset=asset, asset_address=contract.address, expected=want, actual=actual
                    )
                )
    return diffs
