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
the periodic full re-sync re-reads everything (time-dependent modules are bounded by it). The pairs
are most of a busy poll's reads (every ordered pair of tracked wallets at each probe amount, when
everyone trades): in the polling loop (``run``) the pairs of wallets that only moved balance (a
``Transfer``) are re-read at most once per ``pair_interval_s``, keeping their last answers until then;
freeze, approval, registry and compliance changes re-read theirs at once, and nothing else is paced.
A transfer re-reads the wallet's balance and allowances only: freezes, frozen amounts and registry
facts change with events of their own, which re-read them. The staleness limit (``lag``) is
unaffected: facts polls keep succeeding every ``poll_interval_s``.

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
from collections.abc import Callable
from contextlib import suppress
from functools import partial

from web3 import Web3

from compliance.cache import ChainStateCache
from compliance.chain_reads import ChainReader, rpc
from compliance.eligibility import EligibilityListener, EligibilityLoss, EligibilityLost
from compliance.errors import ChainSyncError, ConfigError
from compliance.planning import plan_from_logs, plan_sync
from compliance.sync import REG_FACTS, ZERO_ADDRESS, ChainLag, ClaimSetup, SyncBatch, SyncState, Targets

__all__ = ["ChainLag", "ChainWatcher", "ClaimSetup", "SyncBatch", "Targets"]

log = logging.getLogger(__name__)


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
        pair_interval_s: float = 5.0,
        max_block_range: int = 2000,
        clock: Callable[[], float] = time.monotonic,
        wall_clock_ns: Callable[[], int] = time.time_ns,
        on_eligibility_lost: EligibilityListener | None = None,
    ) -> None:
        if (confirmations < 0 or max_block_range < 1 or poll_interval_s <= 0 or resync_interval_s <= 0
                or pair_interval_s < 0):
            raise ConfigError("confirmations >= 0, max_block_range >= 1 and positive intervals required")
        self._w3 = w3
        self._reader = ChainReader(w3, max_block_range=max_block_range)
        self.cache = cache
        self.start_block = start_block
        self.confirmations = confirmations
        self.resync_interval_s = resync_interval_s
        self.poll_interval_s = poll_interval_s
        self.pair_interval_s = pair_interval_s
        self._clock = clock
        self._wall = wall_clock_ns
        self._state = SyncState()
        self._listeners: list[EligibilityListener] = [on_eligibility_lost] if on_eligibility_lost else []
        self._started = clock()
        self._last_ok: float | None = None  # clock() of the last applied poll
        self._seen_head = -1  # last head read from the node (minus confirmations)
        self.eligibility_events = 0
        # counters for operators / benchmarks
        self.polls = 0
        self.full_syncs = 0
        self.logs_seen = 0
        self.last_head = -1
        self.last_error: str | None = None

    # ------------------------------------------------------------ public

    @property
    def max_block_range(self) -> int:
        return self._reader.max_block_range

    @max_block_range.setter
    def max_block_range(self, value: int) -> None:
        self._reader.max_block_range = value

    @property
    def reads(self) -> int:
        """Contract calls made so far."""
        return self._reader.reads

    def poll_once(self) -> int:
        """Fetch and apply everything new up to the current head; returns the number of logs seen."""
        batch = self.fetch()
        self.apply(batch)
        return batch.logs

    def request_full_resync(self) -> None:
        self._state.force_full = True

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
                fetch = partial(self.fetch, targets, paced=True)
                batch = await asyncio.to_thread(fetch) if in_thread else fetch()
                self.apply(batch)
            except ChainSyncError as exc:
                self.last_error = str(exc)
                log.warning("chain watcher: %s", exc)
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.poll_interval_s)

    # ------------------------------------------------------------ fetch (I/O, no cache writes)

    def fetch(self, targets: Targets | None = None, *, paced: bool = False) -> SyncBatch:
        """Read what changed (RPC only; never touches the cache, safe in a worker thread when
        ``targets`` was snapshotted on the cache's own thread). ``paced`` (the polling loop): the
        ``canTransfer`` pairs of wallets whose balance moved are re-read at most once per
        ``pair_interval_s`` (their last answers stay until then); every other fact is read now."""
        targets = targets or Targets.of(self.cache)
        state, reader = self._state, self._reader
        tracked = targets.wallets
        tokens = targets.tokens
        cash_tokens = targets.cash_tokens
        with rpc("block number"):
            head = int(self._w3.eth.block_number) - self.confirmations
        self._seen_head = max(self._seen_head, head)
        if head < 0:
            return SyncBatch(head=head, updates=(), logs=0, full=False)
        full = (
            state.force_full or state.next_block is None
            or self._clock() - state.last_full >= self.resync_interval_s
            or not targets.spenders <= state.synced_spenders  # a new spender: every allowance is unknown
        )
        plan = plan_sync(state, targets, full=full)
        logs = 0
        if self.start_block is not None:
            for t in tokens - state.holders_scanned:
                for a in reader.scan_holders(t, self.start_block, head):
                    plan.balances.add((t, a))
        if state.next_block is not None and head >= state.next_block:
            logs = plan_from_logs(reader, state, plan, state.next_block, head, targets)
        moved = frozenset(plan.moved | state.moved)
        pairs_due = full or not paced or self._clock() - state.last_pairs >= self.pair_interval_s
        plan.pair_moves = set(moved) if pairs_due else set()
        updates, registries = reader.read_facts(plan, head, sorted(targets.spenders), state)
        setups = reader.read_setups(plan, registries, head, state)
        compliance = reader.read_transferability(plan, updates, registries, head, targets, state)
        return SyncBatch(head=head, updates=tuple(updates), logs=logs, full=full, wallets=tracked, tokens=tokens,
                         cash_tokens=cash_tokens, registries=tuple(sorted(registries.items())),
                         spenders=targets.spenders, setups=tuple(sorted(setups.items())),
                         compliance=tuple(compliance), claim_wallets=frozenset(plan.claim_wallets),
                         moved=frozenset() if pairs_due else moved, pairs_read=pairs_due)

    # ------------------------------------------------------------ apply (cache writes only)

    def apply(self, batch: SyncBatch) -> None:
        if batch.head < 0:
            return
        cache, state = self.cache, self._state
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
                state.identities.setdefault(args[2], set()).add((args[0], args[1]))
            if name in REG_FACTS:
                state.reg_facts[(name, args[0], args[1])] = args[2]
            getattr(cache, name)(*args)
        for r, w in unverified:
            identity = cache.identity_in(r, w)
            if identity is None or identity == ZERO_ADDRESS:
                reason = EligibilityLoss.IDENTITY_REMOVED
            elif w in batch.claim_wallets:
                reason = EligibilityLoss.CLAIM_REVOKED
            else:
                reason = EligibilityLoss.IDENTITY_NOT_VERIFIED
            lost.extend((w, t, reason) for t in cache.tokens_of_registry(r))
        state.registries.update(batch.registries)
        state.setups.update(batch.setups)
        for t, comp, mods in batch.compliance:
            state.compliance[t] = (comp, mods)
        state.synced_wallets |= batch.wallets
        state.synced_tokens |= batch.tokens
        state.synced_cash |= batch.cash_tokens
        if self.start_block is not None:
            state.holders_scanned |= batch.tokens
        if batch.full:
            state.synced_spenders = batch.spenders
            state.last_full = self._clock()
            state.force_full = False
            self.full_syncs += 1
        state.moved = batch.moved
        if batch.pairs_read:
            state.last_pairs = self._clock()
        state.next_block = batch.head + 1
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
