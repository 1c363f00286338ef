"""Exceptions of the compliance package (the tree is drawn in ``compliance/__init__``).

Expected rejections are never exceptions: they are ``Decision`` objects with a ``ReasonCode``.
Exceptions mean bad configuration, misuse of the API, or a chain we cannot read.
"""

from __future__ import annotations


class ComplianceError(Exception):
    """Root of every exception raised by ``compliance``."""


class ConfigError(ComplianceError, ValueError):
    """Invalid participant record, instrument rules or constructor argument."""


class UnknownHoldError(ComplianceError, KeyError):
    """A ``Hold`` that this gatekeeper never issued, or one already released/bound elsewhere."""


class ChainSyncError(ComplianceError):
    """The chain could not be read (RPC, decoding); the web3 error is chained as ``__cause__``."""


class InvariantError(ComplianceError):
    """Reservation bookkeeping is inconsistent (raised by ``Gatekeeper.validate()``): a bug."""
