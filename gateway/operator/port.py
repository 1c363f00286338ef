"""The venue as the operator API sees it."""

from __future__ import annotations

from typing import Protocol

from gateway.ports import OperatorPort, VenuePort


class OperatorVenue(VenuePort, OperatorPort, Protocol):
    """The venue core implements both ports in one object."""
