"""``venue attest`` publishes one statement signed with the given key (direct or delegated)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from attestation import AttestationWatcher, Kind
from settlement import Chain
from tests.attestation.conftest import demo_notes
from venue.cli import main

pytestmark = pytest.mark.anvil


def test_venue_attest_direct_and_delegated(anvil: Chain, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    notes = demo_notes(anvil)
    deployment = tmp_path / "attestation.json"
    notes.deployment.save(deployment)
    key = tmp_path / "custodian.key"
    key.write_text(notes.key(notes.custodian).hex())
    submitter = tmp_path / "submitter.key"
    submitter.write_text("0x" + notes.key(notes.outsider).hex())
    rpc = anvil.w3.provider.endpoint_uri  # type: ignore[attr-defined]
    common = ["--rpc", rpc, "--deployment", str(deployment), "--series", notes.series, "--key-file", str(key)]
    t = notes.now()

    assert main(["attest", "custody", f"as_of={t - 1}", "btc_balance_sats=150000000", *common]) == 0
    direct = json.loads(capsys.readouterr().out)
    assert direct["attester"] == notes.custodian and direct["gas_used"] > 0
    assert main(["attest", "custody", f"as_of={t}", "btc_balance_sats=160000000", *common,
                 "--submitter-key-file", str(submitter)]) == 0
    delegated = json.loads(capsys.readouterr().out)
    assert delegated["attester"] == notes.custodian

    w = AttestationWatcher(anvil.w3, notes.deployment, series=[notes.series])
    w.poll_once()
    latest = w.latest(notes.series, Kind.CUSTODY)
    assert latest is not None and latest.uid.hex() == delegated["uid"][2:] and latest.delegation is not None

    assert main(["attest", "custody", f"as_of={t}", "btc_balance_sats=1", *common]) == 1
    err = capsys.readouterr().err
    assert "attestation_rejected" in err and "StaleAsOf" in err
    assert main(["attest", "nav", "nav_per_note_e6=1", *common]) == 1
    assert "invalid_statement: NAV needs currency" in capsys.readouterr().err
    assert main(["attest", "nav", "oops", *common]) == 2


def test_deploy_cli_next_to_an_existing_eas_and_with_eas(anvil: Chain, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    from attestation import AttestationDeployment
    from attestation.deploy import main as deploy_main

    key = tmp_path / "deployer.key"
    key.write_text(anvil.private_key(anvil.accounts[3]).hex())
    rpc = anvil.w3.provider.endpoint_uri  # type: ignore[attr-defined]
    base = ["--rpc", rpc, "--key-file", str(key)]
    assert deploy_main([*base, "--with-eas", "--out", str(tmp_path / "a.json")]) == 0
    first = AttestationDeployment.load(tmp_path / "a.json")
    assert deploy_main([*base, "--eas", first.eas, "--out", str(tmp_path / "b.json")]) == 0
    second = AttestationDeployment.load(tmp_path / "b.json")
    assert second.eas == first.eas and second.resolver != first.resolver
    assert set(second.schemas.values()).isdisjoint(first.schemas.values())  # schema UIDs name their resolver
    capsys.readouterr()
    assert deploy_main(["--rpc", rpc, "--key-file", str(key), "--eas", anvil.accounts[5], "--out",
                        str(tmp_path / "c.json")]) == 1
    assert "attestation_config: no EAS contract" in capsys.readouterr().err
