"""The watcher keeps the latest counting attestation per series and kind with its signer, tx and
block, derives accrued BTC, custody coverage and NAV, drops revoked ones and ignores (and reports)
attestations whose signer is no longer registered."""

from __future__ import annotations

from decimal import Decimal

import pytest

from attestation import (
    AccrualStatement,
    AttestationConfigError,
    AttestationWatcher,
    CustodyStatement,
    HashrateStatement,
    IgnoredAttestation,
    Kind,
    NavStatement,
    Role,
    Standing,
)
from tests.attestation.conftest import Notes

NOTES = 1_000


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def watcher(notes: Notes, wall: Clock, **kwargs: object) -> AttestationWatcher:
    return AttestationWatcher(notes.chain.w3, notes.deployment, series=[notes.series], wall_clock=wall,
                              **kwargs)  # type: ignore[arg-type]


def publish_all(notes: Notes, t: int, *, custody_sats: int, accrued: int, nav_e6: int) -> None:
    pub = notes.publisher
    pub.attest(notes.series, CustodyStatement(as_of=t, btc_balance_sats=custody_sats), attester=notes.custodian)
    pub.attest(notes.series, AccrualStatement(as_of=t, accrued_sats_per_note=accrued), attester=notes.administrator)
    pub.submit(pub.sign(notes.series, NavStatement(as_of=t, nav_per_note_e6=nav_e6, currency="USD"),
                        private_key=notes.key(notes.administrator)), submitter=notes.outsider)
    pub.attest(notes.series, HashrateStatement(period_start=t - 86_400, period_end=t, realised_ph_s_e3=98_000,
                                               uptime_bps=9_800), attester=notes.facility)


def test_reference_figures_from_the_latest_attestations(series_notes: Notes) -> None:
    notes = series_notes
    t = notes.now() - 100
    w = watcher(notes, Clock(t + 160))
    w.poll_once()
    empty = w.reference(notes.series)
    assert empty.latest == {} and empty.custody_coverage is None and empty.nav_per_note is None
    assert empty.notes_outstanding == NOTES

    publish_all(notes, t - 50, custody_sats=1, accrued=1, nav_e6=1)
    publish_all(notes, t, custody_sats=1_500 * NOTES, accrued=1_200, nav_e6=101_250_000)
    w.poll_once()
    ref = w.reference(notes.series)
    assert set(ref.latest) == set(Kind)
    assert ref.accrued_btc_per_note == Decimal("0.000012")
    assert ref.custody_btc == Decimal("0.015")
    assert ref.custody_coverage == Decimal(1_500) / Decimal(1_200)
    assert ref.nav_per_note == Decimal("101.25") and ref.nav_currency == "USD"
    assert ref.realised_ph_s == Decimal("98") and ref.uptime_bps == 9_800
    assert ref.ages_s == {k: 160 for k in Kind}
    custody = ref.latest[Kind.CUSTODY]
    assert custody.attester == notes.custodian and custody.delegation is None
    receipt = notes.chain.w3.eth.get_transaction_receipt(custody.tx_hash)  # type: ignore[arg-type]
    assert receipt["blockNumber"] == custody.block_number
    nav = ref.latest[Kind.NAV]
    assert nav.attester == notes.administrator
    assert nav.delegation is not None and nav.delegation.verifies()
    assert nav.delegation.request.attester == notes.administrator


def test_custody_shortfall_shows_as_coverage_below_one(notes: Notes) -> None:
    t = notes.now()
    publish_all(notes, t, custody_sats=900 * NOTES, accrued=1_000, nav_e6=1)
    w = watcher(notes, Clock(t))
    w.poll_once()
    assert w.reference(notes.series).custody_coverage == Decimal("0.9")


def test_revoked_attestation_stops_counting(notes: Notes) -> None:
    t = notes.now() - 10
    pub = notes.publisher
    older = pub.attest(notes.series, CustodyStatement(as_of=t - 5, btc_balance_sats=111), attester=notes.custodian)
    newer = pub.attest(notes.series, CustodyStatement(as_of=t, btc_balance_sats=222), attester=notes.custodian)
    w = watcher(notes, Clock(t))
    w.poll_once()
    latest = w.latest(notes.series, Kind.CUSTODY)
    assert latest is not None and latest.uid == newer.uid
    pub.revoke(newer.uid, revoker=notes.custodian)
    w.poll_once()  # incremental: the Revoked log
    latest = w.latest(notes.series, Kind.CUSTODY)
    assert latest is not None and latest.uid == older.uid
    revoked = next(r for r in w.records(notes.series) if r.uid == newer.uid)
    assert w.standing(revoked) is Standing.REVOKED
    pub.revoke(older.uid, revoker=notes.custodian)
    w.poll_once()
    assert w.latest(notes.series, Kind.CUSTODY) is None
    assert w.reference(notes.series).custody_btc is None


