"""The console suites' venue: the real ``venue.core.VenueCore`` (reference data, pipeline, trade
book and settlement state machine, rejection log, operations) with the real ``compliance.Gatekeeper``
over a ``ChainStateCache`` seeded as the chain watcher would fill it. There is no journal (the gateway
suite's inline sequencer), no store and no chain: the test knobs stand in for what those would do:

    settle(...)                          what the settlement service reports for a trade
    chain_down                           the chain admin and the reconciliation fail (RPC down)
    set_reconciliation_differences(...)  what the next reconciliation finds
    tamper_audit()                       someone edits the first audit entry behind the venue's back
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Mapping

from compliance import ChainStateCache, Gatekeeper, InvestorCategory, Participant, ParticipantStatus
from engine import AddInstrument, Command, Engine, InstrumentSpec, Result
from market.model import ApiKey, AuditEntry, Listing, Role, SettlementNotice, SettlementState
from store import audit as audit_chain
from tests.gateway.fakes import InlineSequencer
from venue.core import EngineReader, Sequencer, VenueCore
from venue.listings import ListingRules
from venueclient.signing import generate_keypair

SYMBOL = "OMN-2027"
OTHER_SYMBOL = "OMN-2029"
TOKEN = "0x" + "11" * 20
CASH = "0x" + "22" * 20
SETTLEMENT = "0x" + "33" * 20
REGISTRY = "0x" + "44" * 20
WALLETS = {"alice": "0x" + "a1" * 20, "bob": "0x" + "b2" * 20, "carol": None}
NOTES = 500 * 10**18 + 25 * 10**16  # 500.25 notes per wallet
CASH_BALANCE = 1_250_000 * 10**6
KYC_EXPIRY_TS = 1_893_456_000 * 10**9


def make_listing(symbol: str, name: str) -> Listing:
    # 1 note per lot (18 decimals), 0.01 cash per tick (6 decimals): 10_000 ticks = 100.00
    spec = InstrumentSpec(symbol=symbol, tick_size=10_000, lot_size=10**18, min_qty=1, max_qty=10_000,
                          band_low=1, band_high=1_000_000)
    return Listing(spec=spec, name=name, token_address=TOKEN, cash_token_address=CASH,
                   token_decimals=18, cash_decimals=6)


LISTINGS = (make_listing(SYMBOL, "Omnes Mining Note 2027"), make_listing(OTHER_SYMBOL, "Omnes Mining Note 2029"))


class ChainDown(Exception):
    """What a broken RPC looks like to the router: some exception from the core."""


class FakeChain:
    """The token agent (``venue.operations.ChainAdmin``) and the reconciliation, without a chain. A
    freeze lands in the cache at once, as the chain watcher would report it."""

    def __init__(self, cache: ChainStateCache) -> None:
        self._cache = cache
        self.down = False
        self.differences: list[str] = []
        self._txs = 0

    def freeze(self, wallet: str, frozen: bool = True) -> Mapping[str, object]:
        if self.down:
            raise ChainDown("connection refused")
        self._txs += 1
        self._cache.set_frozen(TOKEN, wallet, frozen)
        return {"transactionHash": hashlib.sha256(f"{wallet}:{frozen}:{self._txs}".encode()).digest()}

    async def reconcile(self) -> list[str]:
        if self.down:
            raise ChainDown("connection refused")
        return list(self.differences)


class MemoryAudit:
    """The store's part the core writes to, in memory: the audit log, hash-chained with the store's
    own functions (``store.audit``); projection and settlement records are not kept."""

    def __init__(self) -> None:
        self.entries: list[AuditEntry] = []
        self._ts = 0

    def enqueue(self, cmd_seq: int, cmd: Command, result: Result) -> None:
        """No projection: the console suites read trades and orders from the core's memory."""

    def record_settlement(self, notice: SettlementNotice, then: Callable[[], None] | None = None) -> None:
        """No settlement records: the trade book keeps the states the console reads; "written" at once."""
        if then is not None:
            then()

    def set_participant_status(self, participant: str, status: str) -> None:
        """No participant table: the gate holds the status."""

    def audit(self, actor: str, action: str, details: Mapping[str, object]) -> None:
        self._ts += 1
        entry = AuditEntry(id=len(self.entries) + 1, ts=self._ts, actor=actor, action=action,
                           details=audit_chain.canonical_details(dict(details)), hash="")
        self.entries.append(dataclasses.replace(entry, hash=_hash(self.entries[-1].hash if self.entries
                                                                   else audit_chain.GENESIS, entry)))

    def audit_entries(self, limit: int) -> list[AuditEntry]:
        return list(reversed(self.entries))[:limit]

    def audit_ok(self) -> bool:
        prev = audit_chain.GENESIS
        for entry in self.entries:
            if entry.hash != _hash(prev, entry):
                return False
            prev = entry.hash
        return True


