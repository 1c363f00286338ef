"""The whole path: EAS attestations on chain -> the venue's watcher -> reference API, halts, resumes.

Runs on the embedded venue (in-process EVM, SQLite) and the production-like one (anvil, PostgreSQL)."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from typing import Any

import pytest

from attestation import CustodyStatement, Kind, NavStatement, Publisher, Role
from engine import InstrumentStatus
from tests.venue.conftest import RunningVenue
from venue.demo import SYMBOL
from venueclient import ApiError, VenueClient


def _client(running: RunningVenue, who: str = "inv-1") -> VenueClient:
    return VenueClient(running.url, running.keys[who]["key_id"], running.keys[who]["private_key"])


async def _until(check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.1)


async def _reference(running: RunningVenue) -> dict[str, Any]:
    client = _client(running)
    try:
        data = await client.request("GET", f"/v1/instruments/{SYMBOL}/reference")
        assert isinstance(data, dict)
        return data
    finally:
        await client.aclose()


def _publisher(running: RunningVenue) -> tuple[Publisher, str]:
    venue = running.venue
    return Publisher(venue.chain, venue.attestations.deployment), venue.deployment.token


async def test_the_reference_api_shows_nav_accrual_coverage_and_verifiable_attestations(running: RunningVenue) -> None:
    ref = await _reference(running)
    assert ref["symbol"] == SYMBOL and ref["status"] == "OPEN" and ref["halt_reason"] is None
    assert 36_000 < float(ref["nav_per_note"]) < 50_000 and ref["nav_currency"] == "USD"
    assert float(ref["accrued_btc_per_note"]) > 0 and float(ref["custody_coverage"]) >= 1
    assert ref["collar"]["below_pct"] == "20" and ref["collar"]["above_pct"] == "10"
    assert {a["kind"] for a in ref["attestations"]} == {"HASHRATE", "CUSTODY", "ACCRUAL", "NAV"}
    for a in ref["attestations"]:
        assert a["signer"] == a["attester"] and a["tx_hash"].startswith("0x") and a["block"] > 0
        assert a["recipient"] == running.venue.deployment.token and a["standing"] == "counting"
    nav = next(a for a in ref["attestations"] if a["kind"] == "NAV")  # the demo's NAV is delegated (EIP-712)
    assert nav["delegated"] and nav["signature_verifies"] and len(bytes.fromhex(nav["signature"][2:])) == 65
    assert {"nonce", "deadline", "data", "schema", "uid"} <= nav.keys()
    assert ref["freshness"]["NAV"]["stale"] is False and ref["freshness"]["CUSTODY"]["max_age_s"] == 600
    meta = ref["metadata"]
    assert meta["identifier"] and meta["tenor_months"] == 36 and meta["hashrate_ph_s_per_note"] == "1"
    assert meta["maturity_date"] and meta["issue_date"] and meta["expense_ratio_bps"] == 200


async def test_a_stale_attestation_halts_the_instrument_and_a_fresh_one_resumes_it(running: RunningVenue) -> None:
    venue = running.venue
    monitor = venue.attestations.monitor
    assert monitor is not None
    rules = monitor.rules(SYMBOL)
    assert rules is not None
    monitor.set_rules(SYMBOL, dataclasses.replace(rules, attestation_max_age_s=3))
    await _until(lambda: venue.core.l2(SYMBOL, 0).status is InstrumentStatus.HALTED)
    ref = await _reference(running)
    assert ref["status"] == "HALTED" and ref["halt_reason"] == "ATTESTATION_STALE"
    assert any(e.action == "instrument.halt" for e in venue.core.audit_log(50))
    # fresh NAV and custody attestations (a new administrator and custodian, registered by the issuer)
    monitor.set_rules(SYMBOL, dataclasses.replace(rules, attestation_max_age_s=120))
    pub, token = _publisher(running)
    custodian, administrator = await asyncio.to_thread(venue.chain.new_account), await asyncio.to_thread(
        venue.chain.new_account)
    await asyncio.to_thread(pub.set_attestor, token, custodian, Role.CUSTODIAN, admin=venue.deployment.admin)
    await asyncio.to_thread(pub.set_attestor, token, administrator, Role.ADMINISTRATOR, admin=venue.deployment.admin)
    last = venue.attestations.watcher.latest(token, Kind.CUSTODY)
    assert last is not None
    now = int(time.time())
    await asyncio.to_thread(pub.attest, token, dataclasses.replace(last.statement, as_of=now), attester=custodian)
    await asyncio.to_thread(pub.attest, token, NavStatement(as_of=now, nav_per_note_e6=45_000 * 10**6,
                                                            currency="USD"), attester=administrator)
    await _until(lambda: venue.core.l2(SYMBOL, 0).status is InstrumentStatus.OPEN)
    assert venue.auctions.uncrosses >= 1  # it reopened through a call auction
    assert any(e.action == "instrument.resume" for e in venue.core.audit_log(50))


async def test_a_custody_shortfall_halts_and_full_custody_resumes(running: RunningVenue) -> None:
    venue = running.venue
    pub, token = _publisher(running)
    custodian = await asyncio.to_thread(venue.chain.new_account)
    await asyncio.to_thread(pub.set_attestor, token, custodian, Role.CUSTODIAN, admin=venue.deployment.admin)
    last = venue.attestations.watcher.latest(token, Kind.CUSTODY)
    assert last is not None and isinstance(last.statement, CustodyStatement)
    full = last.statement.btc_balance_sats
    now = int(time.time())
    await asyncio.to_thread(pub.attest, token, CustodyStatement(as_of=now, btc_balance_sats=full * 9 // 10),
                            attester=custodian)
    await _until(lambda: venue.core.l2(SYMBOL, 0).status is InstrumentStatus.HALTED)
    ref = await _reference(running)
    assert ref["halt_reason"] == "CUSTODY_SHORTFALL" and float(ref["custody_coverage"]) < 1
    await asyncio.to_thread(pub.attest, token, CustodyStatement(as_of=now + 1, btc_balance_sats=full * 2),
                            attester=custodian)
    await _until(lambda: venue.core.l2(SYMBOL, 0).status is InstrumentStatus.OPEN)


async def test_the_operator_resumes_an_automatic_halt_with_an_audited_reason(running: RunningVenue) -> None:
    venue = running.venue
    pub, token = _publisher(running)
    custodian = await asyncio.to_thread(venue.chain.new_account)
    await asyncio.to_thread(pub.set_attestor, token, custodian, Role.CUSTODIAN, admin=venue.deployment.admin)
    last = venue.attestations.watcher.latest(token, Kind.CUSTODY)
    assert last is not None and isinstance(last.statement, CustodyStatement)
    short = CustodyStatement(as_of=int(time.time()), btc_balance_sats=last.statement.btc_balance_sats // 2)
    await asyncio.to_thread(pub.attest, token, short, attester=custodian)
    await _until(lambda: venue.core.l2(SYMBOL, 0).status is InstrumentStatus.HALTED)
    operator = _client(running, "operator")
    try:
        with pytest.raises(ApiError):
            await operator.request("POST", f"/v1/instruments/{SYMBOL}/resume", body={"reason": ""})
        answer = await operator.request("POST", f"/v1/instruments/{SYMBOL}/resume",
                                        body={"reason": "custodian confirmed the balance by phone"})
    finally:
        await operator.aclose()
    assert answer == {"symbol": SYMBOL, "result": "OK"}
    assert venue.core.l2(SYMBOL, 0).status is InstrumentStatus.CALL  # resumes through a call auction
    await _until(lambda: venue.core.l2(SYMBOL, 0).status is InstrumentStatus.OPEN)
    assert venue.auctions.uncrosses >= 1
    entry = next(e for e in venue.core.audit_log(50) if e.action == "instrument.resume")
    assert entry.actor == "operator" and "custodian confirmed" in str(entry.details)
    await asyncio.sleep(2.5)  # the monitor ran twice: the operator's decision stands on the same evidence
    assert venue.core.l2(SYMBOL, 0).status is InstrumentStatus.OPEN


async def test_an_attestation_whose_signer_was_removed_is_ignored_and_alerted(running: RunningVenue) -> None:
    venue = running.venue
    pub, token = _publisher(running)
    custodian = await asyncio.to_thread(venue.chain.new_account)
    await asyncio.to_thread(pub.set_attestor, token, custodian, Role.CUSTODIAN, admin=venue.deployment.admin)
    last = venue.attestations.watcher.latest(token, Kind.CUSTODY)
    assert last is not None and isinstance(last.statement, CustodyStatement)
    now = int(time.time())
    same = CustodyStatement(as_of=now, btc_balance_sats=last.statement.btc_balance_sats)
    await asyncio.to_thread(pub.attest, token, same, attester=custodian)
    await asyncio.to_thread(pub.set_attestor, token, custodian, Role(0), admin=venue.deployment.admin)
    monitor = venue.attestations.monitor
    assert monitor is not None
    await _until(lambda: any(a.code == "UNREGISTERED_SIGNER" for a in monitor.recent_alerts(SYMBOL)))
    ref = await _reference(running)
    assert ref["status"] == "OPEN"
    assert all(a["attester"] != custodian for a in ref["attestations"])
    assert any(a["code"] == "UNREGISTERED_SIGNER" for a in ref["alerts"])


async def test_the_readme_web3_snippet_verifies_an_attestation_exactly_as_the_api_serves_it(
    running: RunningVenue,
) -> None:
    import re
    from pathlib import Path

    from attestation import eas_abi

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme[readme.index("#### Verify an attestation yourself"):]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    ref = await _reference(running)
    att = next(a for a in ref["attestations"] if a["kind"] == "NAV")  # the JSON object, unchanged
    venue = running.venue
    scope = {"eas": venue.chain.contract(ref["eas"], eas_abi()), "att": att}
    await asyncio.to_thread(exec, compile(code.group(1), "README.md", "exec"), scope)
    assert scope["signer"] == att["attester"]