def test_unregistered_signer_is_ignored_and_reported_once(notes: Notes) -> None:
    t = notes.now()
    reported: list[IgnoredAttestation] = []
    w = watcher(notes, Clock(t), on_ignored=reported.append)
    published = notes.publisher.attest(notes.series, CustodyStatement(as_of=t, btc_balance_sats=5),
                                       attester=notes.custodian)
    w.poll_once()
    assert w.latest(notes.series, Kind.CUSTODY) is not None and reported == []
    notes.publisher.set_attestor(notes.series, notes.custodian, Role(0), admin=notes.issuer)
    w.poll_once()  # the AttestorSet log makes the watcher re-read the registration
    assert w.latest(notes.series, Kind.CUSTODY) is None
    assert [(i.record.uid, i.code) for i in reported] == [(published.uid, "UNREGISTERED_SIGNER")]
    assert notes.custodian in reported[0].message
    w.request_full_resync()
    w.poll_once()
    assert len(reported) == 1 and w.ignored == reported
    notes.publisher.set_attestor(notes.series, notes.custodian, Role.CUSTODIAN, admin=notes.issuer)
    w.poll_once()
    assert w.latest(notes.series, Kind.CUSTODY) is not None


def test_other_series_and_foreign_schemas_are_not_picked_up(notes: Notes) -> None:
    t = notes.now()
    notes.publisher.attest(notes.series, CustodyStatement(as_of=t, btc_balance_sats=5), attester=notes.custodian)
    w = AttestationWatcher(notes.chain.w3, notes.deployment, series=[notes.outsider], wall_clock=Clock(t))
    w.poll_once()
    assert w.records() == []
    w.track(notes.series)  # a newly tracked series is synced in full from the deployment block
    w.poll_once()
    assert [r.series for r in w.records()] == [notes.series]


def test_periodic_resync_rereads_everything(notes: Notes) -> None:
    t = notes.now()
    mono = Clock(0.0)
    w = AttestationWatcher(notes.chain.w3, notes.deployment, series=[notes.series], wall_clock=Clock(t),
                           clock=mono, resync_interval_s=60)
    w.poll_once()
    notes.publisher.attest(notes.series, CustodyStatement(as_of=t, btc_balance_sats=5), attester=notes.custodian)
    w.poll_once()
    assert w.full_syncs == 1 and len(w.records()) == 1
    mono.t = 61.0
    w.poll_once()
    assert w.full_syncs == 2 and len(w.records()) == 1


def test_small_block_ranges_page_the_log_scan(notes: Notes) -> None:
    t = notes.now()
    publish_all(notes, t, custody_sats=1, accrued=1, nav_e6=1)
    w = AttestationWatcher(notes.chain.w3, notes.deployment, series=[notes.series], wall_clock=Clock(t),
                           max_block_range=1)
    w.poll_once()
    assert {r.kind for r in w.records()} == set(Kind)


def test_bad_configuration_is_refused(notes: Notes) -> None:
    with pytest.raises(AttestationConfigError):
        AttestationWatcher(notes.chain.w3, notes.deployment, max_block_range=0)


async def test_run_polls_until_stopped(notes: Notes) -> None:
    import asyncio

    t = notes.now()
    notes.publisher.attest(notes.series, CustodyStatement(as_of=t, btc_balance_sats=5), attester=notes.custodian)
    w = watcher(notes, Clock(t), poll_interval_s=0.05)
    stop = asyncio.Event()
    task = asyncio.create_task(w.run(stop))
    for _ in range(200):
        if w.latest(notes.series, Kind.CUSTODY) is not None:
            break
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(task, 10)
    assert w.latest(notes.series, Kind.CUSTODY) is not None and w.polls >= 1


def test_ages_at_a_given_time(notes: Notes) -> None:
    t = notes.now()
    notes.publisher.attest(notes.series, CustodyStatement(as_of=t - 30, btc_balance_sats=5), attester=notes.custodian)
    w = watcher(notes, Clock(t))
    w.poll_once()
    assert w.reference(notes.series).ages_s == {Kind.CUSTODY: 30}
    assert w.reference(notes.series, now=t + 3_600).ages_s == {Kind.CUSTODY: 3_630}
