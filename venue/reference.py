"""Reference data of the running venue in one place: listings, instrument rules, participants,
settlement wallets and API keys, and the converters between store rows and the venue's types.

The gateway reads listings and keys here, the trade book reads listings and wallets, and the gate
(``compliance.Gatekeeper``) is fed the participant records and instrument rules from here: this
object is the only writer of reference data in the running venue. ``apply`` takes a full snapshot
of the store and makes the venue match it, removals included: a key revoked (or deleted) in the
store stops authenticating at once, a wallet removed in the store is no longer settled to.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from typing import Protocol

import compliance
import store as store_pkg
from engine import InstrumentSpec, InstrumentStatus
from market.model import ApiKey, Listing, Role
from venue.listings import ListingRules

# ---------------------------------------------------------------- store rows -> venue types


def listing_from_record(inst: store_pkg.Instrument) -> Listing:
    spec = InstrumentSpec(
        symbol=inst.symbol, tick_size=inst.tick_size, lot_size=inst.lot_size, min_qty=inst.min_qty,
        max_qty=inst.max_qty, band_low=inst.band_low, band_high=inst.band_high,
        status=InstrumentStatus[inst.status.name],
    )
    return Listing(
        spec=spec, name=inst.name, token_address=inst.token_address, cash_token_address=inst.cash_token_address,
        token_decimals=inst.token_decimals, cash_decimals=inst.cash_decimals, maturity_ts=inst.maturity_ts,
    )


def api_key_from_record(key: store_pkg.ApiKeyRecord) -> ApiKey:
    return ApiKey(key_id=key.key_id, participant=key.participant, role=Role(key.role.value), public_key=key.public_key)


def kyc_ts(expiry: dt.date | None) -> int | None:
    if expiry is None:
        return None
    return int(dt.datetime.combine(expiry, dt.time(), tzinfo=dt.UTC).timestamp()) * 10**9


def compliance_participant(p: store_pkg.Participant, wallet: str | None) -> compliance.Participant:
    status = (compliance.ParticipantStatus.ACTIVE if p.status is store_pkg.ParticipantStatus.ACTIVE
              else compliance.ParticipantStatus.SUSPENDED)
    return compliance.Participant(
        id=p.id, status=status, category=compliance.InvestorCategory(p.investor_category),
        jurisdiction=p.jurisdiction, kyc_expiry_ts=kyc_ts(p.kyc_expiry), wallet=wallet,
        signed_orders=p.signed_orders,
    )


def instrument_rules(listing: Listing, rules: ListingRules) -> compliance.InstrumentRules:
    return compliance.InstrumentRules.from_spec(
        listing.spec, token=listing.token_address, cash_token=listing.cash_token_address,
        allowed_categories=frozenset(compliance.InvestorCategory(c) for c in rules.allowed_categories),
        allowed_jurisdictions=frozenset(rules.allowed_jurisdictions),
        blocked_jurisdictions=frozenset(rules.blocked_jurisdictions),
        holding_cap=rules.holding_cap, max_holders=rules.max_holders,
        lockup_until_ts=rules.lockup_until_ts, trading_end_ts=rules.trading_end_ts,
    )


Snapshot = tuple[list[store_pkg.Participant], dict[str, str], list[store_pkg.ApiKeyRecord]]


def read_store(store: store_pkg.Store) -> Snapshot:
    """Participants, their (first) wallets and the active API keys, as ``ReferenceData.apply`` takes them."""
    wallets: dict[str, str] = {}
    for wallet in store.list_wallets():
        wallets.setdefault(wallet.participant_id, wallet.address)
    return store.list_participants(), wallets, store.list_api_keys()


# ---------------------------------------------------------------- the registry


class ParticipantGate(Protocol):
    """What reference data feeds into the gate."""

    def upsert_participant(self, participant: compliance.Participant) -> None: ...

    def participant(self, participant_id: str) -> compliance.Participant | None: ...

    def set_rules(self, rules: compliance.InstrumentRules) -> None: ...


class WalletTracker(Protocol):
    def track_wallet(self, wallet: str) -> object: ...

    def track_token(self, token: str) -> object: ...

    def track_cash_token(self, token: str) -> object: ...


class TransferTracker(Protocol):
    """``compliance.ChainStateCache``: follow a token's own compliance (``canTransfer``)."""

    def track_transferability(self, token: str, probe_amounts: Iterable[int] = (1,)) -> None: ...


def transfer_probes(listing: Listing) -> tuple[int, ...]:
    """``canTransfer`` probe amounts of a listing: its smallest and largest order (answers in between
    follow from the modules' monotonicity)."""
    spec = listing.spec
    smallest = listing.token_amount(max(1, spec.min_qty))
    return tuple(sorted({smallest, listing.token_amount(spec.max_qty)} if spec.max_qty else {smallest}))


