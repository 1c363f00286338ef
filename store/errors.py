"""Exceptions of the store package (the tree is drawn in ``store/__init__``)."""


class StoreError(Exception):
    """Root of every error raised by ``store``."""


class StoreUnavailableError(StoreError):
    """The database cannot be reached or refused the operation (translated DBAPI error)."""


class DuplicateError(StoreError):
    """A row with the same key already exists."""


class NotFoundError(StoreError):
    """The row an update refers to does not exist."""


class InvalidRecordError(StoreError):
    """A value is outside what the schema allows (bad status, role, key length...)."""


class AuditChainError(StoreError):
    """The audit chain could not be extended (concurrent writers kept colliding)."""


class ProjectionGapError(StoreError):
    """Commands arrived beyond the projection's position: catch up from the journal first."""


class MigrationError(StoreError):
    """Alembic could not bring the schema to the head revision."""