def _hash(prev: str, entry: AuditEntry) -> str:
    return audit_chain.entry_hash(prev, id=entry.id, ts=entry.ts, actor=entry.actor, action=entry.action,
                                  details=entry.details)


def _gatekeeper() -> Gatekeeper:
    cache = ChainStateCache()
    gate = Gatekeeper(cache, settlement_address=SETTLEMENT)
    for participant, wallet in WALLETS.items():
        gate.upsert_participant(Participant(
            id=participant, status=ParticipantStatus.ACTIVE, category=InvestorCategory.MIFID_PROFESSIONAL,
            jurisdiction="CH", kyc_expiry_ts=KYC_EXPIRY_TS, wallet=wallet))
    cache.set_identity_registry(TOKEN, REGISTRY)
    cache.set_paused(TOKEN, False)
    for wallet in (w for w in WALLETS.values() if w is not None):
        cache.set_verified(REGISTRY, wallet, True)
        cache.set_frozen(TOKEN, wallet, False)
        cache.set_frozen_tokens(TOKEN, wallet, 0)
        for token, amount in ((TOKEN, NOTES), (CASH, CASH_BALANCE)):
            cache.set_balance(token, wallet, amount)
            cache.set_allowance(token, wallet, SETTLEMENT, amount)
    return gate


@dataclasses.dataclass(frozen=True, slots=True)
class Parts:
    """What the console suites plug into a ``VenueCore``: the gate over its seeded cache, the chain
    stand-in, the audit memory and two keys (operator ``op-key``, trader ``trader-key``)."""

    gatekeeper: Gatekeeper
    chain: FakeChain
    audit: MemoryAudit
    keys: tuple[ApiKey, ...]
    private_keys: dict[str, bytes]

    @classmethod
    def build(cls) -> Parts:
        gatekeeper = _gatekeeper()
        private_keys: dict[str, bytes] = {}
        keys = []
        for key_id, who, role in (("op-key", "ops-alice", Role.OPERATOR), ("trader-key", "alice", Role.TRADER)):
            private, public = generate_keypair()
            private_keys[key_id] = private
            keys.append(ApiKey(key_id=key_id, participant=who, role=role, public_key=public))
        return cls(gatekeeper=gatekeeper, chain=FakeChain(gatekeeper.cache), audit=MemoryAudit(), keys=tuple(keys),
                   private_keys=private_keys)

    def core(self, engine: EngineReader, sequencer: Sequencer) -> VenueCore:
        """A core over these parts; the caller adds ``LISTINGS`` to the engine (``AddInstrument``)."""
        return _listed(VenueCore(engine=engine, sequencer=sequencer, keys=self.keys, wallets=_wallets(),
                                 compliance=self.gatekeeper, store=self.audit, admin=self.chain,
                                 reconciler=self.chain.reconcile))


def _wallets() -> dict[str, str]:
    return {p: w for p, w in WALLETS.items() if w is not None}


def _listed(core: VenueCore) -> VenueCore:
    for listing in LISTINGS:
        core.reference.add_listing(listing, ListingRules())  # its compliance rules into the gate
    return core


class FakeVenue(VenueCore):
    """The real core over ``Parts`` and an inline sequencer, with the test knobs."""

    def __init__(self) -> None:
        self.engine = Engine()
        sequencer = InlineSequencer(self.engine)
        parts = Parts.build()
        self.gatekeeper, self.chain, self.audit_memory = parts.gatekeeper, parts.chain, parts.audit
        self.private_keys = parts.private_keys
        super().__init__(engine=self.engine, sequencer=sequencer, keys=parts.keys, wallets=_wallets(),
                         compliance=self.gatekeeper, store=self.audit_memory, admin=self.chain,
                         reconciler=self.chain.reconcile)
        _listed(self)
        sequencer.subscribe(lambda *_: self.engine.validate())  # the book's invariants after every command
        for listing in LISTINGS:
            result = self.engine.process(AddInstrument(ts=sequencer.stamp(), spec=listing.spec))
            assert result.code.name == "OK", result

    # ------------------------------------------------------------ test knobs

    @property
    def chain_down(self) -> bool:
        return self.chain.down

    @chain_down.setter
    def chain_down(self, down: bool) -> None:
        self.chain.down = down

    def settle(self, trade_id: int, state: SettlementState, *, tx_hash: str | None = None,
               block: int | None = None, gas_used: int | None = None, reason: str | None = None) -> None:
        """What the settlement service reports; must run on the loop that serves the app."""
        self.on_settlement_update(trade_id, state, tx_hash=tx_hash, block=block, gas_used=gas_used, reason=reason)

    def set_reconciliation_differences(self, differences: list[str]) -> None:
        self.chain.differences = list(differences)

    def tamper_audit(self) -> None:
        entries = self.audit_memory.entries
        entries[0] = dataclasses.replace(entries[0], actor="mallory")
