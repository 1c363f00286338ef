"""Attestations in the running venue: deployment, the watcher, the reference monitor, the API view.

    Attestations.open(chain, config, deployer, fresh)  EAS + resolver: the deployment file when it is
        on this chain; else against a real chain the resolver next to ``config.eas_address``; on dev
        chains (in-process, anvil) EAS, SchemaRegistry and the resolver are deployed (demo deployment)
    .attach(core, engine, sequencer, audit)  builds the ReferenceMonitor, hooks the NAV collar into the
        pipeline (``price_check``) and the premium stamp into the event fan-out
    .start(stop) -> tasks                    watcher poll loop + monitor loop (stop with the venue)
    .reference_view(symbol) / .trade_extras(fill) / .resume(...)  the ``gateway.reference`` port
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Mapping
from decimal import Decimal
from fractions import Fraction
from typing import Any

from attestation import (
    AttestationDeployment,
    AttestationError,
    AttestationRecord,
    AttestationWatcher,
    IgnoredAttestation,
    Kind,
    deploy_attestation,
    deploy_resolver,
)
from engine import Fill, InstrumentStatus
from market.model import AuditEntry
from settlement.chain import Chain
from store import TradePremium
from venue.boot import StartupError
from venue.config import VenueConfig
from venue.listings import ListingRules
from venue.pipeline import OrderPipeline
from venue.refprice import Enqueue, Orders, ReferenceMonitor, Venue, premium_bps

JSON = dict[str, Any]
DEV_CHAIN_IDS = frozenset({31337, 1337})  # anvil / hardhat / ganache by URL: the demo EAS is deployed there


def open_deployment(chain: Chain, config: VenueConfig, deployer: str, *, fresh: bool = False) -> AttestationDeployment:
    path = config.attestation_path
    if path.exists() and not fresh:
        dep = AttestationDeployment.load(path)
        if chain.w3.eth.get_code(chain.w3.to_checksum_address(dep.resolver)):
            return dep
    try:
        if config.eas_address:
            dep = deploy_resolver(chain, deployer, config.eas_address)
        elif config.chain in ("inprocess", "anvil") or int(chain.w3.eth.chain_id) in DEV_CHAIN_IDS:
            dep = deploy_attestation(chain, deployer)
        else:
            raise StartupError("a real chain needs eas_address (VENUE_EAS_ADDRESS) or an attestation_file")
    except AttestationError as exc:
        raise StartupError(f"cannot deploy the attestation resolver: {exc}") from exc
    dep.save(path)
    return dep


def _dec(value: Decimal | Fraction | None, places: int = 8) -> str | None:
    if value is None:
        return None
    if isinstance(value, Fraction):
        value = Decimal(value.numerator) / Decimal(value.denominator)
    return format(value.quantize(Decimal(1).scaleb(-places)).normalize(), "f")


def attestation_json(record: AttestationRecord, watcher: AttestationWatcher, now: float) -> JSON:
    statement = {k: (str(v) if isinstance(v, Decimal) else v) for k, v in
                 ((n, getattr(record.statement, n)) for n in record.statement.__dataclass_fields__)}
    out: JSON = {
        "kind": record.kind.name, "uid": "0x" + record.uid.hex(), "schema": "0x" + record.schema.hex(),
        "recipient": record.series, "attester": record.attester, "signer": record.attester,
        "as_of": record.as_of, "age_s": int(now) - record.as_of, "statement": statement,
        "time": record.time, "tx_hash": record.tx_hash, "block": record.block_number,
        "standing": watcher.standing(record, now=now).value, "delegated": record.delegation is not None,
        "signature": None, "nonce": None, "deadline": None, "data": None, "eip712_domain": None,
    }
    if record.delegation is not None:
        proof = record.delegation
        sig = proof.signature
        out.update({
            "signature": "0x" + sig.r.hex() + sig.s.hex() + f"{sig.v:02x}", "nonce": proof.request.nonce,
            "deadline": proof.request.deadline, "data": "0x" + proof.request.data.hex(),
            "signature_verifies": proof.verifies(),
            "eip712_domain": {"name": proof.domain.name, "version": proof.domain.version,
                              "chain_id": proof.domain.chain_id,
                              "verifying_contract": proof.domain.verifying_contract},
        })
    return out


class Attestations:
    """The venue's attestation part (one per venue process)."""

    def __init__(self, chain: Chain, deployment: AttestationDeployment, *, poll_interval_s: float = 0.5) -> None:
        self.chain = chain
        self.deployment = deployment
        self.watcher = AttestationWatcher(chain.w3, deployment, poll_interval_s=poll_interval_s,
                                          on_ignored=self._ignored)
        self.monitor: ReferenceMonitor | None = None
        self._pending_ignored: list[IgnoredAttestation] = []

    @classmethod
    def open(cls, chain: Chain, config: VenueConfig, deployer: str, *, fresh: bool = False) -> Attestations:
        return cls(chain, open_deployment(chain, config, deployer, fresh=fresh))

    def attach(self, venue: Venue, *, pipeline: OrderPipeline, orders: Orders, sequencer: Enqueue,
               audit: Callable[[str, str, Mapping[str, object]], None],
               history: Callable[[int], list[AuditEntry]] | None = None) -> ReferenceMonitor:
        """Build the monitor; the NAV collar goes into the pipeline's gate, and the premium stamp
        sees every event before the gateway's fan-out (it subscribes first)."""
        self.monitor = ReferenceMonitor(self.watcher, venue=venue, orders=orders, sequencer=sequencer, audit=audit)
        pipeline.price_check = self.monitor.check
        pipeline.events.add(self.monitor.on_event)
        if history is not None:  # a restart: the monitor's own halts are its halts again
            self.monitor.restore(history(5_000))
        for ignored in self._pending_ignored:
            self.monitor.on_ignored(ignored)
        self._pending_ignored.clear()
        return self.monitor

    def _ignored(self, ignored: IgnoredAttestation) -> None:
        if self.monitor is None:
            self._pending_ignored.append(ignored)
        else:
            self.monitor.on_ignored(ignored)

    def set_rules(self, symbol: str, rules: ListingRules) -> None:
        assert self.monitor is not None
        self.monitor.set_rules(symbol, rules)

    def start(self, stop: asyncio.Event) -> list[asyncio.Task[None]]:
        assert self.monitor is not None
        return [asyncio.create_task(self.watcher.run(stop), name="attestation-watcher"),
                asyncio.create_task(self.monitor.run(stop), name="reference-monitor")]

    # ------------------------------------------------------------ the gateway.reference port

    def subscribe_reference(self, listener: Callable[[str], None]) -> Callable[[], None]:
        assert self.monitor is not None
        return self.monitor.subscribe(listener)

    def trade_extras(self, fill: Fill) -> JSON:
        m = self.monitor
        nav = m.nav(fill.symbol) if m is not None else None
        listing = m.listing(fill.symbol) if m is not None else None
        if m is None or nav is None or listing is None:
            return {}
        stamped = m.premium_of(fill)  # the trade's own stamp (REST, store): the same number everywhere
        return {"nav": _dec(nav * listing.spec.tick_size / 10**listing.cash_decimals, 6),
                "premium": _dec(m.premium(fill.trade_id), 6), "premium_bps": None if stamped is None else stamped[1]}

    def premium_stamp(self, record: Callable[[TradePremium], None]) -> Callable[[Fill], int | None]:
        """The trade book's ``stamp``: each new trade's premium in bps, also handed to ``record`` (the
        store) with the NAV in force, in price units."""
        def stamp(fill: Fill) -> int | None:
            m = self.monitor
            found = m.premium_of(fill) if m is not None else None
            listing = m.listing(fill.symbol) if m is not None else None
            if found is None or listing is None:
                return None
            nav, bps = found
            per_note = nav * Fraction(listing.spec.tick_size, 10**listing.cash_decimals) / Fraction(
                listing.spec.lot_size, 10**listing.token_decimals)
            record(TradePremium(trade_id=fill.trade_id, premium_bps=bps, nav=_dec(per_note, 6) or "0"))
            return bps

        return stamp

    async def resume(self, symbol: str, *, operator: str, reason: str) -> str:
        assert self.monitor is not None
        outcome = await self.monitor.resume(symbol, operator=operator, reason=reason)
        if outcome is None or outcome.result is None:
            return "RESUME_REASON_REQUIRED"
        return outcome.result.code.name

    def reference_view(self, symbol: str) -> JSON | None:
        m = self.monitor
        if m is None:
            return None
        listing = m.listing(symbol)
        if listing is None:
            return None
        now = m.now()
        ref = m.reference(symbol)
        assert ref is not None
        rules = m.rules(symbol) or ListingRules()
        step = Fraction(listing.spec.tick_size, 10**listing.cash_decimals)
        nav = m.nav(symbol)
        collar = m.collar(symbol)
        status = m.status(symbol)
        halt = m.auto_halts.get(symbol)
        freshness = {}
        for kind in Kind:
            age = ref.ages_s.get(kind)
            limit = rules.attestation_max_age_s
            freshness[kind.name] = {"age_s": age, "max_age_s": limit if kind in (Kind.NAV, Kind.CUSTODY) else None,
                                    "stale": age is None or (limit is not None and age > limit)}
        return {
            "symbol": symbol, "series": listing.token_address, "status": status.name,
            "halt_reason": halt.code if halt is not None and status is InstrumentStatus.HALTED else None,
            "halt_message": halt.message if halt is not None and status is InstrumentStatus.HALTED else None,
            "matured": symbol in m.matured,
            "nav_per_note": _dec(ref.nav_per_note, 6), "nav_currency": ref.nav_currency,
            "nav_in_force": _dec(nav * step, 6) if nav is not None else None,
            "accrued_btc_per_note": _dec(ref.accrued_btc_per_note), "custody_btc": _dec(ref.custody_btc),
            "custody_coverage": _dec(ref.custody_coverage, 6), "notes_outstanding": _dec(ref.notes_outstanding, 6),
            "realised_ph_s": _dec(ref.realised_ph_s, 3), "uptime_bps": ref.uptime_bps,
            "collar": None if collar is None else {
                "low": _dec(collar.low * step, 6), "high": _dec(collar.high * step, 6),
                "below_pct": str(collar.below_pct), "above_pct": str(collar.above_pct)},
            "mid_premium": _dec(mid := m.mid_premium(symbol), 6),
            "mid_premium_bps": None if mid is None else premium_bps(mid),
            "freshness": freshness,
            "attestations": [attestation_json(r, self.watcher, now) for _, r in sorted(ref.latest.items())],
            "alerts": [{"ts": a.ts, "code": a.code, "message": a.message} for a in m.recent_alerts(symbol, 20)],
            "metadata": metadata(listing.maturity_ts, rules),
            "eas": self.deployment.eas, "resolver": self.deployment.resolver, "head": ref.head,
        }


def metadata(maturity_ts: int | None, rules: ListingRules) -> JSON:
    maturity = rules.maturity_date
    if maturity is None and maturity_ts is not None:
        maturity = dt.datetime.fromtimestamp(maturity_ts / 1e9, tz=dt.UTC).date().isoformat()
    trading_end = (None if rules.trading_end_ts is None
                   else dt.datetime.fromtimestamp(rules.trading_end_ts / 1e9, tz=dt.UTC).isoformat())
    return {"identifier": rules.identifier, "hashrate_ph_s_per_note": rules.hashrate_ph_s_per_note,
            "tenor_months": rules.tenor_months, "issue_date": rules.issue_date, "maturity_date": maturity,
            "expense_ratio_bps": rules.expense_ratio_bps, "settlement_asset": rules.settlement_asset,
            "trading_end": trading_end}
