"""The operator API's reference data changes (``gateway.operator.RegistryPort``) on ``venue.registry``:
each runs the registry function in a worker thread (the store is synchronous), then applies the
store to the running venue at once (``ReferenceRefresh.refresh_now``). Offboarding also cancels the
participant's open orders; revoked keys' websocket sessions are closed by ``close_revoked_sessions``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import store as store_pkg
from engine import MassCancel, OrderCancelled
from gateway.errors import ApiError
from gateway.sessions import close_sessions_of
from gateway.state import GatewayState
from market.model import ApiKey
from venue import registry
from venue.listings import rules_to_dict
from venue.operations import CommandSink
from venue.refresh import ReferenceRefresh

log = logging.getLogger(__name__)


class RegistryService:
    def __init__(self, store: store_pkg.Store, refresh: ReferenceRefresh, sequencer: CommandSink) -> None:
        self._store = store
        self._refresh = refresh
        self._sequencer = sequencer

    async def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            result = await asyncio.to_thread(fn, self._store, *args, **kwargs)
        except registry.RegistryError as exc:
            raise ApiError(exc.code, str(exc)) from exc
        await self._refresh.refresh_now()
        return result

    async def revoke_key(self, key_id: str, *, operator: str) -> dict[str, Any]:
        record = await self._call(registry.revoke_key, key_id, actor=operator)
        return {"key_id": record.key_id, "participant": record.participant, "revoked_ts": record.revoked_ts}

    async def onboard(self, body: dict[str, Any], *, operator: str) -> dict[str, Any]:
        p = await self._call(registry.onboard, participant=body["participant"], name=body.get("name") or "",
                             investor_category=body["category"], country=body["jurisdiction"],
                             kyc_days=body["kyc_days"], wallet_address=body.get("wallet"), actor=operator)
        return _participant(p, body.get("wallet"))

    async def update_participant(self, participant: str, body: dict[str, Any], *, operator: str) -> dict[str, Any]:
        p = await self._call(registry.update, participant, actor=operator, investor_category=body.get("category"),
                             country=body.get("jurisdiction"), kyc_days=body.get("kyc_days"),
                             status=body.get("status"), wallet_address=body.get("wallet"))
        if p.status is not store_pkg.ParticipantStatus.ACTIVE:
            await self._cancel_orders(participant, "PARTICIPANT_SUSPENDED", operator)
        return _participant(p, None)

    async def offboard(self, participant: str, *, operator: str) -> dict[str, Any]:
        revoked = await self._call(registry.offboard, participant, actor=operator)
        cancelled = await self._cancel_orders(participant, "PARTICIPANT_OFFBOARDED", operator)
        return {"participant": participant, "status": "closed", "keys_revoked": revoked, "orders_cancelled": cancelled}

    async def list_instrument(self, body: dict[str, Any], *, operator: str) -> dict[str, Any]:
        rules = await self._call(
            registry.list_instrument, body["symbol"], name=body["name"], token=body["token"],
            cash_token=body["cash_token"], token_decimals=body["token_decimals"],
            cash_decimals=body["cash_decimals"], tick=body["tick"], lot=body["lot"], min_qty=body["min_qty"],
            max_qty=body["max_qty"], band=(body["band_low"], body["band_high"]), rules=body["rules"], actor=operator)
        return {"symbol": body["symbol"], "rules": rules_to_dict(rules)}

    async def rules(self, symbol: str) -> dict[str, Any]:
        try:
            rules = await asyncio.to_thread(registry.stored_rules, self._store, symbol)
        except registry.RegistryError as exc:
            raise ApiError(exc.code, str(exc)) from exc
        return {"symbol": symbol, "rules": rules_to_dict(rules)}

    async def set_rules(self, symbol: str, changes: dict[str, Any], *, operator: str) -> dict[str, Any]:
        rules = await self._call(registry.set_rules, symbol, changes, actor=operator)
        return {"symbol": symbol, "rules": rules_to_dict(rules)}

    async def _cancel_orders(self, participant: str, reason: str, operator: str) -> int:
        result = await self._sequencer.submit(MassCancel(ts=0, participant=participant))
        cancelled = sum(isinstance(e, OrderCancelled) for e in result.events)
        if cancelled:
            await asyncio.to_thread(self._store.append_audit, operator, "orders.cancel_ineligible", {
                "participant": participant, "symbol": None, "reason": reason, "cancelled": cancelled})
            log.info("%d open orders of %s cancelled (%s)", cancelled, participant, reason)
        return cancelled


def _participant(p: store_pkg.Participant, wallet: str | None) -> dict[str, Any]:
    return {"participant": p.id, "name": p.name, "status": p.status.value, "category": p.investor_category,
            "jurisdiction": p.jurisdiction, "kyc_expiry": p.kyc_expiry.isoformat() if p.kyc_expiry else None,
            **({"wallet": wallet.lower()} if wallet else {})}


def close_revoked_sessions(state: GatewayState, then: Callable[[list[ApiKey]], object] | None
                           ) -> Callable[[list[ApiKey]], None]:
    """A ``ReferenceData.on_keys_revoked`` that closes the keys' websocket sessions, then calls ``then``
    (the eligibility enforcer: orders of a participant left without a trader key are cancelled)."""

    def on_revoked(keys: list[ApiKey]) -> None:
        closed = close_sessions_of(state, [k.key_id for k in keys])
        log.info("API keys no longer active: %s (%d websocket sessions closed)",
                 ", ".join(k.key_id for k in keys), closed)
        if then is not None:
            then(keys)

    return on_revoked
