"""Exception tree of the settlement package (drawn in ``settlement/__init__``)."""

from __future__ import annotations


class SettlementError(Exception):
    """Root of every error raised by ``settlement``. ``code`` is stable, the message is for humans."""

    code = "SETTLEMENT_ERROR"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ArtifactError(SettlementError):
    """A contract artifact is missing, unreadable, or does not match its Solidity source."""

    code = "ARTIFACT_ERROR"


class ChainError(SettlementError):
    """The chain backend failed (node would not start, RPC error, timeout)."""

    code = "CHAIN_ERROR"


class ChainUnavailableError(ChainError):
    """The node cannot be reached or could not be started."""

    code = "CHAIN_UNAVAILABLE"


class TransactionRevertedError(ChainError):
    """A transaction or call reverted; ``reason`` is the decoded revert reason."""

    code = "TRANSACTION_REVERTED"

    def __init__(self, message: str, *, reason: str, tx_hash: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.tx_hash = tx_hash


class TransactionTimeoutError(ChainError):
    """No receipt (or not enough confirmations) within the allowed time."""

    code = "TRANSACTION_TIMEOUT"


class ChainReorgError(ChainError):
    """A block holding a settlement transaction left the canonical chain before it was final."""

    code = "CHAIN_REORG"


class UnknownAccountError(SettlementError):
    """No private key is known for the address (only dev accounts and given keys have one)."""

    code = "UNKNOWN_ACCOUNT"


class InvalidAddressError(SettlementError):
    """A value given as an EVM address is not one."""

    code = "INVALID_ADDRESS"


class InvalidTradeError(SettlementError):
    """A trade handed to the settlement service is malformed (bad address, non-positive amount...)."""

    code = "INVALID_TRADE"


class DeploymentError(SettlementError):
    """Deployment or its configuration file is invalid."""

    code = "DEPLOYMENT_ERROR"
