"""In-memory copy of the on-chain state the checks need. Pure: no I/O, no clock.

The ``ChainWatcher`` is the only writer in production; tests and the gatekeeper read it. Every
getter returns ``None`` for state that has not been synced yet, so a check can tell "not verified"
from "not known" (``CHAIN_STATE_UNKNOWN``). Addresses are normalised to lower case. Not thread-safe:
the watcher applies updates on the same thread/event loop that runs the checks.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from compliance.model import normalize_address


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenState:
    token: str
    identity_registry: str | None
    paused: bool | None
    holders: int


class ChainStateCache:
    def __init__(self) -> None:
        self.block: int = -1  # last block whose events are fully applied
        self.synced_at_ns: int | None = None  # wall clock of the last successful sync
        self.syncs = 0  # completed polls
        self._tokens: set[str] = set()  # ERC-3643 security tokens
        self._cash_tokens: set[str] = set()
        self._spenders: set[str] = set()  # allowances tracked towards these (the settlement contract)
        self._wallets: set[str] = set()  # participants' wallets: fully synced
        self._registry: dict[str, str] = {}
        self._paused: dict[str, bool] = {}
        self._frozen: dict[tuple[str, str], bool] = {}
        self._frozen_tokens: dict[tuple[str, str], int] = {}
        self._verified: dict[tuple[str, str], bool] = {}
        self._country: dict[tuple[str, str], int] = {}
        self._balances: dict[tuple[str, str], int] = {}
        self._allowances: dict[tuple[str, str, str], int] = {}
        self._holders: dict[str, set[str]] = {}
        self.version = 0  # bumped on every change; cheap "did anything move" check for tests/views

    # ------------------------------------------------------------ what to follow

    def track_token(self, token: str) -> None:
        t = normalize_address(token, what="token")
        self._tokens.add(t)
        self._holders.setdefault(t, set())

    def track_cash_token(self, cash_token: str) -> None:
        self._cash_tokens.add(normalize_address(cash_token, what="cash token"))

    def track_spender(self, spender: str) -> None:
        self._spenders.add(normalize_address(spender, what="spender"))

    def track_wallet(self, wallet: str) -> bool:
        """Follow a wallet; returns True when it is new (the watcher then syncs it)."""
        w = normalize_address(wallet, what="wallet")
        if w in self._wallets:
            return False
        self._wallets.add(w)
        return True

    @property
    def tokens(self) -> frozenset[str]:
        return frozenset(self._tokens)

    @property
    def cash_tokens(self) -> frozenset[str]:
        return frozenset(self._cash_tokens)

    @property
    def spenders(self) -> frozenset[str]:
        return frozenset(self._spenders)

    @property
    def wallets(self) -> frozenset[str]:
        return frozenset(self._wallets)

    def known_addresses(self, token: str) -> frozenset[str]:
        """Addresses whose balance of ``token`` is known (tracked wallets and seen holders)."""
        t = token.lower()
        return frozenset(w for (tok, w) in self._balances if tok == t)

    # ------------------------------------------------------------ writers (the watcher)

    def set_identity_registry(self, token: str, registry: str) -> None:
        self._registry[token.lower()] = registry.lower()
        self.version += 1

    def set_paused(self, token: str, paused: bool) -> None:
        self._paused[token.lower()] = paused
        self.version += 1

    def set_frozen(self, token: str, wallet: str, frozen: bool) -> None:
        self._frozen[(token.lower(), wallet.lower())] = frozen
        self.version += 1

    def set_frozen_tokens(self, token: str, wallet: str, amount: int) -> None:
        self._frozen_tokens[(token.lower(), wallet.lower())] = amount
        self.version += 1

    def set_verified(self, registry: str, wallet: str, verified: bool) -> None:
        self._verified[(registry.lower(), wallet.lower())] = verified
        self.version += 1

    def set_country(self, registry: str, wallet: str, country: int) -> None:
        self._country[(registry.lower(), wallet.lower())] = country
        self.version += 1

    def set_balance(self, token: str, wallet: str, amount: int) -> None:
        t, w = token.lower(), wallet.lower()
        self._balances[(t, w)] = amount
        holders = self._holders.get(t)
        if holders is not None:
            if amount > 0:
                holders.add(w)
            else:
                holders.discard(w)
        self.version += 1

    def set_allowance(self, token: str, owner: str, spender: str, amount: int) -> None:
        self._allowances[(token.lower(), owner.lower(), spender.lower())] = amount
        self.version += 1

    def mark_synced(self, block: int, at_ns: int) -> None:
        """A watcher poll completed: everything up to ``block`` is applied."""
        self.block = max(self.block, block)
        self.synced_at_ns = at_ns
        self.syncs += 1

    # ------------------------------------------------------------ readers (the checks)

    def identity_registry(self, token: str) -> str | None:
        return self._registry.get(token.lower())

    def paused(self, token: str) -> bool | None:
        return self._paused.get(token.lower())

    def frozen(self, token: str, wallet: str) -> bool | None:
        return self._frozen.get((token.lower(), wallet.lower()))

    def frozen_tokens(self, token: str, wallet: str) -> int | None:
        return self._frozen_tokens.get((token.lower(), wallet.lower()))

    def verified(self, token: str, wallet: str) -> bool | None:
        """``isVerified`` of ``wallet`` in the identity registry of ``token``."""
        registry = self._registry.get(token.lower())
        if registry is None:
            return None
        return self._verified.get((registry, wallet.lower()))

    def country(self, token: str, wallet: str) -> int | None:
        registry = self._registry.get(token.lower())
        if registry is None:
            return None
        return self._country.get((registry, wallet.lower()))

    def balance(self, token: str, wallet: str) -> int | None:
        return self._balances.get((token.lower(), wallet.lower()))

    def allowance(self, token: str, owner: str, spender: str) -> int | None:
        return self._allowances.get((token.lower(), owner.lower(), spender.lower()))

    def holders(self, token: str) -> frozenset[str]:
        return frozenset(self._holders.get(token.lower(), ()))

    def holder_count(self, token: str) -> int:
        return len(self._holders.get(token.lower(), ()))

    def is_holder(self, token: str, wallet: str) -> bool:
        return wallet.lower() in self._holders.get(token.lower(), ())

    def token_state(self, token: str) -> TokenState:
        t = token.lower()
        return TokenState(
            token=t, identity_registry=self._registry.get(t), paused=self._paused.get(t),
            holders=len(self._holders.get(t, ())),
        )

    def wallets_of_registry(self, registry: str) -> Iterable[str]:
        r = registry.lower()
        return [w for (reg, w) in self._verified if reg == r]
