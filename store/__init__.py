"""SQL store (SQLAlchemy 2, SQLite by default, PostgreSQL by URL, Alembic migrations).

Reference data (participants, wallets, API public keys, instruments and their listing rules), settlements, eligibility
decisions and a hash-chained append-only audit log are written through ``Store``; orders and
trades are a projection of the journal written asynchronously by ``StoreWriter`` and
rebuildable with ``rebuild_from_journal`` / ``sync_from_journal``.

Exception tree::

    StoreError
    ├── StoreUnavailableError   database unreachable / DBAPI error (translated)
    ├── DuplicateError          row with the same key exists
    ├── NotFoundError           update of a row that does not exist
    ├── InvalidRecordError      value outside the schema (status, role, key length, address)
    ├── AuditChainError         audit append kept colliding with other writers
    ├── ProjectionGapError      projection got commands beyond its position
    └── MigrationError          alembic upgrade failed
"""

from store.db import DEFAULT_URL, create_db_engine
from store.errors import (
    AuditChainError,
    DuplicateError,
    InvalidRecordError,
    MigrationError,
    NotFoundError,
    ProjectionGapError,
    StoreError,
    StoreUnavailableError,
)
from store.migrate import migrate
from store.projection import StoreWriter, rebuild_from_journal, sync_from_journal
from store.records import (
    ApiKeyRecord,
    AuditAnchor,
    AuditEntry,
    AuditVerification,
    EligibilityDecision,
    Instrument,
    InstrumentState,
    KeyRole,
    OrderStatus,
    Outcome,
    Participant,
    ParticipantStatus,
    SettlementStatus,
    SettlementUpdate,
    StoredOrder,
    StoredTrade,
    TradePremium,
    Wallet,
)
from store.repository import Store

__all__ = [
    "DEFAULT_URL",
    "ApiKeyRecord",
    "AuditAnchor",
    "AuditChainError",
    "AuditEntry",
    "AuditVerification",
    "DuplicateError",
    "EligibilityDecision",
    "Instrument",
    "InstrumentState",
    "InvalidRecordError",
    "KeyRole",
    "MigrationError",
    "NotFoundError",
    "OrderStatus",
    "Outcome",
    "Participant",
    "ParticipantStatus",
    "ProjectionGapError",
    "SettlementStatus",
    "SettlementUpdate",
    "Store",
    "StoreError",
    "StoreUnavailableError",
    "StoreWriter",
    "StoredOrder",
    "StoredTrade",
    "TradePremium",
    "Wallet",
    "create_db_engine",
    "migrate",
    "rebuild_from_journal",
    "sync_from_journal",
]
