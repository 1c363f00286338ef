"""Client-side verification: our EIP-712 digest is EAS's, the signer is recovered, tampering shows."""

from __future__ import annotations

from dataclasses import replace

import pytest
from eth_account.messages import encode_typed_data

from attestation import (
    CustodyStatement,
    Signature,
    encode_statement,
    recover_attester,
    typed_data,
    verify_attest_signature,
)
from tests.attestation.conftest import Notes


def test_domain_separator_is_the_one_eas_uses(notes: Notes) -> None:
    eas = notes.chain.contract(notes.deployment.eas, __import__("attestation").eas_abi())
    domain = notes.publisher.domain()
    assert domain.name == "EAS" and domain.chain_id == notes.chain.w3.eth.chain_id
    signed = notes.publisher.sign(notes.series, CustodyStatement(as_of=1, btc_balance_sats=2),
                                  private_key=notes.key(notes.custodian))
    header = encode_typed_data(full_message=typed_data(domain, signed.request)).header
    assert header == bytes(eas.functions.getDomainSeparator().call())


def test_signer_is_recovered_and_tampering_is_detected(notes: Notes) -> None:
    domain = notes.publisher.domain()
    signed = notes.publisher.sign(notes.series, CustodyStatement(as_of=1, btc_balance_sats=2),
                                  private_key=notes.key(notes.custodian))
    assert recover_attester(domain, signed.request, signed.signature) == notes.custodian
    assert verify_attest_signature(domain, signed.request, signed.signature)
    other_data = replace(signed.request, data=encode_statement(CustodyStatement(as_of=1, btc_balance_sats=3)))
    assert not verify_attest_signature(domain, other_data, signed.signature)
    assert not verify_attest_signature(domain, replace(signed.request, nonce=signed.request.nonce + 1),
                                       signed.signature)
    assert not verify_attest_signature(replace(domain, chain_id=domain.chain_id + 1), signed.request,
                                       signed.signature)
    assert not verify_attest_signature(domain, signed.request, Signature(v=27, r=b"\x01" * 32, s=b"\x02" * 32))
    assert Signature.from_hex(signed.signature.to_hex()) == signed.signature


def test_watcher_proof_of_a_submitted_attestation_verifies(notes: Notes) -> None:
    from attestation import AttestationWatcher

    pub = notes.publisher
    for as_of in (notes.now() - 2, notes.now() - 1):  # two delegated attestations: nonces 0 and 1
        pub.submit(pub.sign(notes.series, CustodyStatement(as_of=as_of, btc_balance_sats=2),
                            private_key=notes.key(notes.custodian)), submitter=notes.outsider)
    w = AttestationWatcher(notes.chain.w3, notes.deployment, series=[notes.series])
    w.poll_once()
    proofs = [r.delegation for r in w.records(notes.series)]
    assert [p.request.nonce for p in proofs if p is not None] == [0, 1]
    assert all(p is not None and p.verifies() for p in proofs)


def test_readme_snippet_verifies_a_published_attestation(notes: Notes) -> None:
    import re
    from pathlib import Path

    from attestation import eas_abi

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme[readme.index("#### Verify an attestation yourself"):]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    signed = notes.publisher.sign(notes.series, CustodyStatement(as_of=notes.now(), btc_balance_sats=7),
                                  private_key=notes.key(notes.custodian))
    published = notes.publisher.submit(signed, submitter=notes.outsider)
    r = signed.request
    att = {"uid": published.uid, "attester": r.attester, "schema": r.schema, "recipient": r.recipient,
           "data": r.data, "nonce": r.nonce, "deadline": r.deadline, "signature": signed.signature.to_hex()}
    scope = {"eas": notes.chain.contract(notes.deployment.eas, eas_abi()), "att": att}
    exec(compile(code.group(1), "README.md", "exec"), scope)  # raises AssertionError if it does not verify
    assert scope["signer"] == notes.custodian
    att["data"] = encode_statement(CustodyStatement(as_of=notes.now(), btc_balance_sats=8))
    with pytest.raises(AssertionError):  # altered data: another signer is recovered
        exec(compile(code.group(1), "README.md", "exec"), dict(scope, att=att))
