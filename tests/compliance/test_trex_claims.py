"""Identity claims as the reference token really works (T-REX 4.1.6 + ONCHAINID): a KYC claim topic,
one trusted ClaimIssuer, an ONCHAINID identity per wallet. The watcher must notice claim revocation
and removal (events on the issuer / identity contracts) within one poll."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from eth_abi.abi import encode
from eth_utils.crypto import keccak

from compliance import ReasonCode
from compliance.eligibility import EligibilityLoss
from tests.compliance.kyc_venue import DE, kyc_venue
from tests.trex_kyc import KYC, KycTrex


def test_wallet_without_kyc_claim_is_not_verified(kyc_trex: KycTrex) -> None:
    venue = kyc_venue(kyc_trex, {"alice": DE})
    bob = kyc_trex.chain.new_account()
    kyc_trex.onboard(bob, DE, claim=False)  # registered identity, no claim
    venue.cache.track_wallet(bob)
    venue.watcher.poll_once()
    token = kyc_trex.token.address
    assert venue.cache.verified(token, venue.wallets["alice"]) is True
    assert venue.cache.verified(token, bob) is False
    assert venue.cache.identity(token, bob) == kyc_trex.identity(bob).address.lower()
    kyc_trex.add_claim(bob)  # ClaimAdded on bob's identity: noticed without a full re-sync
    venue.watcher.poll_once()
    assert venue.cache.verified(token, bob) is True
    assert venue.watcher.full_syncs == 1


def _revoke(kyc: KycTrex, wallet: str) -> None:
    kyc.revoke(wallet)


def _revoke_by_signature(kyc: KycTrex, wallet: str) -> None:
    kyc.revoke_by_signature(wallet)


def _remove(kyc: KycTrex, wallet: str) -> None:
    kyc.remove_claim(wallet)


def _issuer_key_removed(kyc: KycTrex, wallet: str) -> None:
    # the issuer adds a separate management key, then drops the signing key: every claim it signed dies
    other = kyc.chain.new_account()

    def key(address: str) -> bytes:
        return keccak(encode(["address"], [address]))

    kyc.chain.transact(kyc.issuer.functions.addKey(key(other), 1, 1), kyc.issuer_key)
    kyc.chain.transact(kyc.issuer.functions.removeKey(key(kyc.issuer_key), 1), other)


def _untrusted(kyc: KycTrex, wallet: str) -> None:
    kyc.chain.transact(kyc.issuers_registry.functions.removeTrustedIssuer(kyc.issuer.address), kyc.owner)


@pytest.mark.parametrize("change", [_revoke, _revoke_by_signature, _remove, _issuer_key_removed, _untrusted],
                         ids=["revokeClaim", "revokeClaimBySignature", "removeClaim", "issuer-key-removed",
                              "issuer-untrusted"])
def test_claim_loss_blocks_the_next_order_within_one_poll(
    kyc_trex: KycTrex, change: Callable[[KycTrex, str], None]
) -> None:
    venue = kyc_venue(kyc_trex, {"alice": DE, "bob": DE})
    assert venue.sell("alice") is None and venue.sell("bob") is None
    assert venue.lost() == set()
    change(kyc_trex, venue.wallets["alice"])
    reg = kyc_trex.suite.identity_registry
    assert reg.functions.isVerified(venue.wallets["alice"]).call() is False  # the chain agrees
    venue.watcher.poll_once()  # one incremental poll, no full re-sync
    assert venue.watcher.full_syncs == 1
    assert venue.sell("alice") is ReasonCode.IDENTITY_NOT_VERIFIED
    expected = {("alice", EligibilityLoss.CLAIM_REVOKED)}
    if change in (_issuer_key_removed, _untrusted):  # the issuer's claims die for everybody
        expected.add(("bob", EligibilityLoss.CLAIM_REVOKED))
        assert venue.sell("bob") is ReasonCode.IDENTITY_NOT_VERIFIED
    else:
        assert venue.sell("bob") is None
    assert venue.lost() == expected
    venue.watcher.poll_once()
    assert venue.lost() == set()  # reported once per transition


def test_a_new_claim_after_revocation_restores_verification(kyc_trex: KycTrex) -> None:
    venue = kyc_venue(kyc_trex, {"alice": DE})
    alice = venue.wallets["alice"]
    kyc_trex.revoke(alice)
    venue.watcher.poll_once()
    assert venue.sell("alice") is ReasonCode.IDENTITY_NOT_VERIFIED
    kyc_trex.add_claim(alice, data=b"kyc:renewed")  # a fresh signature replaces the revoked one
    venue.watcher.poll_once()
    assert venue.sell("alice") is None


def test_claim_issuer_has_no_expiry_so_expiry_is_revocation(kyc_trex: KycTrex) -> None:
    """ONCHAINID's ClaimIssuer (as shipped with T-REX 4.1.6) checks the signer key and revocation only;
    claim data saying "expired" does not unverify a wallet. An expired KYC is therefore expressed on
    chain by revoking or removing the claim (covered above) or off chain by ``kyc_expiry_ts``."""
    venue = kyc_venue(kyc_trex, {"alice": DE})
    alice = venue.wallets["alice"]
    kyc_trex.add_claim(alice, data=b"kyc:expires=0")
    valid = kyc_trex.issuer.functions.isClaimValid(
        kyc_trex.identity(alice).address, KYC, kyc_trex.signatures[alice.lower()], b"kyc:expires=0").call()
    assert valid is True
    assert "expir" not in " ".join(str(e.get("name", "")).lower() for e in kyc_trex.issuer.abi)
