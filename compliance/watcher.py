"""Keeps a ``ChainStateCache`` current from ERC-3643 token, identity-registry and stablecoin events.

Each poll: ``get_logs`` for every block since the last poll (one filter: our contract addresses, our
event topics), turn the events into the set of (contract, wallet) facts they may have changed, read
exactly those facts at the polled head block, then apply them to the cache in one step. Reading the
state named by an event (instead of replaying deltas) stays exact for events that do not carry the
full new state (``IdentityUpdated``, forced transfers that unfreeze, claim changes behind
``isVerified``). A full re-sync of everything tracked runs on the first poll and every
``resync_interval_s``; new wallets / tokens registered in the cache are synced on the next poll.

Holders: balances are known for tracked wallets and for every address seen in a ``Transfer`` since
the watcher started; with ``start_block`` set, the first sync also scans ``Transfer`` logs from that
block so holders that are not venue participants are counted too (``max_holders``).

Identity claims (T-REX registries): the watcher reads each registry's trusted-issuers and claim-topics
registries and each tracked wallet's ONCHAINID identity, and follows their events: ``ClaimAdded`` /
``ClaimRemoved`` / ``ClaimChanged`` on the identities of tracked wallets re-read that wallet's
``isVerified``; ``ClaimRevoked`` / ``KeyAdded`` / ``KeyRemoved`` on a trusted issuer and any change of
trusted issuers or claim topics re-read every tracked wallet of the registry (a revocation names only
a signature hash, so it is re-checked conservatively). Registries without ``issuersRegistry()`` (the
demo registry) simply have no claim layer.

Token compliance (tokens opted in with ``ChainStateCache.track_transferability``): the watcher reads
``compliance().canTransfer(from, to, amount)`` for every ordered pair of tracked wallets at the probe
amounts, and for pairs asked for through ``request_transfer_check``. Any log of the compliance
contract or of one of its modules (``ModuleAdded`` / ``ModuleRemoved`` / ``ModuleInteraction``,
module configuration events), and ``ComplianceAdded`` on the token, re-read all pairs of the token;
a transfer, freeze, country, identity or claim change of a wallet re-reads the pairs involving it;
the periodic full re-sync re-reads everything (time-dependent modules are bounded by it).

Eligibility loss: after applying a poll the watcher calls its listeners with ``EligibilityLost``
(``compliance.eligibility``) for every tracked wallet that became frozen, unverified (identity
removed, claim revoked, other) or whose token became paused.

Lag: ``lag`` (blocks behind the last seen head, seconds since the last successful poll) is a cheap
property for the order gate (``CHAIN_STATE_STALE``); it grows during an RPC outage.

Reorgs are not handled beyond ``confirmations``: the watcher follows ``head - confirmations``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

from web3 import Web3
from web3.exceptions import BadFunctionCallOutput, ContractLogicError, Web3Exception

try:  # the in-process EVM is an optional extra (omn-venue[embedded])
    from eth_tester.exceptions import TransactionFailed as _TesterReverted
except ImportError:  # pragma: no cover - production install: no eth-tester, so no such revert
    class _TesterReverted(Exception):  # type: ignore[no-redef]
        """Never raised: eth-tester is not installed."""

from compliance import abi
from compliance.cache import ChainStateCache
from compliance.eligibility import EligibilityListener, EligibilityLoss, EligibilityLost
from compliance.errors import ChainSyncError, ConfigError

log = logging.getLogger(__name__)

_ZERO = "0x" + "00" * 20
_REG_FACTS = ("set_verified", "set_country", "set_identity")  # registry facts a compliance module may read


@contextmanager
def _rpc(what: str) -> Iterator[None]:
    try:
        yield
    except (Web3Exception, OSError, ValueError) as exc:
        raise ChainSyncError(f"chain read failed ({what}): {type(exc).__name__}: {exc}") from exc


@dataclass
class _Plan:
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

    def wallet(self, token: str, wallet: str) -> None:
        self.token_wallets.add((token, wallet))
        self.reg_by_token.add((token, wallet))


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
    updates: tuple[tuple[str, tuple[Any, ...]], ...]
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


class ChainWatcher:
    def __init__(
        self,
        w3: Web3,
        cache: ChainStateCache,
        *,
        start_block: int | None = None,
        confirmations: int = 0,
        resync_interval_s: float = 300.0,
        poll_interval_s: float = 0.5,
        max_block_range: int = 2000,
        clock: Callable[[], float] = time.monotonic,
        wall_clock_ns: Callable[[], int] = time.time_ns,
        on_eligibility_lost: EligibilityListener | None = None,
    ) -> None:
        if confirmations < 0 or max_block_range < 1 or poll_interval_s <= 0 or resync_interval_s <= 0:
            raise ConfigError("confirmations >= 0, max_block_range >= 1 and positive intervals required")
        self._w3 = w3
        self.cache = cache
        self.start_block = start_block
        self.confirmations = confirmations
        self.resync_interval_s = resync_interval_s
        self.poll_interval_s = poll_interval_s
        self.max_block_range = max_block_range
        self._clock = clock
        self._wall = wall_clock_ns
        self._next_block: int | None = None  # first block whose logs are not applied yet
        self._last_full = 0.0
        self._registries: dict[str, str] = {}  # token -> identity registry (as last read)
        self._synced_wallets: set[str] = set()
        self._synced_tokens: set[str] = set()
        self._synced_cash: set[str] = set()
        self._synced_spenders: frozenset[str] = frozenset()
        self._holders_scanned: set[str] = set()
        self._force_full = False
        self._setups: dict[str, ClaimSetup | None] = {}  # registry -> claim setup
        self._identities: dict[str, set[tuple[str, str]]] = {}  # identity contract -> (registry, wallet)
        self._compliance: dict[str, tuple[str, tuple[str, ...]]] = {}  # token -> (compliance, modules)
        self._reg_facts: dict[tuple[str, str, str], object] = {}  # (fact, registry, wallet) -> last value read
        self._listeners: list[EligibilityListener] = [on_eligibility_lost] if on_eligibility_lost else []
        self._started = clock()
        self._last_ok: float | None = None  # clock() of the last applied poll
        self._seen_head = -1  # last head read from the node (minus confirmations)
        self.eligibility_events = 0
        # counters for operators / benchmarks
        self.polls = 0
        self.full_syncs = 0
        self.logs_seen = 0
        self.reads = 0
        self.last_head = -1
        self.last_error: str | None = None

    # ------------------------------------------------------------ public

    def poll_once(self) -> int:
        """Fetch and apply everything new up to the current head; returns the number of logs seen."""
        batch = self.fetch()
        self.apply(batch)
        return batch.logs

    def request_full_resync(self) -> None:
        self._force_full = True

    def add_eligibility_listener(self, listener: EligibilityListener) -> None:
        """``listener(EligibilityLost)`` runs on the thread that applies polls, after the cache is updated."""
        self._listeners.append(listener)

    @property
    def lag(self) -> ChainLag:
        """Cheap (no I/O): how stale the cache may be."""
        ref = self._last_ok if self._last_ok is not None else self._started
        blocks = max(0, self._seen_head - self.last_head) if self._seen_head >= 0 else None
        return ChainLag(blocks=blocks, seconds=max(0.0, self._clock() - ref), synced=self._last_ok is not None)

    def is_stale(self, max_seconds: float, max_blocks: int | None = None) -> bool:
        """True when the last successful poll is older than ``max_seconds`` (or, with ``max_blocks``,
        the cache is more than that many blocks behind the last head seen)."""
        lag = self.lag
        if lag.seconds > max_seconds:
            return True
        return max_blocks is not None and (lag.blocks is None or lag.blocks > max_blocks)

    async def run(self, stop: asyncio.Event | None = None, *, in_thread: bool = True) -> None:
        """Poll until ``stop`` is set. RPC runs in a worker thread (``in_thread``); the cache is
        updated on the event loop, so checks running on the loop never see a half-applied batch."""
        stop = stop or asyncio.Event()
        while not stop.is_set():
            try:
                targets = Targets.of(self.cache)  # on the loop: the worker thread never reads the cache
                batch = await asyncio.to_thread(self.fetch, targets) if in_thread else self.fetch(targets)
                self.apply(batch)
            except ChainSyncError as exc:
                self.last_error = str(exc)
                log.warning("chain watcher: %s", exc)
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.poll_interval_s)

    # ------------------------------------------------------------ fetch (I/O, no cache writes)

    def fetch(self, targets: Targets | None = None) -> SyncBatch:
        """Read what changed (RPC only; never touches the cache, safe in a worker thread when
        ``targets`` was snapshotted on the cache's own thread)."""
        targets = targets or Targets.of(self.cache)
        tracked = targets.wallets
        tokens = targets.tokens
        cash_tokens = targets.cash_tokens
        with _rpc("block number"):
            head = int(self._w3.eth.block_number) - self.confirmations
        self._seen_head = max(self._seen_head, head)
        if head < 0:
            return SyncBatch(head=head, updates=(), logs=0, full=False)
        full = (
            self._force_full or self._next_block is None
            or self._clock() - self._last_full >= self.resync_interval_s
            or not targets.spenders <= self._synced_spenders  # a new spender: every allowance is unknown
        )
        plan = _Plan()
        if full:
            plan.tokens |= tokens
            for t in tokens:
                for w in tracked:
                    plan.wallet(t, w)
            for t, known in targets.known:
                plan.balances |= {(t, a) for a in known}
            plan.cash_wallets |= {(c, w) for c in cash_tokens for w in tracked}
            plan.setups |= set(self._registries.values())
            plan.compliance_tokens |= {t for t, _ in targets.transfer_probes}
        else:
            new_tokens = tokens - self._synced_tokens
            new_wallets = tracked - self._synced_wallets
            plan.tokens |= new_tokens
            for t in tokens:
                for w in tracked:
                    if t in new_tokens or w in new_wallets:
                        plan.wallet(t, w)
            plan.cash_wallets |= {
                (c, w) for c in cash_tokens for w in tracked
                if c not in self._synced_cash or w in new_wallets
            }
            plan.compliance_tokens |= {t for t, _ in targets.transfer_probes if t not in self._compliance}
            plan.transfer_wallets |= {(t, w) for t, _ in targets.transfer_probes for w in new_wallets}
        logs = 0
        if self.start_block is not None:
            for t in tokens - self._holders_scanned:
                for a in self._scan_holders(t, self.start_block, head):
                    plan.balances.add((t, a))
        if self._next_block is not None and head >= self._next_block:
            logs = self._plan_from_logs(plan, self._next_block, head, targets)
        updates, registries = self._read(plan, head, sorted(targets.spenders))
        setups = self._read_setups(plan, registries, head)
        compliance = self._read_transferability(plan, updates, registries, head, targets)
        return SyncBatch(head=head, updates=tuple(updates), logs=logs, full=full, wallets=tracked, tokens=tokens,
                         cash_tokens=cash_tokens, registries=tuple(sorted(registries.items())),
                         spenders=targets.spenders, setups=tuple(sorted(setups.items())),
                         compliance=tuple(compliance), claim_wallets=frozenset(plan.claim_wallets))

    def _get_logs(
        self, addresses: Sequence[str], topics: Sequence[bytes] | None, start: int, end: int
    ) -> list[Any]:
        out: list[Any] = []
        if not addresses:
            return out
        checksummed = [Web3.to_checksum_address(a) for a in sorted(addresses)]
        lo = start
        while lo <= end:
            hi = min(end, lo + self.max_block_range - 1)
            flt: dict[str, Any] = {"fromBlock": lo, "toBlock": hi, "address": checksummed}
            if topics is not None:
                flt["topics"] = [["0x" + t.hex() for t in topics]]
            with _rpc(f"get_logs {lo}-{hi}"):
                out.extend(self._w3.eth.get_logs(flt))  # type: ignore[arg-type]
            lo = hi + 1
        return out

    def _scan_holders(self, token: str, start: int, end: int) -> set[str]:
        addresses: set[str] = set()
        for entry in self._get_logs([token], [abi.TRANSFER], start, end):
            topics = entry["topics"]
            if len(topics) >= 3:
                addresses.add(abi.topic_address(topics[2]))
                addresses.add(abi.topic_address(topics[1]))
        addresses.discard(_ZERO)
        return addresses

    def _plan_from_logs(self, plan: _Plan, start: int, end: int, targets: Targets) -> int:
        tracked, tokens, cash_tokens = targets.wallets, targets.tokens, targets.cash_tokens
        registries: dict[str, set[str]] = {}
        for t in tokens:
            reg = self._registries.get(t)
            if reg is not None:
                registries.setdefault(reg, set()).add(t)
        spenders = targets.spenders
        # claim layer: registry -> its issuers/topics registries, trusted issuer -> registries
        setup_regs: dict[str, set[str]] = {}
        issuer_regs: dict[str, set[str]] = {}
        for reg, setup in self._setups.items():
            if setup is None or reg not in registries:
                continue
            setup_regs.setdefault(setup.issuers_registry, set()).add(reg)
            setup_regs.setdefault(setup.topics_registry, set()).add(reg)
            for issuer in setup.issuers:
                issuer_regs.setdefault(issuer, set()).add(reg)
        identities = {i: pairs for i, pairs in self._identities.items()
                      if i != _ZERO and any(w in tracked for _, w in pairs)}

        def all_wallets(regs: set[str]) -> None:
            plan.reg |= {(r, w) for r in regs for w in tracked}
            plan.claim_wallets |= tracked

        entries = self._get_logs([*tokens, *cash_tokens, *registries, *setup_regs, *issuer_regs, *identities],
                                 abi.ALL_TOPICS, start, end)
        for entry in entries:
            address = str(entry["address"]).lower()
            topics = [bytes(t) for t in entry["topics"]]
            if not topics:
                continue
            kind = topics[0]
            arg1 = abi.topic_address(topics[1]) if len(topics) > 1 else None
            arg2 = abi.topic_address(topics[2]) if len(topics) > 2 else None
            if address in tokens:
                if kind == abi.TRANSFER:
                    for a in (arg1, arg2):
                        if a is None or a == _ZERO:
                            continue
                        if a in tracked:
                            plan.wallet(address, a)
                        else:
                            plan.balances.add((address, a))
                elif kind == abi.APPROVAL:
                    if arg1 in tracked and arg2 in spenders:
                        plan.token_wallets.add((address, arg1))
                elif kind in (abi.ADDRESS_FROZEN, abi.TOKENS_FROZEN, abi.TOKENS_UNFROZEN):
                    if arg1 in tracked:
                        plan.token_wallets.add((address, arg1))
                elif kind in (abi.PAUSED, abi.UNPAUSED):
                    plan.tokens.add(address)
                elif kind == abi.IDENTITY_REGISTRY_ADDED:
                    plan.tokens.add(address)
                    plan.reg_by_token |= {(address, w) for w in tracked}
                    plan.compliance_tokens.add(address)
                elif kind == abi.COMPLIANCE_ADDED:
                    plan.compliance_tokens.add(address)
            elif address in cash_tokens:
                if kind == abi.TRANSFER:
                    plan.cash_wallets |= {(address, a) for a in (arg1, arg2) if a in tracked}
                elif kind == abi.APPROVAL and arg1 in tracked and arg2 in spenders:
                    plan.cash_wallets.add((address, arg1))
            elif address in registries:
                if kind in (abi.IDENTITY_REGISTERED, abi.IDENTITY_REMOVED, abi.COUNTRY_UPDATED):
                    if arg1 in tracked:
                        plan.reg.add((address, arg1))
                elif kind == abi.IDENTITY_UPDATED:
                    # names identities, not wallets: re-read every tracked wallet of this registry
                    plan.reg |= {(address, w) for w in tracked}
                elif kind in abi.REGISTRY_SETUP_TOPICS:
                    plan.setups.add(address)
                    all_wallets({address})
            elif address in setup_regs:
                if kind in abi.CLAIM_SETUP_TOPICS:  # trusted issuers or required topics changed
                    plan.setups |= setup_regs[address]
                    all_wallets(setup_regs[address])
            elif address in issuer_regs:
                if kind in abi.ISSUER_TOPICS:  # a revocation names a signature hash only: re-check all
                    all_wallets(issuer_regs[address])
            elif address in identities and kind in abi.IDENTITY_CLAIM_TOPICS:
                for r, w in identities[address]:
                    if w in tracked:
                        plan.reg.add((r, w))
                        plan.claim_wallets.add(w)
        # token compliance: any event of a compliance contract or of its modules (module added /
        # removed, ``ModuleInteraction`` for every setting, module configuration events)
        owners: dict[str, set[str]] = {}
        for t, _ in targets.transfer_probes:
            known = self._compliance.get(t)
            if known is not None:
                for a in (known[0], *known[1]):
                    owners.setdefault(a, set()).add(t)
        if owners:
            config = self._get_logs(sorted(owners), None, start, end)
            for entry in config:
                plan.compliance_tokens |= owners.get(str(entry["address"]).lower(), set())
            entries = [*entries, *config]
        return len(entries)

    def _call(self, contract: Any, fn: str, *args: Any, head: int) -> Any:
        self.reads += 1
        with _rpc(f"{fn} on {contract.address}"):
            return getattr(contract.functions, fn)(*args).call(block_identifier=head)

    def _try_call(self, contract: Any, fn: str, *args: Any, head: int) -> tuple[bool, Any]:
        """(False, None) when the call reverts or returns nothing (function not implemented)."""
        self.reads += 1
        try:
            return True, getattr(contract.functions, fn)(*args).call(block_identifier=head)
        except (ContractLogicError, BadFunctionCallOutput, _TesterReverted):  # a revert (in-process EVM too)
            return False, None
        except (Web3Exception, OSError, ValueError) as exc:
            raise ChainSyncError(f"chain read failed ({fn} on {contract.address}): "
                                 f"{type(exc).__name__}: {exc}") from exc

    def _read_setups(self, plan: _Plan, registries: dict[str, str], head: int) -> dict[str, ClaimSetup | None]:
        """Claim setup of registries seen for the first time or named by a setup event."""
        out: dict[str, ClaimSetup | None] = {}
        wanted = set(plan.setups) | {r for r in registries.values() if r not in self._setups}
        for r in sorted(wanted - {_ZERO}):
            c = self._w3.eth.contract(address=Web3.to_checksum_address(r), abi=abi.TREX_REGISTRY_ABI)
            ok, tir = self._try_call(c, "issuersRegistry", head=head)
            ok2, ctr = self._try_call(c, "topicsRegistry", head=head) if ok else (False, None)
            if not (ok and ok2):
                out[r] = None  # no claim layer (e.g. the demo registry)
                continue
            tir_c = self._w3.eth.contract(address=Web3.to_checksum_address(str(tir)), abi=abi.TRUSTED_ISSUERS_ABI)
            issuers = tuple(sorted(str(i).lower() for i in self._call(tir_c, "getTrustedIssuers", head=head)))
            out[r] = ClaimSetup(issuers_registry=str(tir).lower(), topics_registry=str(ctr).lower(), issuers=issuers)
        return out

    def _read_transferability(
        self, plan: _Plan, updates: list[tuple[str, tuple[Any, ...]]], registries: dict[str, str], head: int,
        targets: Targets,
    ) -> list[tuple[str, str, tuple[str, ...]]]:
        """``canTransfer`` answers to (re-)read; appends cache updates, returns (token, compliance, modules)
        for tokens whose compliance was re-read."""
        out: list[tuple[str, str, tuple[str, ...]]] = []
        tracked = sorted(targets.wallets)
        # pairs of a wallet named by a token event (transfer, freeze, approval) are re-read, and of a
        # wallet whose isVerified / country / identity read differs from the last one (a claim event
        # re-reads every wallet of the registry; only those that changed cost pair reads)
        touched = {(t, w) for t, w in plan.token_wallets} | set(plan.transfer_wallets)
        for name, args in updates:
            if name in _REG_FACTS and self._reg_facts.get((name, args[0], args[1]), None) != args[2]:
                touched |= {(t, args[1]) for t, reg in registries.items() if reg == args[0]}
        for t, probes in targets.transfer_probes:
            checks: set[tuple[str, str, int]] = set()
            if t in plan.compliance_tokens:
                token = self._w3.eth.contract(address=Web3.to_checksum_address(t), abi=abi.SECURITY_TOKEN_ABI)
                comp = str(self._call(token, "compliance", head=head)).lower()
                cc = self._w3.eth.contract(address=Web3.to_checksum_address(comp), abi=abi.COMPLIANCE_ABI)
                ok, modules = self._try_call(cc, "getModules", head=head)
                mods = tuple(sorted(str(m).lower() for m in modules)) if ok else ()
                out.append((t, comp, mods))
                updates.append(("set_compliance", (t, comp)))
                updates.append(("clear_transfers", (t, None)))
                checks |= {(f, r, a) for f in tracked for r in tracked if f != r for a in probes}
            else:
                known = self._compliance.get(t)
                if known is None:
                    continue  # compliance not read yet (next poll)
                comp = known[0]
                for tt, w in sorted(touched):
                    if tt != t or w not in targets.wallets:
                        continue
                    updates.append(("clear_transfers", (t, w)))
                    checks |= {(f, r, a) for x in tracked if x != w for f, r in ((w, x), (x, w)) for a in probes}
            checks |= {(f, r, a) for (tt, f, r, a) in targets.transfer_requests if tt == t}
            cc = self._w3.eth.contract(address=Web3.to_checksum_address(comp), abi=abi.COMPLIANCE_ABI)
            for f, r, a in sorted(checks):
                ok, allowed = self._try_call(cc, "canTransfer", Web3.to_checksum_address(f),
                                             Web3.to_checksum_address(r), a, head=head)
                # a module that reverts refuses the transfer just as surely
                updates.append(("set_can_transfer", (t, f, r, a, bool(ok and allowed))))
        return out

    def _read(
        self, plan: _Plan, head: int, spenders: list[str]
    ) -> tuple[list[tuple[str, tuple[Any, ...]]], dict[str, str]]:
        w3 = self._w3
        updates: list[tuple[str, tuple[Any, ...]]] = []
        registries = dict(self._registries)

        def token_c(addr: str) -> Any:
            return w3.eth.contract(address=Web3.to_checksum_address(addr), abi=abi.SECURITY_TOKEN_ABI)

        for t in sorted(plan.tokens):
            c = token_c(t)
            registry = str(self._call(c, "identityRegistry", head=head)).lower()
            registries[t] = registry
            updates.append(("set_identity_registry", (t, registry)))
            updates.append(("set_paused", (t, bool(self._call(c, "paused", head=head)))))
        for t, w in sorted(plan.token_wallets):
            c = token_c(t)
            cw = Web3.to_checksum_address(w)
            updates.append(("set_frozen", (t, w, bool(self._call(c, "isFrozen", cw, head=head)))))
            updates.append(("set_frozen_tokens", (t, w, int(self._call(c, "getFrozenTokens", cw, head=head)))))
            updates.append(("set_balance", (t, w, int(self._call(c, "balanceOf", cw, head=head)))))
            for s in spenders:
                amount = int(self._call(c, "allowance", cw, Web3.to_checksum_address(s), head=head))
                updates.append(("set_allowance", (t, w, s, amount)))
        for t, a in sorted(plan.balances - plan.token_wallets):
            amount = int(self._call(token_c(t), "balanceOf", Web3.to_checksum_address(a), head=head))
            updates.append(("set_balance", (t, a, amount)))
        for c_addr, w in sorted(plan.cash_wallets):
            c = w3.eth.contract(address=Web3.to_checksum_address(c_addr), abi=abi.ERC20_ABI)
            cw = Web3.to_checksum_address(w)
            updates.append(("set_balance", (c_addr, w, int(self._call(c, "balanceOf", cw, head=head)))))
            for s in spenders:
                amount = int(self._call(c, "allowance", cw, Web3.to_checksum_address(s), head=head))
                updates.append(("set_allowance", (c_addr, w, s, amount)))
        reg = set(plan.reg)
        for t, w in plan.reg_by_token:
            reg_addr = registries.get(t)
            if reg_addr is None:
                # token seen for the first time outside a full sync: read its registry now
                reg_addr = str(self._call(token_c(t), "identityRegistry", head=head)).lower()
                registries[t] = reg_addr
                updates.append(("set_identity_registry", (t, reg_addr)))
            reg.add((reg_addr, w))
        for r, w in sorted(reg):
            if r == _ZERO:
                continue
            c = w3.eth.contract(address=Web3.to_checksum_address(r), abi=abi.IDENTITY_REGISTRY_ABI)
            cw = Web3.to_checksum_address(w)
            updates.append(("set_verified", (r, w, bool(self._call(c, "isVerified", cw, head=head)))))
            updates.append(("set_country", (r, w, int(self._call(c, "investorCountry", cw, head=head)))))
            updates.append(("set_identity", (r, w, str(self._call(c, "identity", cw, head=head)).lower())))
        return updates, registries

    # ------------------------------------------------------------ apply (cache writes only)

    def apply(self, batch: SyncBatch) -> None:
        if batch.head < 0:
            return
        cache = self.cache
        tracked = cache.wallets
        lost: list[tuple[str, str, EligibilityLoss]] = []  # (wallet, token, reason)
        unverified: list[tuple[str, str]] = []  # (registry, wallet)
        for name, args in batch.updates:
            if name == "set_frozen" and args[2] and cache.frozen(args[0], args[1]) is not True:
                if args[1] in tracked:
                    lost.append((args[1], args[0], EligibilityLoss.WALLET_FROZEN))
            elif name == "set_paused" and args[1] and cache.paused(args[0]) is not True:
                lost.extend((w, args[0], EligibilityLoss.TOKEN_PAUSED) for w in sorted(tracked))
            elif name == "set_verified" and not args[2] and cache.verified_in(args[0], args[1]) is not False:
                if args[1] in tracked:
                    unverified.append((args[0], args[1]))
            elif name == "set_identity":
                self._identities.setdefault(args[2], set()).add((args[0], args[1]))
            if name in _REG_FACTS:
                self._reg_facts[(name, args[0], args[1])] = args[2]
            getattr(cache, name)(*args)
        for r, w in unverified:
            identity = cache.identity_in(r, w)
            if identity is None or identity == _ZERO:
                reason = EligibilityLoss.IDENTITY_REMOVED
            elif w in batch.claim_wallets:
                reason = EligibilityLoss.CLAIM_REVOKED
            else:
                reason = EligibilityLoss.IDENTITY_NOT_VERIFIED
            lost.extend((w, t, reason) for t in cache.tokens_of_registry(r))
        self._registries.update(batch.registries)
        self._setups.update(batch.setups)
        for t, comp, mods in batch.compliance:
            self._compliance[t] = (comp, mods)
        self._synced_wallets |= batch.wallets
        self._synced_tokens |= batch.tokens
        self._synced_cash |= batch.cash_tokens
        if self.start_block is not None:
            self._holders_scanned |= batch.tokens
        if batch.full:
            self._synced_spenders = batch.spenders
            self._last_full = self._clock()
            self._force_full = False
            self.full_syncs += 1
        self._next_block = batch.head + 1
        self.polls += 1
        self.logs_seen += batch.logs
        self.last_head = batch.head
        self.last_error = None
        self._last_ok = self._clock()
        cache.mark_synced(batch.head, self._wall())
        self._emit(lost, batch.head)

    def _emit(self, lost: list[tuple[str, str, EligibilityLoss]], block: int) -> None:
        seen: set[tuple[str, str, EligibilityLoss]] = set()
        for wallet, token, reason in lost:
            if (wallet, token, reason) in seen:
                continue
            seen.add((wallet, token, reason))
            event = EligibilityLost(wallet=wallet, token=token, reason=reason, block=block)
            self.eligibility_events += 1
            for listener in self._listeners:
                try:
                    listener(event)
                except Exception:  # a failing listener must not stop the watcher or the other listeners
                    log.exception("eligibility listener failed on %s", event)
