"""The resolver admits a statement only from an attestor the issuer registered for that series and a
role allowed for the kind, only with a later ``as_of``; delegated signatures work once; revocation."""

from __future__ import annotations

import pytest

from attestation import (
    SCHEMAS,
    AccrualStatement,
    AttestationRejectedError,
    CustodyStatement,
    HashrateStatement,
    Kind,
    NavStatement,
    Role,
    deploy_attestation,
)
from settlement import Chain
from tests.attestation.conftest import Notes, demo_notes


def custody(as_of: int, sats: int = 150_000_000) -> CustodyStatement:
    return CustodyStatement(as_of=as_of, btc_balance_sats=sats)


def test_schemas_registered_by_the_resolver_are_ours(in_process: Chain) -> None:
    dep = deploy_attestation(in_process, in_process.accounts[0])
    resolver = in_process.contract(dep.resolver, __import__("attestation").resolver_abi())
    constants = {Kind.HASHRATE: "HASHRATE_SCHEMA", Kind.CUSTODY: "CUSTODY_SCHEMA",
                 Kind.ACCRUAL: "ACCRUAL_SCHEMA", Kind.NAV: "NAV_SCHEMA"}
    for kind, name in constants.items():
        assert getattr(resolver.functions, name)().call() == SCHEMAS[kind]
    assert len(set(dep.schemas.values())) == 4


def test_registered_attestors_publish_every_kind_directly(notes: Notes) -> None:
    t = notes.now()
    pub = notes.publisher
    published = [
        pub.attest(notes.series, custody(t), attester=notes.custodian),
        pub.attest(notes.series, AccrualStatement(as_of=t, accrued_sats_per_note=1_500), attester=notes.administrator),
        pub.attest(notes.series, NavStatement(as_of=t, nav_per_note_e6=101_250_000, currency="USD"),
                   attester=notes.administrator),
        pub.attest(notes.series, HashrateStatement(period_start=t - 3600, period_end=t, realised_ph_s_e3=98_000,
                                                   uptime_bps=9_800), attester=notes.facility),
    ]
    assert all(len(p.uid) == 32 and p.uid != b"\0" * 32 for p in published)
    assert pub.last_as_of(notes.series, Kind.CUSTODY) == t
    assert pub.last_as_of(notes.series, Kind.HASHRATE) == t


def test_auditor_may_attest_every_kind(notes: Notes) -> None:
    t = notes.now()
    notes.publisher.attest(notes.series, custody(t), attester=notes.auditor)
    notes.publisher.attest(notes.series, NavStatement(as_of=t, nav_per_note_e6=1, currency="USD"),
                           attester=notes.auditor)


def test_unregistered_signer_is_refused(notes: Notes) -> None:
    with pytest.raises(AttestationRejectedError, match="NotRegisteredAttestor") as err:
        notes.publisher.attest(notes.series, custody(notes.now()), attester=notes.outsider)
    assert err.value.code == "attestation_rejected"
    assert err.value.reason is not None and notes.outsider in err.value.reason


def test_wrong_role_is_refused(notes: Notes) -> None:
    t = notes.now()
    with pytest.raises(AttestationRejectedError, match="NotRegisteredAttestor"):
        notes.publisher.attest(notes.series, custody(t), attester=notes.facility)  # facility: hashrate only
    with pytest.raises(AttestationRejectedError, match="NotRegisteredAttestor"):
        notes.publisher.attest(notes.series, NavStatement(as_of=t, nav_per_note_e6=1, currency="USD"),
                               attester=notes.custodian)


def test_registration_is_per_series(notes: Notes) -> None:
    other = demo_notes(notes.chain).series  # another token: our custodian is not registered for it
    with pytest.raises(AttestationRejectedError, match="NotRegisteredAttestor"):
        notes.publisher.attest(other, custody(notes.now()), attester=notes.custodian)


def test_only_the_series_owner_registers_attestors(notes: Notes) -> None:
    with pytest.raises(AttestationRejectedError, match="NotSeriesAdmin"):
        notes.publisher.set_attestor(notes.series, notes.outsider, Role.CUSTODIAN, admin=notes.custodian)
    with pytest.raises(AttestationRejectedError, match="NotSeriesAdmin"):  # an EOA is nobody's series
        notes.publisher.set_attestor(notes.outsider, notes.outsider, Role.CUSTODIAN, admin=notes.outsider)
    assert notes.publisher.roles_of(notes.series, notes.outsider) == Role(0)


def test_removed_attestor_is_refused(notes: Notes) -> None:
    notes.publisher.set_attestor(notes.series, notes.custodian, Role(0), admin=notes.issuer)
    with pytest.raises(AttestationRejectedError, match="NotRegisteredAttestor"):
        notes.publisher.attest(notes.series, custody(notes.now()), attester=notes.custodian)


def test_stale_as_of_is_refused_per_kind_and_series(notes: Notes) -> None:
    t = notes.now()
    pub = notes.publisher
    pub.attest(notes.series, custody(t), attester=notes.custodian)
    for stale in (t, t - 1):
        with pytest.raises(AttestationRejectedError, match="StaleAsOf"):
            pub.attest(notes.series, custody(stale), attester=notes.custodian)
    with pytest.raises(AttestationRejectedError, match="StaleAsOf"):  # another attestor, same kind: still stale
        pub.attest(notes.series, custody(t), attester=notes.auditor)
    pub.attest(notes.series, AccrualStatement(as_of=t - 10, accrued_sats_per_note=1), attester=notes.administrator)
    pub.attest(notes.series, custody(t + 1), attester=notes.custodian)


