"""Token compliance before matching: the venue's synchronous predicate sees what the reference token's
ModularCompliance (real T-REX modules) would refuse, before any transaction, and flips within one
poll of the on-chain change."""

from __future__ import annotations

import pytest

from compliance.sync import Targets
from compliance.transferability import TransferRefusal, check_transfer, check_wallet
from engine import Side
from settlement.errors import ChainError
from tests.compliance.kyc_venue import DE, kyc_venue
from tests.trex_kyc import COUNTRY_RESTRICT, MAX_BALANCE, KycTrex

FR = 250


def test_country_restriction_is_refused_before_any_transaction_and_flips_within_one_poll(
    kyc_trex: KycTrex,
) -> None:
    kyc_trex.add_module("country", COUNTRY_RESTRICT)
    venue = kyc_venue(kyc_trex, {"alice": DE, "bob": FR}, probes=(10, 100))
    token, alice, bob = kyc_trex.token.address, venue.wallets["alice"], venue.wallets["bob"]
    assert check_transfer(venue.cache, token, alice, bob, 10).allowed is True
    assert check_wallet(venue.cache, token, bob, Side.BUY, 10).allowed is True

    kyc_trex.call_module("country", "addCountryRestriction", FR)  # ModuleInteraction on the compliance
    assert kyc_trex.suite.compliance.functions.canTransfer(alice, bob, 10).call() is False
    venue.watcher.poll_once()
    verdict = check_transfer(venue.cache, token, alice, bob, 10)
    assert verdict.allowed is False and verdict.reason is TransferRefusal.TOKEN_COMPLIANCE_REFUSED
    assert check_transfer(venue.cache, token, bob, alice, 10).allowed is True  # restriction is on receivers
    # at order entry: bob can buy from nobody; alice (DE) can still sell (to other DE holders later)
    entry = check_wallet(venue.cache, token, bob, Side.BUY, 10)
    assert entry.allowed is False and entry.reason is TransferRefusal.TOKEN_COMPLIANCE_REFUSED
    assert check_wallet(venue.cache, token, alice, Side.BUY, 10).allowed is True
    # the token would indeed refuse it on chain
    with pytest.raises(ChainError):
        kyc_trex.chain.transact(kyc_trex.token.functions.transfer(bob, 10), alice)

    kyc_trex.call_module("country", "removeCountryRestriction", FR)
    venue.watcher.poll_once()
    assert check_transfer(venue.cache, token, alice, bob, 10).allowed is True
    assert venue.watcher.full_syncs == 1  # incremental polls only


def test_module_added_and_removed_and_country_change_flip_the_predicate(kyc_trex: KycTrex) -> None:
    venue = kyc_venue(kyc_trex, {"alice": DE, "bob": DE}, probes=(10,))
    token, alice, bob = kyc_trex.token.address, venue.wallets["alice"], venue.wallets["bob"]
    assert check_transfer(venue.cache, token, alice, bob, 10).allowed is True
    kyc_trex.add_module("country", COUNTRY_RESTRICT)
    kyc_trex.call_module("country", "addCountryRestriction", FR)
    venue.watcher.poll_once()  # ModuleAdded + ModuleInteraction: every pair re-read
    assert check_transfer(venue.cache, token, alice, bob, 10).allowed is True  # bob is DE
    reg = kyc_trex.suite.identity_registry
    kyc_trex.chain.transact(reg.functions.updateCountry(bob, FR), kyc_trex.owner)  # CountryUpdated
    venue.watcher.poll_once()
    assert check_transfer(venue.cache, token, alice, bob, 10).reason is TransferRefusal.TOKEN_COMPLIANCE_REFUSED
    kyc_trex.remove_module("country")  # ModuleRemoved
    venue.watcher.poll_once()
    assert check_transfer(venue.cache, token, alice, bob, 10).allowed is True


