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
from web3.exceptions import Web3Exception

from compliance import abi
from compliance.cache import ChainStateCache
from compliance.errors import ChainSyncError, ConfigError

log = logging.getLogger(__name__)

_ZERO = "0x" + "00" * 20


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

    @classmethod
    def of(cls, cache: ChainStateCache) -> Targets:
        tokens = cache.tokens
        return cls(wallets=cache.wallets, tokens=tokens, cash_tokens=cache.cash_tokens, spenders=cache.spenders,
                   known=tuple((t, cache.known_addresses(t)) for t in sorted(tokens)))


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
        logs = 0
        if self.start_block is not None:
            for t in tokens - self._holders_scanned:
                for a in self._scan_holders(t, self.start_block, head):
                    plan.balances.add((t, a))
        if self._next_block is not None and head >= self._next_block:
            logs = self._plan_from_logs(plan, self._next_block, head, targets)
        updates, registries = self._read(plan, head, sorted(targets.spenders))
        return SyncBatch(head=head, updates=tuple(updates), logs=logs, full=full, wallets=tracked, tokens=tokens,
                         cash_tokens=cash_tokens, registries=tuple(sorted(registries.items())),
                         spenders=targets.spenders)

    def _get_logs(self, addresses: Sequence[str], topics: Sequence[bytes], start: int, end: int) -> list[Any]:
        out: list[Any] = []
        if not addresses:
            return out
        checksummed = [Web3.to_checksum_address(a) for a in sorted(addresses)]
        lo = start
        while lo <= end:
            hi = min(end, lo + self.max_block_range - 1)
            with _rpc(f"get_logs {lo}-{hi}"):
                out.extend(self._w3.eth.get_logs({
                    "fromBlock": lo, "toBlock": hi, "address": checksummed,
                    "topics": [["0x" + t.hex() for t in topics]],
                }))
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
        entries = self._get_logs([*tokens, *cash_tokens, *registries], abi.ALL_TOPICS, start, end)
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
        return len(entries)

    def _call(self, contract: Any, fn: str, *args: Any, head: int) -> Any:
        self.reads += 1
        with _rpc(f"{fn} on {contract.address}"):
            return getattr(contract.functions, fn)(*args).call(block_identifier=head)

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
        return updates, registries

    # ------------------------------------------------------------ apply (cache writes only)

    def apply(self, batch: SyncBatch) -> None:
        if batch.head < 0:
            return
        cache = self.cache
        for name, args in batch.updates:
            getattr(cache, name)(*args)
        self._registries.update(batch.registries)
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
        cache.mark_synced(batch.head, self._wall())
