"""The venue as the operator API sees it."""

from __future__ import annotations

from typing import Any, Protocol

from gateway.ports import OperatorPort, VenuePort


class OperatorVenue(VenuePort, OperatorPort, Protocol):
    """The venue core implements both ports in one object."""


class RegistryPort(Protocol):
    """Reference data changes (``venue.registry_api``): each validates, writes the store with an audit
    entry and applies the change to the running venue before it returns; refusals are ``ApiError``s."""

    async def revoke_key(self, key_id: str, *, operator: str) -> dict[str, Any]: ...

    async def onboard(self, body: dict[str, Any], *, operator: str) -> dict[str, Any]: ...

    async def update_participant(self, participant: str, body: dict[str, Any], *, operator: str) -> dict[str, Any]: ...

    async def offboard(self, participant: str, *, operator: str) -> dict[str, Any]: ...

    async def list_instrument(self, body: dict[str, Any], *, operator: str) -> dict[str, Any]: ...

    async def rules(self, symbol: str) -> dict[str, Any]: ...

    async def set_rules(self, symbol: str, changes: dict[str, Any], *, operator: str) -> dict[str, Any]: ...
