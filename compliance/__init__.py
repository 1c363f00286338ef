"""Investor eligibility and funding checks, fed by an in-memory copy of the chain's ERC-3643 state.

Every order is checked before the engine and every trade before settlement. A check never does
I/O: it reads ``ChainStateCache`` (kept current by ``ChainWatcher`` from token / identity-registry
events, with a periodic full re-sync) and the reservation ledger (``compliance.ledger``; rules in ``compliance.rules``).

Public API::

    cache = ChainStateCache()
    gk = Gatekeeper(cache, settlement_address=DVP, on_decision=store_sink, max_chain_lag_ns=None)
    gk.upsert_participant(Participant(id=..., status=ParticipantStatus.ACTIVE,
                                      category=InvestorCategory.MIFID_PROFESSIONAL, jurisdiction="DE",
                                      kyc_expiry_ts=..., wallet="0x..."))
    gk.set_rules(InstrumentRules.from_spec(spec, token=OMN, cash_token=USD,
                                           allowed_categories=frozenset({...}), holding_cap=..., ...))
    watcher = ChainWatcher(w3, cache)          # w3: a sync web3.Web3 (HTTP/anvil or in-process EVM)
    watcher.poll_once()                        # tests; production: ``await watcher.run()``

    # ``seq``: the command seq the sequencer gives this command; the hold is reserved under it
    d = gk.check_new_order(seq=, participant=, symbol=, side=, qty=, price=, now_ts=)  # -> Decision
    gk.check_amend(seq=, participant=, order=OrderView, new_price=, new_qty=, now_ts=)
    gk.on_command(seq, result.events)          # every applied command, in order: binds/releases the
                                               # seq's hold; fills -> obligations; cancels release
    gk.release(d.hold)                         # only if the command never reached the sequencer
    gk.check_trade(fill, now_ts=)              # before settlement: both sides' eligibility
    gk.on_trade_finished(trade_id, block=, failed=)  # failed: released now; confirmed: once the cache
                                               # has applied ``block`` (unknown: after two more polls)
    gk.rejection_counts(); gk.recent_rejections(n); gk.state_of(pid); gk.participant_views()

Market buys must carry a protection price (cash is reserved at it), else ``PROTECTION_PRICE_REQUIRED``.
Rejection codes: ``ReasonCode`` (StrEnum, value == name); when several conditions fail the first in
``PRECEDENCE`` (declaration order) is reported.

Exception tree (expected rejections are ``Decision`` objects, never exceptions)::

    ComplianceError
    ├── ConfigError        bad participant / rules / argument (also a ValueError)
    ├── UnknownHoldError   a hold used inconsistently (also a KeyError)
    ├── ChainSyncError     the chain could not be read (web3 / RPC errors translated, chained as __cause__)
    └── InvariantError     reservation ledger inconsistent (``Gatekeeper.validate()``): a bug
"""

from compliance.cache import ChainStateCache, TokenState
from compliance.codes import ELIGIBILITY_CODES, PRECEDENCE, ReasonCode
from compliance.errors import ChainSyncError, ComplianceError, ConfigError, InvariantError, UnknownHoldError
from compliance.model import (
    CheckKind,
    Decision,
    DecisionRecord,
    EligibilityView,
    Hold,
    InstrumentEligibility,
    InstrumentRules,
    InvestorCategory,
    Participant,
    ParticipantStatus,
    ParticipantSummary,
    normalize_address,
)
from compliance.rules import Gatekeeper
from compliance.watcher import ChainWatcher, SyncBatch, Targets

__all__ = [
    "ELIGIBILITY_CODES",
    "PRECEDENCE",
    "ChainStateCache",
    "ChainSyncError",
    "ChainWatcher",
    "CheckKind",
    "ComplianceError",
    "ConfigError",
    "Decision",
    "DecisionRecord",
    "EligibilityView",
    "Gatekeeper",
    "Hold",
    "InstrumentEligibility",
    "InstrumentRules",
    "InvariantError",
    "InvestorCategory",
    "Participant",
    "ParticipantStatus",
    "ParticipantSummary",
    "ReasonCode",
    "SyncBatch",
    "Targets",
    "TokenState",
    "UnknownHoldError",
    "normalize_address",
]
