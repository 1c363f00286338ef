"""Exceptions of the attestation package (``code`` is stable; the tree is in ``attestation.__init__``)."""

from __future__ import annotations


class AttestationError(Exception):
    code = "attestation_error"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason


class AttestationConfigError(AttestationError):
    """Bad deployment / watcher configuration (addresses, intervals, unknown kind)."""

    code = "attestation_config"


class InvalidStatementError(AttestationError):
    """A statement that cannot be encoded (negative, out of range, empty currency) or decoded."""

    code = "invalid_statement"


class AttestationRejectedError(AttestationError):
    """The chain refused an attestation or revocation; ``reason`` is the decoded revert
    (``NotRegisteredAttestor(...)``, ``StaleAsOf(...)``, ``InvalidSignature()``, ...)."""

    code = "attestation_rejected"


class AttestationSyncError(AttestationError):
    """The watcher could not read the chain (RPC failure); the cache keeps its last state."""

    code = "attestation_sync"
