"""Demo attestors: a custodian, an administrator and a facility registered for a series, publishing
the four statements of ``attestation.model`` on a schedule (what ``venue demo`` runs).

The facility and the custodian attest directly; the administrator signs its Accrual and NAV statements
(EIP-712) and a separate submitter account sends them, so the demo shows both paths.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from decimal import Decimal

from attestation.errors import AttestationError
from attestation.model import ProductionModel, demo_statements
from attestation.publish import Published, Publisher
from attestation.schemas import Role
from settlement import Chain, SettlementError
from settlement.chain import to_address

log = logging.getLogger(__name__)

_SUPPLY_ABI = [{"name": "totalSupply", "type": "function", "stateMutability": "view", "inputs": [],
                "outputs": [{"name": "", "type": "uint256"}]}]


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoAttestors:
    custodian: str
    administrator: str
    facility: str
    submitter: str


def register_demo_attestors(publisher: Publisher, series: str, *, issuer: str) -> DemoAttestors:
    """Create and fund three attestor accounts plus a submitter, and register them for ``series``
    (``issuer`` is the token's owner)."""
    chain = publisher.chain
    who = DemoAttestors(custodian=chain.new_account(), administrator=chain.new_account(),
                        facility=chain.new_account(), submitter=chain.new_account())
    publisher.set_attestor(series, who.custodian, Role.CUSTODIAN, admin=issuer)
    publisher.set_attestor(series, who.administrator, Role.ADMINISTRATOR, admin=issuer)
    publisher.set_attestor(series, who.facility, Role.FACILITY, admin=issuer)
    return who


class DemoAttestor:
    """Publishes the model's statements for one series; ``publish(t)`` once, ``run`` on a schedule."""

    def __init__(
        self,
        publisher: Publisher,
        series: str,
        attestors: DemoAttestors,
        model: ProductionModel,
        *,
        issued_at: int,
        maturity: int,
        btc_price: Callable[[int], Decimal],
        period_s: int = 3_600,
        currency: str = "USD",
        custody_coverage_bps: Callable[[int], int] = lambda _t: 10_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.publisher = publisher
        self.series = to_address(series)
        self.attestors = attestors
        self.model = model
        self.issued_at = issued_at
        self.maturity = maturity
        self.btc_price = btc_price
        self.period_s = period_s
        self.currency = currency
        self.custody_coverage_bps = custody_coverage_bps
        self._clock = clock
        self.published = 0
        self.last_error: str | None = None

    @property
    def chain(self) -> Chain:
        return self.publisher.chain

    def notes_outstanding(self) -> int:
        token = self.chain.contract(self.series, _SUPPLY_ABI)
        return int(token.functions.totalSupply().call())

    def publish(self, t: int) -> list[Published]:
        """Publish Hashrate, Custody, Accrual and NAV as of ``t`` (blocking; four transactions)."""
        s = demo_statements(
            self.model, notes=self.notes_outstanding(), issued_at=self.issued_at, maturity=self.maturity, t=t,
            period_s=self.period_s, btc_price=self.btc_price(t), currency=self.currency,
            custody_coverage_bps=self.custody_coverage_bps(t),
        )
        pub, who = self.publisher, self.attestors
        admin_key = self.chain.private_key(who.administrator)
        out = [
            pub.attest(self.series, s.hashrate, attester=who.facility),
            pub.attest(self.series, s.custody, attester=who.custodian),
            pub.submit(pub.sign(self.series, s.accrual, private_key=admin_key), submitter=who.submitter),
            pub.submit(pub.sign(self.series, s.nav, private_key=admin_key), submitter=who.submitter),
        ]
        self.published += len(out)
        return out

    async def run(self, stop: asyncio.Event, *, interval_s: float = 30.0) -> None:
        """Publish now and every ``interval_s`` until ``stop`` (chain calls in a worker thread); a
        refusal or node error is logged and retried at the next tick."""
        while not stop.is_set():
            try:
                await asyncio.to_thread(self.publish, int(self._clock()))
                self.last_error = None
            except (AttestationError, SettlementError) as exc:
                self.last_error = str(exc)
                log.warning("demo attestor: %s", exc)
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval_s)
