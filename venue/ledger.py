"""The venue's own ledger of wallet balances, for reconciliation against the chain.

Starts from a baseline (chain balances when the venue starts, or when an operator accepts the
current state after funding) and applies both legs of every trade the settlement contract
confirmed. Any other on-chain movement of a tracked wallet shows up as a difference.
"""

from __future__ import annotations

from collections.abc import Mapping


class Ledger:
    def __init__(self) -> None:
        self._balances: dict[tuple[str, str], int] = {}  # (asset, wallet) -> base units

    def baseline(self, balances: Mapping[tuple[str, str], int | None]) -> None:
        self._balances = {(a.lower(), w.lower()): int(v or 0) for (a, w), v in balances.items()}

    def apply_trade(self, token: str, cash_token: str, *, buyer: str, seller: str, quantity: int, cash: int) -> None:
        self._move(token, seller, buyer, quantity)
        self._move(cash_token, buyer, seller, cash)

    def _move(self, asset: str, src: str, dst: str, amount: int) -> None:
        a = asset.lower()
        self._balances[(a, src.lower())] = self._balances.get((a, src.lower()), 0) - amount
        self._balances[(a, dst.lower())] = self._balances.get((a, dst.lower()), 0) + amount

    def balance(self, asset: str, wallet: str) -> int:
        return self._balances.get((asset.lower(), wallet.lower()), 0)

    def expected(self, token: str, cash_token: str) -> dict[str, tuple[int, int]]:
        """wallet -> (token units, cash units) for every wallet the ledger knows."""
        wallets = {w for (_, w) in self._balances}
        return {w: (self.balance(token, w), self.balance(cash_token, w)) for w in sorted(wallets)}
