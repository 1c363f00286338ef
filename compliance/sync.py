"""The data a ``ChainWatcher`` poll passes between its steps: what to follow (``Targets``), what to read
(``ReadPlan``), what was read (``SyncBatch``), what the watcher remembers between polls (``SyncState``)
and how stale the cache may be (``ChainLag``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from compliance.cache import ChainStateCache

ZERO_ADDRESS = "0x" + "00" * 20
REG_FACTS = ("set_verified", "set_country", "set_identity")  # registry facts a compliance module may read

Update = tuple[str, tuple[Any, ...]]  # (``ChainStateCache`` setter, its arguments)


@dataclass
class ReadPlan:
    tokens: set[str] = field(default_factory=set)  # identityRegistry() + paused()
    token_wallets: set[tuple[str, str]] = field(default_factory=set)  # freeze, frozen tokens, balance, allowances
    balances: set[tuple[str, str]] = field(default_factory=set)  # balance only (holders)
    cash_wallets: set[tuple[str, str]] = field(default_factory=set)  # balance + allowances
    reg_by_token: set[tuple[str, str]] = field(default_factory=set)  # (token, wallet) -> its registry's facts
    reg: set[tuple[str, str]] = field(default_factory=set)  # (registry, wallet): isVerified + investorCountry
    setups: set[str] = field(default_factory=set)  # registries whose claim setup (issuers) is re-read
    claim_wallets: set[str] = field(default_factory=set)  # wallets re-read because of a claim event
    compliance_tokens: set[str] = field(default_factory=set)  # compliance address + every pair re-read
    transfer_wallets: set[tuple[str, str]] = field(default_factory=set)  # (token, wallet): its pairs re-read
    # (token, wallet) whose balance moved (a ``Transfer``): balance and allowances re-read
    moved: set[tuple[str, str]] = field(default_factory=set)
    # (token, wallet) whose ``canTransfer`` pairs are re-read for a balance move (in the polling loop at
    # most once per ``ChainWatcher.pair_interval_s``, see ``SyncState.moved``)
    pair_moves: set[tuple[str, str]] = field(default_factory=set)

    def wallet(self, token: str, wallet: str) -> None:
        """Every fact of a wallet not synced yet (or in a full sync), and its transfer pairs."""
        self.token_wallets.add((token, wallet))
        self.reg_by_token.add((token, wallet))
        self.transfer_wallets.add((token, wallet))


@dataclass(frozen=True, slots=True)
class Targets:
    """What to follow, snapshotted from the cache on the thread that owns it."""

    wallets: frozenset[str]
    tokens: frozenset[str]
    cash_tokens: frozenset[str]
    spenders: frozenset[str]
    known: tuple[tuple[str, frozenset[str]], ...]  # token -> addresses with a known balance
    transfer_probes: tuple[tuple[str, tuple[int, ...]], ...] = ()  # token -> canTransfer probe amounts
    transfer_requests: frozenset[tuple[str, str, str, int]] = frozenset()

    @classmethod
    def of(cls, cache: ChainStateCache) -> Targets:
        tokens = cache.tokens
        return cls(wallets=cache.wallets, tokens=tokens, cash_tokens=cache.cash_tokens, spenders=cache.spenders,
                   known=tuple((t, cache.known_addresses(t)) for t in sorted(tokens)),
                   transfer_probes=cache.transfer_probes, transfer_requests=cache.transfer_requests)


@dataclass(frozen=True, slots=True)
class ClaimSetup:
    """Where a T-REX registry's verification rules live (as last read)."""

    issuers_registry: str
    topics_registry: str
    issuers: tuple[str, ...]  # trusted claim issuers (any topic)


@dataclass(frozen=True, slots=True)
class ChainLag:
    """How far behind the chain the cache may be. ``blocks``: last head seen minus last block applied
    (``None`` before any head was seen; it cannot grow while the RPC is down, ``seconds`` does).
    ``seconds``: since the last successful poll (since the watcher was created if none yet)."""

    blocks: int | None
    seconds: float
    synced: bool  # at least one poll applied


@dataclass(frozen=True, slots=True)
class SyncBatch:
    """Facts read at ``head``; applying them is the only step that touches the cache."""

    head: int
    updates: tuple[Update, ...]
    logs: int
    full: bool
    # what this batch covered (snapshotted when the fetch began)
    wallets: frozenset[str] = frozenset()
    tokens: frozenset[str] = frozenset()
    cash_tokens: frozenset[str] = frozenset()
    registries: tuple[tuple[str, str], ...] = ()
    spenders: frozenset[str] = frozenset()
    setups: tuple[tuple[str, ClaimSetup | None], ...] = ()  # registry -> claim setup (None: no claim layer)
    compliance: tuple[tuple[str, str, tuple[str, ...]], ...] = ()  # token, compliance, modules
    claim_wallets: frozenset[str] = frozenset()
    moved: frozenset[tuple[str, str]] = frozenset()  # balance moves whose pair re-read is still due
    pairs_read: bool = False  # this batch re-read the pairs of every balance move due


@dataclass
class SyncState:
    """What the watcher knows from the batches it applied; written only by ``ChainWatcher.apply``."""

    next_block: int | None = None  # first block whose logs are not applied yet
    last_full: float = 0.0
    force_full: bool = False
    registries: dict[str, str] = field(default_factory=dict)  # token -> identity registry (as last read)
    synced_wallets: set[str] = field(default_factory=set)
    synced_tokens: set[str] = field(default_factory=set)
    synced_cash: set[str] = field(default_factory=set)
    synced_spenders: frozenset[str] = frozenset()
    holders_scanned: set[str] = field(default_factory=set)
    setups: dict[str, ClaimSetup | None] = field(default_factory=dict)  # registry -> claim setup
    identities: dict[str, set[tuple[str, str]]] = field(default_factory=dict)  # identity -> (registry, wallet)
    compliance: dict[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict)  # token -> (compliance, modules)
    reg_facts: dict[tuple[str, str, str], object] = field(default_factory=dict)  # (fact, registry, wallet) -> value
    moved: frozenset[tuple[str, str]] = frozenset()  # (token, wallet) balance moves whose pairs are not re-read yet
    last_pairs: float = float("-inf")  # clock of the last batch that re-read the pairs of balance moves
