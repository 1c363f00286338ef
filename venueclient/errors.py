"""Exceptions of the client package (tree drawn in ``venueclient/__init__``)."""

from __future__ import annotations


class VenueClientError(Exception):
    """Root of every error this package raises."""


class KeyFormatError(VenueClientError, ValueError):
    """A key is not a raw 32-byte Ed25519 key (or its hex form)."""


class ApiError(VenueClientError):
    """The venue answered with an error: stable ``code``, human ``message``, HTTP-like ``status``."""

    def __init__(self, code: str, message: str, *, status: int, retry_after: float | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.retry_after = retry_after


class TransportError(VenueClientError):
    """The connection to the venue failed (translated from httpx / websockets errors)."""


class BookGapError(VenueClientError):
    """A book delta does not follow the last applied one; the local book must resync."""
