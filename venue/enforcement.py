"""Eligibility loss cancels resting orders: a participant that may no longer trade keeps nothing on
the book and no funding hold.

Triggers and how fast they act:

    chain watcher   ``on_eligibility_lost`` (``ChainWatcher.add_eligibility_listener``): a wallet frozen,
                    its identity removed, its claim revoked or unverified, the token paused. Acts in the
                    poll that sees it (the listener runs right after the poll is applied).
    sweep           ``sweep(now_ts)``, run by the venue every watcher poll interval: the gate's own
                    view of every participant and listing: suspended (operator API or the store),
                    KYC expired (the timer on ``kyc_expiry_ts``), wallet removed, category or
                    jurisdiction no longer allowed, and the on-chain conditions above (a backstop for
                    an event the watcher reported before the orders existed, e.g. after a restart).
    key revoked     ``on_keys_revoked(keys)`` from the reference data reload: when the revoked key was
                    the participant's last active trader key, nobody can manage its orders any more,
                    so they are cancelled. While another trader key remains the orders stay (they
                    belong to the participant, not to the key).

A cancel is a journaled ``MassCancel`` through the sequencer (so the gate's post-trade step releases
the holds, subscribers see ``OrderCancelled``, the store projection records it); its reason code
(the eligibility code, ``KEY_REVOKED`` for a key) is in the audit entry ``orders.cancel_ineligible``
with the number of orders cancelled. Chain-state staleness or an unknown chain state never cancels
(that is ``CHAIN_STATE_STALE`` at entry, not a loss of eligibility).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Protocol

from compliance.eligibility import EligibilityLost
from compliance.model import Participant
from engine import Command, MassCancel, OrderCancelled, OrderView, Result, ResultCode
from market.codes import GateCode
from market.model import ApiKey, Listing, Role

log = logging.getLogger(__name__)

KEY_REVOKED = "KEY_REVOKED"

# Gate codes that mean "this participant may not trade this listing" (not "the venue does not know").
LOSS_CODES: frozenset[str] = frozenset({
    GateCode.PARTICIPANT_SUSPENDED, GateCode.NO_WALLET, GateCode.KYC_EXPIRED, GateCode.CATEGORY_NOT_ALLOWED,
    GateCode.JURISDICTION_BLOCKED, GateCode.JURISDICTION_NOT_ALLOWED, GateCode.TOKEN_PAUSED,
    GateCode.IDENTITY_NOT_VERIFIED, GateCode.COUNTRY_MISMATCH, GateCode.WALLET_FROZEN,
})


class CommandQueue(Protocol):
    def enqueue(self, cmd: Command) -> tuple[int, Command, asyncio.Future[Result]]: ...


class OpenOrders(Protocol):
    def open_orders(self, participant: str, symbol: str | None = None) -> list[OrderView]: ...


class EligibilityView(Protocol):
    def participants(self) -> list[Participant]: ...

    def symbols(self) -> list[str]: ...

    def eligibility_failure(self, participant: str, symbol: str, now_ts: int) -> tuple[object, str] | None: ...


class Parties(Protocol):
    def listings(self) -> list[Listing]: ...

    def participant_ids(self) -> list[str]: ...

    def wallet_of(self, participant: str) -> str | None: ...

    def keys_of(self, participant: str) -> list[ApiKey]: ...


class Alerts(Protocol):
    def audit(self, actor: str, action: str, details: Mapping[str, object]) -> None: ...


class EligibilityEnforcer:
    def __init__(
        self,
        *,
        sequencer: CommandQueue,
        orders: OpenOrders,
        gate: EligibilityView,
        parties: Parties,
        audit: Alerts | None = None,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self._sequencer = sequencer
        self._orders = orders
        self._gate = gate
        self._parties = parties
        self._audit = audit
        self._clock = clock
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: set[tuple[str, str | None]] = set()  # (participant, symbol) with a cancel in flight
        self.cancels = 0  # mass cancels issued (for operators and tests)

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """The loop the sequencer runs on; events reported on other threads are handed to it."""
        self._loop = loop

    # ------------------------------------------------------------ triggers

    def on_eligibility_lost(self, event: EligibilityLost) -> None:
        """Watcher listener (any thread)."""
        loop = self._loop
        if loop is None:
            self._on_lost(event)
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._on_lost(event)
        else:
            loop.call_soon_threadsafe(self._on_lost, event)

    def sweep(self, now_ts: int | None = None) -> int:
        """Cancel the resting orders of every (participant, listing) the gate now refuses for a loss
        of eligibility; returns the number of mass cancels issued. Cheap: only participants the gate
        refuses are looked up in the book."""
        now = self._clock() if now_ts is None else now_ts
        issued = 0
        symbols = self._gate.symbols()
        for p in self._gate.participants():
            for symbol in symbols:
                failure = self._gate.eligibility_failure(p.id, symbol, now)
                if failure is None or str(failure[0]) not in LOSS_CODES:
                    continue
                issued += self._cancel(p.id, symbol, str(failure[0]), {"message": failure[1]})
        return issued

    def on_keys_revoked(self, keys: Iterable[ApiKey]) -> int:
        """Keys the reference data just dropped (revoked or deleted in the store)."""
        issued = 0
        for participant in sorted({k.participant for k in keys if k.role is Role.TRADER}):
            if any(k.role is Role.TRADER for k in self._parties.keys_of(participant)):
                continue  # another trader key can still manage the orders
            issued += self._cancel(participant, None, KEY_REVOKED, {"keys": sorted(
                k.key_id for k in keys if k.participant == participant)})
        return issued

    # ------------------------------------------------------------ cancelling

    def _on_lost(self, event: EligibilityLost) -> None:
        token = event.token.lower()
        symbols = [x.symbol for x in self._parties.listings() if x.token_address.lower() == token]
        owners = [p for p in self._parties.participant_ids()
                  if (self._parties.wallet_of(p) or "").lower() == event.wallet.lower()]
        for participant in owners:
            for symbol in symbols:
                self._cancel(participant, symbol, str(event.reason), {"block": event.block, "wallet": event.wallet})

    def _cancel(self, participant: str, symbol: str | None, reason: str, details: dict[str, object]) -> int:
        key = (participant, symbol)
        if key in self._pending or not self._orders.open_orders(participant, symbol):
            return 0
        try:
            _, _, future = self._sequencer.enqueue(MassCancel(ts=0, participant=participant, symbol=symbol))
        except Exception:  # a stopped sequencer: nothing can rest or match any more
            log.exception("cannot cancel the orders of %s (%s)", participant, reason)
            return 0
        self._pending.add(key)
        self.cancels += 1

        def done(f: asyncio.Future[Result]) -> None:
            self._pending.discard(key)
            if f.cancelled() or f.exception() is not None:
                log.error("cancel of %s's orders (%s) failed: %r", participant, reason,
                          None if f.cancelled() else f.exception())
                return
            result = f.result()
            cancelled = sum(isinstance(e, OrderCancelled) for e in result.events)
            if self._audit is not None:
                self._audit.audit("venue", "orders.cancel_ineligible", {
                    "participant": participant, "symbol": symbol, "reason": reason, "cancelled": cancelled,
                    "result": result.code.name if result.code is not ResultCode.OK else "OK", **details})

        future.add_done_callback(done)
        return 1
