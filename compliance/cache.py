"""In-memory copy of the on-chain state the checks need. Pure: no I/O, no clock.

The ``ChainWatcher`` is the only writer in production; tests and the gatekeeper read it. Every
getter returns ``None`` for state that has not been synced yet, so a check can tell "not verified"
from "not known" (``CHAIN_STATE_UNKNOWN``). Addresses are normalised to lower case. Not thread-safe:
the watcher applies updates on the same thread/event loop that runs the checks.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from compliance.errors import ConfigError
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
        self._identity: dict[tuple[str, str], str] = {}  # (registry, wallet) -> identity contract
        # token compliance (``compliance().canTransfer``), for tokens opted in with track_transferability
        self._transfer_probes: dict[str, tuple[int, ...]] = {}  # token -> amounts read for every tracked pair
        self._compliance: dict[str, str] = {}
        self._can_transfer: dict[tuple[str, str, str], dict[int, bool]] = {}  # (token, from, to) -> amount -> ok
        self._transfer_requests: set[tuple[str, str, str, int]] = set()  # asked for, not known yet
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

    def track_transferability(self, token: str, probe_amounts: Iterable[int] = (1,)) -> None:
        """Follow ``token``'s own compliance: the watcher reads ``compliance().canTransfer(from, to, a)``
        for every ordered pair of tracked wallets and every probe amount ``a`` (plus amounts asked for
        through ``request_transfer_check``). Choose probes the venue trades (a lot, a typical and a
        maximal order quantity): answers between probes rely on ``can_transfer``'s monotonicity."""
        t = normalize_address(token, what="token")
        amounts = tuple(sorted({int(a) for a in probe_amounts}))
        if not amounts or amounts[0] <= 0:
            raise ConfigError("probe amounts must be positive integers (at least one)")
        self.track_token(t)
        self._transfer_probes[t] = amounts

    @property
    def transfer_probes(self) -> tuple[tuple[str, tuple[int, ...]], ...]:
        return tuple(sorted(self._transfer_probes.items()))

    def follows_transfers(self, token: str) -> bool:
        """Cheap: is ``token``'s compliance followed (``track_transferability``)?"""
        return token.lower() in self._transfer_probes

    def iter_wallets(self) -> Iterator[str]:
        """The tracked wallets without a copy (do not track wallets while iterating)."""
        return iter(self._wallets)

    def request_transfer_check(self, token: str, sender: str, receiver: str, amount: int) -> None:
        """Ask the watcher to read this exact ``canTransfer`` on its next poll."""
        t, f, r = token.lower(), sender.lower(), receiver.lower()
        if t in self._transfer_probes and amount > 0:
            self._transfer_requests.add((t, f, r, int(amount)))

    @property
    def transfer_requests(self) -> frozenset[tuple[str, str, str, int]]:
        return frozenset(self._transfer_requests)

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

    def set_identity(self, registry: str, wallet: str, identity: str) -> None:
        self._identity[(registry.lower(), wallet.lower())] = identity.lower()
        self.version += 1

    def set_compliance(self, token: str, compliance: str) -> None:
        self._compliance[token.lower()] = compliance.lower()
        self.version += 1

    def clear_transfers(self, token: str, wallet: str | None = None) -> None:
        """Forget ``canTransfer`` answers of ``token`` (all, or the pairs involving ``wallet``)."""
        t = token.lower()
        w = wallet.lower() if wallet is not None else None
        for key in [k for k in self._can_transfer if k[0] == t and (w is None or w in (k[1], k[2]))]:
            del self._can_transfer[key]
        self.version += 1

    def set_can_transfer(self, token: str, sender: str, receiver: str, amount: int, ok: bool) -> None:
        key = (token.lower(), sender.lower(), receiver.lower())
        self._can_transfer.setdefault(key, {})[int(amount)] = ok
        self._transfer_requests.discard((*key, int(amount)))
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

    def verified_in(self, registry: str, wallet: str) -> bool | None:
        return self._verified.get((registry.lower(), wallet.lower()))

    def identity(self, token: str, wallet: str) -> str | None:
        """The wallet's identity contract in ``token``'s registry (zero address: none registered)."""
        registry = self._registry.get(token.lower())
        if registry is None:
            return None
        return self._identity.get((registry, wallet.lower()))

    def identity_in(self, registry: str, wallet: str) -> str | None:
        return self._identity.get((registry.lower(), wallet.lower()))

    def compliance(self, token: str) -> str | None:
        return self._compliance.get(token.lower())

    def tokens_of_registry(self, registry: str) -> list[str]:
        r = registry.lower()
        return sorted(t for t, reg in self._registry.items() if reg == r)

    def can_transfer(self, token: str, sender: str, receiver: str, amount: int) -> bool | None:
        """The token compliance's ``canTransfer(sender, receiver, amount)`` as last read; ``None`` when
        unknown. Between read amounts, assumes monotonicity (T-REX modules limit amounts from above):
        refused at ``a <= amount`` -> refused; allowed at ``a >= amount`` -> allowed."""
        answers = self._can_transfer.get((token.lower(), sender.lower(), receiver.lower()))
        if not answers:
            return None
        exact = answers.get(amount)
        if exact is not None:
            return exact
        if any(not ok and a <= amount for a, ok in answers.items()):
            return False
        if any(ok and a >= amount for a, ok in answers.items()):
            return True
        return None

    def transfer_answers(self, token: str, sender: str, receiver: str) -> dict[int, bool]:
        return dict(self._can_transfer.get((token.lower(), sender.lower(), receiver.lower()), {}))

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