def test_future_as_of_is_refused(notes: Notes) -> None:
    with pytest.raises(AttestationRejectedError, match="FutureAsOf"):
        notes.publisher.attest(notes.series, custody(notes.now() + 2 * 3600), attester=notes.custodian)


def test_delegated_attestation_is_submitted_by_anyone(notes: Notes) -> None:
    signed = notes.publisher.sign(notes.series, custody(notes.now()), private_key=notes.key(notes.custodian))
    published = notes.publisher.submit(signed, submitter=notes.outsider)
    eas = notes.chain.contract(notes.deployment.eas, __import__("attestation").eas_abi())
    record = eas.functions.getAttestation(published.uid).call()
    assert record[7] == notes.custodian  # the attester is the signer, not the submitter


def test_replayed_delegated_signature_is_refused(notes: Notes) -> None:
    pub = notes.publisher
    signed = pub.sign(notes.series, custody(notes.now()), private_key=notes.key(notes.custodian))
    pub.submit(signed, submitter=notes.outsider)
    with pytest.raises(AttestationRejectedError, match="InvalidSignature"):
        pub.submit(signed, submitter=notes.outsider)
    with pytest.raises(AttestationRejectedError, match="InvalidSignature"):
        pub.submit(signed, submitter=notes.custodian)


def test_delegated_signature_of_an_unregistered_key_is_refused(notes: Notes) -> None:
    signed = notes.publisher.sign(notes.series, custody(notes.now()), private_key=notes.key(notes.outsider))
    with pytest.raises(AttestationRejectedError, match="NotRegisteredAttestor"):
        notes.publisher.submit(signed, submitter=notes.custodian)


def test_delegated_request_altered_after_signing_is_refused(notes: Notes) -> None:
    from dataclasses import replace

    from attestation import DelegatedAttestation, encode_statement

    signed = notes.publisher.sign(notes.series, custody(notes.now(), 1), private_key=notes.key(notes.custodian))
    forged = DelegatedAttestation(
        request=replace(signed.request, data=encode_statement(custody(notes.now(), 10**12))), signature=signed.signature
    )
    with pytest.raises(AttestationRejectedError, match="InvalidSignature"):
        notes.publisher.submit(forged, submitter=notes.outsider)


def test_expired_delegation_deadline_is_refused(notes: Notes) -> None:
    signed = notes.publisher.sign(notes.series, custody(notes.now()), private_key=notes.key(notes.custodian),
                                  deadline=notes.now() - 10)
    with pytest.raises(AttestationRejectedError, match="DeadlineExpired"):
        notes.publisher.submit(signed, submitter=notes.outsider)


def test_revocation_only_by_the_attester(notes: Notes) -> None:
    t = notes.now()
    published = notes.publisher.attest(notes.series, custody(t), attester=notes.custodian)
    with pytest.raises(AttestationRejectedError, match="AccessDenied"):
        notes.publisher.revoke(published.uid, revoker=notes.auditor)
    revoked = notes.publisher.revoke(published.uid, revoker=notes.custodian)
    assert revoked.uid == published.uid
    with pytest.raises(AttestationRejectedError, match="AlreadyRevoked"):
        notes.publisher.revoke(published.uid, revoker=notes.custodian)
    # the as_of order survives a revocation: a correction carries a later as_of
    with pytest.raises(AttestationRejectedError, match="StaleAsOf"):
        notes.publisher.attest(notes.series, custody(t), attester=notes.custodian)
    notes.publisher.attest(notes.series, custody(t + 1), attester=notes.custodian)


def test_series_owner_registers_on_the_reference_trex_token(series_notes: Notes) -> None:
    t = series_notes.now()
    series_notes.publisher.attest(series_notes.series, custody(t), attester=series_notes.custodian)
    with pytest.raises(AttestationRejectedError, match="NotSeriesAdmin"):
        series_notes.publisher.set_attestor(series_notes.series, series_notes.outsider, Role.AUDITOR,
                                            admin=series_notes.outsider)


def test_resolver_checks_statements_the_python_side_would_refuse(notes: Notes) -> None:
    from eth_abi.abi import encode

    from attestation import eas_abi
    from attestation.publish import _rejections

    eas = notes.chain.contract(notes.deployment.eas, eas_abi())
    t = notes.now()
    bad = {
        Kind.HASHRATE: (encode(["uint64", "uint64", "uint64", "uint16"], [t, t, 1, 1]), "period_start"),
        Kind.NAV: (encode(["uint64", "uint256", "string"], [t, 1, ""]), "currency is empty"),
    }
    for kind, (data, reason) in bad.items():
        request = (notes.deployment.schema_uid(kind), (notes.series, 0, True, b"\0" * 32, data, 0))
        with pytest.raises(AttestationRejectedError, match=reason), _rejections("raw"):
            notes.chain.transact(eas.functions.attest(request), notes.auditor)
    with pytest.raises(AttestationRejectedError, match="InvalidRoles"):
        notes.publisher.set_attestor(notes.series, notes.outsider, Role(16), admin=notes.issuer)
