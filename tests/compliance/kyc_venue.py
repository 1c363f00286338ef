"""A gatekeeper + cache + watcher wired to a KYC T-REX suite, recording eligibility events."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from eth_typing import ChecksumAddress
from web3 import Web3

from compliance import ChainStateCache, ChainWatcher, Gatekeeper, InstrumentRules, InvestorCategory, ReasonCode
from compliance.eligibility import EligibilityLoss, EligibilityLost
from engine import Side
from settlement import artifacts
from tests.compliance.conftest import DE, participant
from tests.trex_kyc import KycTrex

SETTLEMENT = Web3.to_checksum_address("0x" + "d5" * 20)  # only an allowance spender here
SYMBOL = "TOMN"


@dataclass
class KycVenue:
    kyc: KycTrex
    cache: ChainStateCache
    gk: Gatekeeper
    watcher: ChainWatcher
    wallets: dict[str, ChecksumAddress]
    events: list[EligibilityLost] = field(default_factory=list)

    def sell(self, who: str, qty: int = 10) -> ReasonCode | None:
        return self.gk.check_new_order(participant=who, symbol=SYMBOL, side=Side.SELL, qty=qty, price=1,
                                       now_ts=time.time_ns()).code

    def lost(self) -> set[tuple[str, EligibilityLoss]]:
        """(participant name, reason) of the events so far; cleared."""
        names = {w.lower(): n for n, w in self.wallets.items()}
        out = {(names[e.wallet], e.reason) for e in self.events}
        assert all(e.token == self.kyc.token.address.lower() for e in self.events)
        self.events.clear()
        return out


def kyc_venue(kyc: KycTrex, countries: dict[str, int], *, notes: int = 100, claims: bool = True,
              probes: tuple[int, ...] | None = None) -> KycVenue:
    """One onboarded (identity + KYC claim unless ``claims`` is false) wallet per name, each holding
    ``notes`` and having approved the settlement address; the watcher has polled once."""
    chain = kyc.chain
    cash = chain.deploy(artifacts.load("DemoStablecoin"), kyc.owner, kyc.owner)
    start = int(chain.w3.eth.block_number) + 1
    wallets: dict[str, ChecksumAddress] = {}
    for name, country in countries.items():
        wallet = chain.new_account()
        wallets[name] = wallet
        kyc.onboard(wallet, country, claim=claims)
        if claims and notes:
            kyc.mint(wallet, notes)
            chain.transact(kyc.token.functions.approve(SETTLEMENT, notes), wallet)
    cache = ChainStateCache()
    gk = Gatekeeper(cache, settlement_address=SETTLEMENT)
    gk.set_rules(InstrumentRules(symbol=SYMBOL, token=kyc.token.address, cash_token=cash.address, lot_size=1,
                                 tick_size=1, allowed_categories=frozenset({InvestorCategory.MIFID_PROFESSIONAL})))
    for name, wallet in wallets.items():
        gk.upsert_participant(participant(name, wallet))
    if probes is not None:
        cache.track_transferability(kyc.token.address, probes)
    venue = KycVenue(kyc=kyc, cache=cache, gk=gk, watcher=ChainWatcher(chain.w3, cache, start_block=start),
                     wallets=wallets)
    venue.watcher.add_eligibility_listener(venue.events.append)
    venue.watcher.poll_once()
    return venue


__all__ = ["DE", "KycVenue", "kyc_venue"]
