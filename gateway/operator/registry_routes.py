"""Operator routes that change reference data: API keys, participants, listings and their rules.

The same operations as the ``venue`` CLI (``venue.registry``): validated with the same codes,
written to the store with an audit entry, and in force in the running venue when the reply comes
(a revoked key's websocket sessions are closed, an offboarded participant's orders cancelled).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import Field

from gateway.operator.context import Ctx, OperatorName, ParticipantPath, SymbolPath
from gateway.schemas import ErrorResponse, Strict

_DESCRIBED = {400: "invalid input (INVALID_JURISDICTION, INVALID_WALLET, INVALID_CATEGORY, INVALID_LISTING_RULE, "
                   "INVALID_NUMBER, INVALID_BAND, INVALID_SIZE, ...)",
              401: "no valid signature or console session", 403: "not an operator key (FORBIDDEN)",
              404: "UNKNOWN_PARTICIPANT, UNKNOWN_INSTRUMENT or KEY_NOT_FOUND",
              409: "PARTICIPANT_EXISTS, WALLET_IN_USE", 422: "refused (PARTICIPANT_CLOSED, INSTRUMENT_EXISTS)",
              503: "STORE_UNAVAILABLE"}
router = APIRouter(responses={s: {"model": ErrorResponse, "description": d} for s, d in _DESCRIBED.items()})

KeyPath = Annotated[str, Path(min_length=1, max_length=64)]


class Registered(Strict):
    """The record as stored after the change."""

    record: dict[str, Any]


class OnboardBody(Strict):
    participant: str = Field(min_length=1, max_length=64)
    name: str | None = Field(default=None, max_length=200)
    category: str = Field(default="MIFID_PROFESSIONAL", max_length=32)
    jurisdiction: str = Field(max_length=8)
    kyc_days: int = 365
    wallet: str | None = Field(default=None, max_length=64)


class ParticipantChanges(Strict):
    category: str | None = Field(default=None, max_length=32)
    jurisdiction: str | None = Field(default=None, max_length=8)
    kyc_days: int | None = None
    status: str | None = Field(default=None, max_length=16)  # active | suspended
    wallet: str | None = Field(default=None, max_length=64)


class ListingBody(Strict):
    symbol: str = Field(min_length=1, max_length=32)
    name: str = Field(min_length=1, max_length=200)
    token: str = Field(max_length=64)
    cash_token: str = Field(max_length=64)
    token_decimals: int = 0
    cash_decimals: int = 6
    tick: str = Field(default="0.01", max_length=40)
    lot: str = Field(default="1", max_length=40)
    min_qty: int = 1
    max_qty: int = 1_000
    band_low: str = Field(max_length=40)
    band_high: str = Field(max_length=40)
    rules: dict[str, Any] = Field(default_factory=dict)


class RulesBody(Strict):
    rules: dict[str, Any]


@router.post("/keys/{key_id}/revoke", response_model=Registered)
async def revoke_key(ctx: Ctx, name: OperatorName, key_id: KeyPath) -> Registered:
    """Revoke an API key: refused at once, its websocket sessions closed (4010 KEY_REVOKED)."""
    return Registered(record=await ctx.registry.revoke_key(key_id, operator=name))


@router.post("/participants", response_model=Registered)
async def onboard(ctx: Ctx, name: OperatorName, body: OnboardBody) -> Registered:
    """Onboard a participant (and its wallet) in one transaction."""
    return Registered(record=await ctx.registry.onboard(body.model_dump(), operator=name))


@router.patch("/participants/{participant}", response_model=Registered)
async def update_participant(ctx: Ctx, name: OperatorName, participant: ParticipantPath,
                             body: ParticipantChanges) -> Registered:
    return Registered(record=await ctx.registry.update_participant(
        participant, body.model_dump(exclude_none=True), operator=name))


@router.post("/participants/{participant}/offboard", response_model=Registered)
async def offboard(ctx: Ctx, name: OperatorName, participant: ParticipantPath) -> Registered:
    """Close a participant: keys revoked, open orders cancelled."""
    return Registered(record=await ctx.registry.offboard(participant, operator=name))


@router.post("/instruments", response_model=Registered)
async def list_instrument(ctx: Ctx, name: OperatorName, body: ListingBody) -> Registered:
    """List an instrument with its rules (opened for trading at once)."""
    return Registered(record=await ctx.registry.list_instrument(body.model_dump(), operator=name))


@router.get("/instruments/{symbol}/rules", response_model=Registered)
async def rules(ctx: Ctx, _: OperatorName, symbol: SymbolPath) -> Registered:
    return Registered(record=await ctx.registry.rules(symbol))


@router.patch("/instruments/{symbol}/rules", response_model=Registered)
async def set_rules(ctx: Ctx, name: OperatorName, symbol: SymbolPath, body: RulesBody) -> Registered:
    """Change some listing rules (the others keep their values); in force when this returns."""
    return Registered(record=await ctx.registry.set_rules(symbol, body.rules, operator=name))