class ReferenceData:
    def __init__(
        self,
        *,
        listings: Iterable[Listing] = (),
        keys: Iterable[ApiKey] = (),
        wallets: dict[str, str] | None = None,
        gate: ParticipantGate | None = None,
        tracker: WalletTracker | None = None,
        transferability: TransferTracker | None = None,
        on_keys_revoked: Callable[[list[ApiKey]], object] | None = None,
    ) -> None:
        """``transferability``: each listing's token compliance is followed from its listing on;
        ``on_keys_revoked`` receives the keys ``apply`` drops (see ``venue.enforcement``)."""
        self._transferability = transferability
        self.on_keys_revoked = on_keys_revoked
        self._listings = {listing.symbol: listing for listing in listings}
        self._rules: dict[str, ListingRules] = {}
        self._keys = {key.key_id: key for key in keys}
        self._wallets = dict(wallets or {})
        self._gate = gate
        self._tracker = tracker

    # ------------------------------------------------------------ reads

    def listings(self) -> list[Listing]:
        return [self._listings[s] for s in sorted(self._listings)]

    def listing(self, symbol: str) -> Listing | None:
        return self._listings.get(symbol)

    def rules(self, symbol: str) -> ListingRules:
        """The listing's rules (the defaults when it was listed without any)."""
        return self._rules.get(symbol) or ListingRules()

    def api_key(self, key_id: str) -> ApiKey | None:
        return self._keys.get(key_id)

    def wallet_of(self, participant: str) -> str | None:
        return self._wallets.get(participant)

    def keys_of(self, participant: str) -> list[ApiKey]:
        return [k for k in self._keys.values() if k.participant == participant]

    def participant_ids(self) -> list[str]:
        return sorted(self._wallets)

    def balances(self, balance: Callable[[str, str], int | None]) -> dict[tuple[str, str], int]:
        """(asset, wallet) -> ``balance(asset, wallet)`` for every listed asset and known wallet."""
        return {
            (asset, wallet): balance(asset, wallet) or 0
            for listing in self.listings()
            for wallet in (self._wallets[p] for p in sorted(self._wallets))
            for asset in (listing.token_address, listing.cash_token_address)
        }

    # ------------------------------------------------------------ writes

    def add_listing(self, listing: Listing, rules: ListingRules | None = None) -> None:
        self._listings[listing.symbol] = listing
        if rules is not None:
            self._rules[listing.symbol] = rules
        if self._gate is not None and rules is not None:
            self._gate.set_rules(instrument_rules(listing, rules))
        if self._tracker is not None:
            self._tracker.track_token(listing.token_address)
            self._tracker.track_cash_token(listing.cash_token_address)
        if self._transferability is not None:
            self._transferability.track_transferability(listing.token_address, transfer_probes(listing))

    def add_key(self, key: ApiKey) -> None:
        self._keys[key.key_id] = key

    def set_wallet(self, participant: str, wallet: str) -> None:
        self._wallets[participant] = wallet

    def register_participant(self, p: store_pkg.Participant, wallet: str | None) -> None:
        if self._gate is not None:
            self._gate.upsert_participant(compliance_participant(p, wallet))
        if wallet is None:
            self._wallets.pop(p.id, None)
            return
        self._wallets[p.id] = wallet
        if self._tracker is not None:
            self._tracker.track_wallet(wallet)

    def apply(
        self,
        participants: list[store_pkg.Participant],
        wallets: dict[str, str],
        keys: list[store_pkg.ApiKeyRecord],
    ) -> None:
        """Make the venue match a full snapshot of the store (the live reload, every few seconds):
        new and changed participants and wallets are registered, keys added, and keys that are no
        longer active in the store (revoked or deleted) removed."""
        for p in participants:
            wallet = wallets.get(p.id)
            current = self._gate.participant(p.id) if self._gate is not None else None
            known = current is not None if self._gate is not None else p.id in self._wallets
            held = (current.wallet if current is not None else self._wallets.get(p.id)) or ""
            if not known or held.lower() != (wallet or "").lower() or _changed(current, p):
                self.register_participant(p, wallet)
        active = {key.key_id: key for key in keys if key.revoked_ts is None}
        dropped = [self._keys.pop(key_id) for key_id in [k for k in self._keys if k not in active]]
        if dropped and self.on_keys_revoked is not None:
            self.on_keys_revoked(dropped)
        for key_id, record in active.items():
            if key_id not in self._keys:
                self._keys[key_id] = api_key_from_record(record)


def _changed(current: compliance.Participant | None, p: store_pkg.Participant) -> bool:
    """The store's status or KYC expiry differs from the gate's record (an operator change made in
    the store while the venue runs): the gate takes the store's values."""
    if current is None:
        return False
    fresh = compliance_participant(p, current.wallet)
    return (current.status, current.kyc_expiry_ts) != (fresh.status, fresh.kyc_expiry_ts)
