"""A fully eligible, fully funded baseline world for gatekeeper tests, with knobs to break one thing."""

from __future__ import annotations

from dataclasses import dataclass, field

from compliance import (
    ChainStateCache,
    DecisionRecord,
    Gatekeeper,
    InstrumentRules,
    InvestorCategory,
    Participant,
    ParticipantStatus,
)

TOKEN = "0x" + "11" * 20
CASH = "0x" + "22" * 20
SETTLE = "0x" + "33" * 20
REGISTRY = "0x" + "44" * 20
BUYER_WALLET = "0x" + "B0b0" * 10  # mixed case on purpose: the ledger must normalise
SELLER_WALLET = "0x" + "5E5e" * 10
OTHER_WALLET = "0x" + "0e" * 20  # an unrelated holder
NOW = 1_800_000_000 * 10**9
SYMBOL = "OMN1"
DE = 276


@dataclass
class World:
    """Parameters of the baseline; ``build`` turns them into a gatekeeper."""

    lot: int = 10**6
    tick: int = 10**4
    qty: int = 5
    price: int = 100
    buyer_cash: int | None = None  # default: 10x what the order needs
    buyer_allowance: int | None = None
    buyer_notes: int = 0
    seller_notes: int | None = None  # default: 10x the order
    seller_frozen_notes: int = 0
    seller_note_allowance: int | None = None
    other_holder_notes: int = 1
    rules: dict[str, object] = field(default_factory=dict)
    participant: dict[str, object] = field(default_factory=dict)  # overrides for the trading participant
    known_participant: bool = True
    paused: bool = False
    verified: bool = True
    country: int = DE
    frozen: bool = False
    synced_wallet: bool = True
    synced_at: int = NOW
    max_chain_lag_ns: int | None = None
    token_refuses: bool = False  # the token's canTransfer refuses the trader against every counterparty
    funding_down: bool = False  # a sharded venue whose shared cash ledger does not answer

    def need_cash(self, qty: int | None = None, price: int | None = None) -> int:
        return (self.price if price is None else price) * self.tick * (self.qty if qty is None else qty)

    def need_notes(self, qty: int | None = None) -> int:
        return self.lot * (self.qty if qty is None else qty)

    def build(self, *, trader: str = "buyer") -> tuple[Gatekeeper, list[DecisionRecord]]:
        cache = ChainStateCache()
        records: list[DecisionRecord] = []
        gk = Gatekeeper(cache, settlement_address=SETTLE, on_decision=records.append,
                        max_chain_lag_ns=self.max_chain_lag_ns)
        rules: dict[str, object] = {
            "symbol": SYMBOL, "token": TOKEN, "cash_token": CASH, "lot_size": self.lot, "tick_size": self.tick,
            "allowed_categories": frozenset({InvestorCategory.MIFID_PROFESSIONAL, InvestorCategory.US_QIB}),
        }
        rules.update(self.rules)
        gk.set_rules(InstrumentRules(**rules))  # type: ignore[arg-type]
        for pid, wallet in (("buyer", BUYER_WALLET), ("seller", SELLER_WALLET)):
            fields: dict[str, object] = {
                "id": pid, "status": ParticipantStatus.ACTIVE, "category": InvestorCategory.MIFID_PROFESSIONAL,
                "jurisdiction": "DE", "kyc_expiry_ts": NOW + 10**18, "wallet": wallet,
            }
            if pid == trader:
                fields.update(self.participant)
                if not self.known_participant:
                    continue
            gk.upsert_participant(Participant(**fields))  # type: ignore[arg-type]
        cache.set_identity_registry(TOKEN, REGISTRY)
        cache.set_paused(TOKEN, self.paused)
        cash = self.need_cash() * 10 if self.buyer_cash is None else self.buyer_cash
        allowance = self.need_cash() * 10 if self.buyer_allowance is None else self.buyer_allowance
        notes = self.need_notes() * 10 if self.seller_notes is None else self.seller_notes
        note_allowance = notes if self.seller_note_allowance is None else self.seller_note_allowance
        wallets = {
            BUYER_WALLET: (self.buyer_notes, 0, 0, cash, allowance),
            SELLER_WALLET: (notes, self.seller_frozen_notes, note_allowance, 0, 0),
            OTHER_WALLET: (self.other_holder_notes, 0, 0, 0, 0),
        }
        trader_wallet = BUYER_WALLET if trader == "buyer" else SELLER_WALLET
        for wallet, (bal, frozen_notes, note_allow, cash_bal, cash_allow) in wallets.items():
            if wallet == trader_wallet and not self.synced_wallet:
                continue
            mine = wallet == trader_wallet
            cache.set_verified(REGISTRY, wallet, self.verified if mine else True)
            cache.set_country(REGISTRY, wallet, self.country if mine else DE)
            cache.set_frozen(TOKEN, wallet, self.frozen if mine else False)
            cache.set_frozen_tokens(TOKEN, wallet, frozen_notes)
            cache.set_balance(TOKEN, wallet, bal)
            cache.set_allowance(TOKEN, wallet, SETTLE, note_allow)
            cache.set_balance(CASH, wallet, cash_bal)
            cache.set_allowance(CASH, wallet, SETTLE, cash_allow)
        if self.token_refuses:
            cache.track_transferability(TOKEN, (1,))
            for other in sorted(cache.wallets - {trader_wallet.lower()}):
                cache.set_can_transfer(TOKEN, trader_wallet, other, 1, False)  # as a seller
                cache.set_can_transfer(TOKEN, other, trader_wallet, 1, False)  # as a buyer
        cache.mark_synced(10, self.synced_at)
        if self.funding_down:
            gk.share_cash(_DownPool())
        return gk, records


class _DownPool:
    """A shared cash ledger (``venue.funding``) that cannot be reached."""

    def reserve(self, wallet: str, cash_token: str, total: int, limit: int) -> int | None:
        raise ConnectionError("no answer")

    def publish(self, wallet: str, cash_token: str, total: int, *, settled: bool = False) -> None:
        return None