def test_max_balance_depends_on_amount_and_holdings(kyc_trex: KycTrex) -> None:
    kyc_trex.add_module("max", MAX_BALANCE)  # before any supply: the module binds without a preset
    kyc_trex.call_module("max", "setMaxBalance", 150)
    venue = kyc_venue(kyc_trex, {"alice": DE, "bob": DE}, probes=(10, 60))
    token, alice, bob = kyc_trex.token.address, venue.wallets["alice"], venue.wallets["bob"]
    assert check_transfer(venue.cache, token, alice, bob, 10).allowed is True  # bob 100 + 10 <= 150
    assert check_transfer(venue.cache, token, alice, bob, 60).reason is TransferRefusal.TOKEN_COMPLIANCE_REFUSED
    assert check_transfer(venue.cache, token, alice, bob, 5).allowed is True  # below an allowed probe
    assert check_transfer(venue.cache, token, alice, bob, 80).allowed is False  # above a refused probe
    # between probes: unknown, asked for, known one poll later
    mid = check_transfer(venue.cache, token, alice, bob, 50)
    assert mid.allowed is None and mid.reason is TransferRefusal.CHAIN_STATE_UNKNOWN
    assert (token.lower(), alice.lower(), bob.lower(), 50) in venue.cache.transfer_requests
    venue.watcher.poll_once()
    assert check_transfer(venue.cache, token, alice, bob, 50).allowed is True
    # bob's holdings grow (a Transfer): the same amount is now refused
    kyc_trex.mint(bob, 45)
    venue.watcher.poll_once()
    assert check_transfer(venue.cache, token, alice, bob, 10).reason is TransferRefusal.TOKEN_COMPLIANCE_REFUSED


def test_polling_loop_rereads_pairs_of_balance_moves_once_per_interval(kyc_trex: KycTrex) -> None:
    """Pairs are most of a busy poll (every ordered pair of tracked wallets per probe): the polling
    loop re-reads those of wallets that only moved balance once per ``pair_interval_s``, keeping the
    last answers meanwhile (never unknown); the balance itself is read at once."""
    kyc_trex.add_module("max", MAX_BALANCE)
    kyc_trex.call_module("max", "setMaxBalance", 150)
    venue = kyc_venue(kyc_trex, {"alice": DE, "bob": DE}, probes=(10,))
    token, alice, bob = kyc_trex.token.address, venue.wallets["alice"], venue.wallets["bob"]
    watcher, cache = venue.watcher, venue.cache

    def paced_poll() -> None:
        watcher.apply(watcher.fetch(Targets.of(cache), paced=True))

    watcher.pair_interval_s = 3600.0  # the last pair read (the first poll) is recent
    kyc_trex.mint(bob, 45)  # a Transfer: bob holds 145, so 10 more would pass the cap
    paced_poll()
    assert cache.balance(token, bob) == 145
    assert check_transfer(cache, token, alice, bob, 10).allowed is True  # the last answer, kept
    paced_poll()  # no new block, not due yet
    assert check_transfer(cache, token, alice, bob, 10).allowed is True
    watcher.pair_interval_s = 0.0  # due: the deferred moves are re-read (with no new transfer)
    paced_poll()
    assert check_transfer(cache, token, alice, bob, 10).reason is TransferRefusal.TOKEN_COMPLIANCE_REFUSED
    # an explicit poll (tests, start-up) is never paced
    watcher.pair_interval_s = 3600.0
    kyc_trex.chain.transact(kyc_trex.token.functions.transfer(alice, 10), bob)  # bob 135
    watcher.poll_once()
    assert check_transfer(cache, token, alice, bob, 10).allowed is True


def test_freeze_pause_and_unverified_counterparty_are_refused(kyc_trex: KycTrex) -> None:
    venue = kyc_venue(kyc_trex, {"alice": DE, "bob": DE}, probes=(10,))
    token, alice, bob = kyc_trex.token.address, venue.wallets["alice"], venue.wallets["bob"]
    kyc_trex.suite.freeze(bob)
    venue.watcher.poll_once()
    v = check_transfer(venue.cache, token, alice, bob, 10)
    assert (v.allowed, v.reason, v.wallet) == (False, TransferRefusal.WALLET_FROZEN, bob.lower())
    kyc_trex.suite.freeze(bob, False)
    kyc_trex.revoke(alice)
    venue.watcher.poll_once()
    v = check_transfer(venue.cache, token, alice, bob, 10)
    assert (v.allowed, v.reason, v.wallet) == (False, TransferRefusal.IDENTITY_NOT_VERIFIED, alice.lower())
    kyc_trex.chain.transact(kyc_trex.token.functions.pause(), kyc_trex.owner)
    venue.watcher.poll_once()
    assert check_transfer(venue.cache, token, bob, alice, 10).reason is TransferRefusal.TOKEN_PAUSED


def test_untracked_token_is_unknown_not_allowed(kyc_trex: KycTrex) -> None:
    venue = kyc_venue(kyc_trex, {"alice": DE, "bob": DE})  # no track_transferability
    token, alice, bob = kyc_trex.token.address, venue.wallets["alice"], venue.wallets["bob"]
    v = check_transfer(venue.cache, token, alice, bob, 10)
    assert v.allowed is None and v.reason is TransferRefusal.CHAIN_STATE_UNKNOWN
    assert venue.cache.transfer_requests == frozenset()  # not followed: nothing is asked for
