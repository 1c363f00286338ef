"""Exception tree of the settlement package (drawn in ``settlement/__init__``)."""

from __future__ import annotations


class SettlementError(Exception):
    """Root of every error raised by ``settlement``. ``code`` is stable, the message is for humans."""

    code = "settlement_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ArtifactError(SettlementError):
    """A contract artifact is missing, unreadable, or does not match its Solidity source."""

    code = "artifact_error"


class ChainError(SettlementError):
    """The chain backend failed (node would not start, RPC error, timeout)."""

    code = "chain_error"


class ChainUnavailableError(ChainError):
    """The node cannot be reached or could not be started."""

    code = "chain_unavailable"


class TransactionRevertedError(ChainError):
    """A transaction or call reverted; ``reason`` is the decoded revert reason."""

    code = "transaction_reverted"

    def __init__(self, message: str, *, reason: str, tx_hash: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.tx_hash = tx_hash


class TransactionTimeoutError(ChainError):
    """No receipt (or not enough confirmations) within the allowed time."""

    code = "transaction_timeout"


class UnknownAccountError(SettlementError):
    """No private key is known for the address (only dev accounts and given keys have one)."""

    code = "unknown_account"


class InvalidAddressError(SettlementError):
    """A value given as an EVM address is not one."""

    code = "invalid_address"


class InvalidTradeError(SettlementError):
    """A trade handed to the settlement service is malformed (bad address, non-positive amount...)."""

    code = "invalid_trade"


class DeploymentError(SettlementError):
    """Deployment or its configuration file is invalid."""

    code = "deployment_error"
