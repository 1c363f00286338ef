"""What the gateway needs from the rest of the venue, as protocols.

The gateway depends only on these, on ``engine`` types and on the shared vocabulary ``market``;
``venue.core.VenueCore`` implements them (the composition root wires compliance, the
sequencer/journal, the store and settlement).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from engine import (
    AmendOrder,
    CancelOrder,
    Event,
    InstrumentStatus,
    L2Snapshot,
    MassCancel,
    NewOrder,
    OrderView,
)
from market.history import OrderRecord, Page, TradeQuery
from market.model import (
    ApiKey,
    AuditEntry,
    Listing,
    OrderAck,
    Outcome,
    ParticipantView,
    ReconciliationReport,
    Rejection,
    RejectionRecord,
    Role,
    SettlementNotice,
    SettlementState,
    Trade,
)

__all__ = [
    "ApiKey",
    "AuditEntry",
    "Listing",
    "OperatorPort",
    "OrderAck",
    "Outcome",
    "ParticipantView",
    "ReconciliationReport",
    "Rejection",
    "RejectionRecord",
    "Role",
    "SettlementNotice",
    "SettlementState",
    "Trade",
    "TradeRecord",
    "Unsubscribe",
    "VenuePort",
]


# The shared vocabulary lives in ``market``; re-exported here for the gateway modules.
TradeRecord = Trade  # the old name of ``market.Trade``

Unsubscribe = Callable[[], None]


class VenuePort(Protocol):
    """Everything the gateway calls. All engine commands go through ``submit``; the core stamps
    ``ts`` (pass ``ts=0``) and returns only once the command is durable and applied."""

    def listings(self) -> list[Listing]: ...

    def listing(self, symbol: str) -> Listing | None: ...

    def api_key(self, key_id: str) -> ApiKey | None: ...

    async def submit(self, participant: str, cmd: NewOrder | AmendOrder | CancelOrder | MassCancel) -> Outcome:
        """Eligibility/funding checks, then sequencer -> engine. ``cmd.participant`` must equal
        ``participant`` (the gateway builds it from the authenticated key)."""
        ...

    async def submit_batch(self, participant: str,
                           cmds: Sequence[NewOrder | CancelOrder | MassCancel]) -> list[Outcome]:
        """``cmds`` as one uninterrupted run of consecutive seqs (mass quote): no other command
        comes between them; one outcome per command, in order."""
        ...

    async def set_status(self, symbol: str, status: InstrumentStatus, *, operator: str) -> Outcome: ...

    def l2(self, symbol: str, depth: int | None = None) -> L2Snapshot: ...

    def order(self, order_id: int) -> OrderView | None: ...

    def open_orders(self, participant: str, symbol: str | None = None) -> list[OrderView]: ...

    def trades(
        self, *, symbol: str | None = None, participant: str | None = None, limit: int = 100
    ) -> list[Trade]: ...

    def subscribe_events(self, listener: Callable[[Event], None]) -> Unsubscribe:
        """Every engine event, in ``seq`` order, after durability; called on the event loop thread."""
        ...

    def subscribe_settlements(self, listener: Callable[[SettlementNotice], None]) -> Unsubscribe: ...

    @property
    def stream_seq(self) -> int:
        """The journal position (stream sequence of the replicated journal, command seq of the file
        journal) of the command whose events are being delivered now, else of the state the last
        read answered from; the same in every process, so market data carries it."""
        ...

    # -- history (full, from the store; see ``market.history``)

    async def order_record(self, participant: str, order_id: int) -> OrderRecord | None:
        """The order's current or final state (filled, cancelled, expired); None when it is unknown
        or belongs to another participant (the two are indistinguishable to the caller)."""
        ...

    async def trade_history(self, query: TradeQuery) -> Page[Trade]:
        """Trades newest first, the whole history (not only recent memory), paged by cursor."""
        ...


# ---------------------------------------------------------------- operator side


class OperatorPort(Protocol):
    """Operator reads and actions (console + operator API), on top of ``VenuePort``."""

    def participants(self) -> list[ParticipantView]: ...

    async def set_participant_status(self, participant: str, status: str, *, operator: str) -> None: ...

    async def freeze_wallet(self, participant: str, frozen: bool, *, operator: str) -> str:
        """Freezes/unfreezes the participant's wallet ON CHAIN (token agent); returns the tx hash."""
        ...

    def rejection_counts(self) -> dict[str, int]: ...

    def recent_rejections(self, limit: int = 100) -> list[RejectionRecord]: ...

    def settlements(self, limit: int = 200) -> list[SettlementNotice]: ...

    def settlement_counts(self) -> dict[str, int]: ...

    def reconciliation(self) -> ReconciliationReport: ...

    async def run_reconciliation(self, *, operator: str) -> ReconciliationReport: ...

    def audit_log(self, limit: int = 200) -> list[AuditEntry]: ...

    def audit_chain_ok(self) -> bool: ...
