"""Regulatory record exports of one trading day (UTC), as CSV, from the store.

    rts22(store, day, ...)  transaction reports in the shape of MiFIR RTS 22 (Annex I, Table 2): one
                            row per trade, both sides in the row (buyer and seller fields)
    rts24(store, day, ...)  order records in the shape of MiFIR RTS 24 (Annex, Tables 2 and 3): one row
                            per order event (NEWO, PARF, FILL, CAME, EXPI) of every order live that day

Columns are named ``f<field number>_<RTS field name>`` after the RTS tables; venue fields that the
tables have no place for are prefixed ``x_``. docs/records.md maps every column to its RTS field and
to where the value comes from, and says what is not (yet) filled (LEIs of the participants, amends).
Values follow the RTS formats: ISO 8601 UTC timestamps with microseconds and a ``Z``, ISO 4217
currency codes, plain decimals (never floats or exponents).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from store import Instrument, OrderStatus, Participant, SettlementUpdate, Store, StoredOrder, StoredTrade

DEFAULT_MIC = "XOFF"  # ISO 10383 "off exchange": replace with the venue's segment MIC (--mic)


@dataclass(frozen=True, slots=True, kw_only=True)
class ExportOptions:
    mic: str = DEFAULT_MIC  # the venue's (segment) MIC
    executing_entity: str = ""  # LEI of the reporting/operating firm
    currency: str = "USD"  # ISO 4217 of the cash token's unit
    identifiers: Mapping[str, str] | None = None  # symbol -> ISIN (listing metadata); default the token address


RTS22_COLUMNS: tuple[str, ...] = (
    "f1_report_status", "f2_transaction_reference_number", "f3_trading_venue_transaction_id",
    "f4_executing_entity_id", "f7_buyer_id", "f8_buyer_branch_country", "f16_seller_id",
    "f17_seller_branch_country", "f28_trading_date_time", "f29_trading_capacity", "f30_quantity",
    "f33_price", "f34_price_currency", "f35_net_amount", "f36_venue", "f41_instrument_id",
    "f42_instrument_full_name",
    "x_symbol", "x_buy_order_id", "x_sell_order_id", "x_aggressor", "x_buyer_wallet", "x_seller_wallet",
    "x_premium_bps", "x_nav", "x_settlement_status", "x_settlement_tx_hash", "x_settlement_block",
)

RTS24_COLUMNS: tuple[str, ...] = (
    "f1_submitting_entity_id", "f3_client_id", "f7_trading_capacity", "f9_date_time", "f10_validity_period",
    "f11_validity_date_time", "f14_sequence_number", "f15_segment_mic", "f16_order_book_code",
    "f17_instrument_id", "f18_date_of_receipt", "f19_order_id", "f20_order_event", "f21_order_type",
    "f23_limit_price", "f27_transaction_price", "f28_price_currency", "f31_buy_sell_indicator",
    "f32_order_status", "f35_initial_quantity", "f36_remaining_quantity", "f38_traded_quantity",
    "f44_passive_aggressive", "f47_trading_venue_transaction_id",
    "x_client_order_id", "x_reason",
)

_VALIDITY = {"gtc": "GTCV", "ioc": "IOCV", "fok": "FOKV", "gtd": "GTDV", "day": "DAVY"}
_ORDER_TYPE = {"limit": "LMTO", "market": "MAKT"}


class ExportError(ValueError):
    """A bad export request (kind or date); ``code`` is a stable code of ``market.codes``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def day_window(day: str | dt.date) -> tuple[int, int]:
    """[start, end) of a UTC day in ns; ``day`` as ``YYYY-MM-DD``."""
    if isinstance(day, str):
        try:
            day = dt.date.fromisoformat(day)
        except ValueError:
            raise ExportError("EXPORT_BAD_DATE", f"date must be YYYY-MM-DD, got {day!r}") from None
    start = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
    return int(start.timestamp()) * 10**9, int((start + dt.timedelta(days=1)).timestamp()) * 10**9


def utc(ts_ns: int) -> str:
    """ISO 8601 UTC with microseconds, ``Z`` suffix (the RTS format)."""
    stamp = dt.datetime.fromtimestamp(ts_ns // 1000 / 1e6, tz=dt.UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _plain(value: Fraction) -> str:
    text = format(Decimal(value.numerator) / Decimal(value.denominator), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


@dataclass(frozen=True, slots=True)
class Scale:
    price_step: Fraction  # cash per note per tick
    qty_step: Fraction  # notes per lot

    @classmethod
    def of(cls, inst: Instrument) -> Scale:
        qty_step = Fraction(inst.lot_size, 10**inst.token_decimals)
        return cls(price_step=Fraction(inst.tick_size, 10**inst.cash_decimals) / qty_step, qty_step=qty_step)

    def price(self, ticks: int | None) -> str:
        return "" if ticks is None else _plain(ticks * self.price_step)

    def qty(self, lots: int) -> str:
        return _plain(lots * self.qty_step)

    def amount(self, ticks: int, lots: int) -> str:
        return _plain(ticks * self.price_step * lots * self.qty_step)


def _csv(columns: Sequence[str], rows: Iterable[Mapping[str, object]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), lineterminator="\n", extrasaction="raise")
    writer.writeheader()
    for row in rows:
        writer.writerow({c: "" if row.get(c) is None else row.get(c) for c in columns})
    return out.getvalue()


def _context(store: Store) -> tuple[dict[str, Instrument], dict[str, Participant], dict[str, str]]:
    instruments = {i.symbol: i for i in store.list_instruments()}
    participants = {p.id: p for p in store.list_participants()}
    wallets: dict[str, str] = {}
    for w in store.list_wallets():
        wallets.setdefault(w.participant_id, w.address)
    return instruments, participants, wallets


def rts22(store: Store, day: str | dt.date, options: ExportOptions = ExportOptions()) -> str:
    """Transaction reports of every trade printed on ``day`` (UTC), oldest first."""
    since, until = day_window(day)
    instruments, participants, wallets = _context(store)
    trades = store.list_trades(since_ts=since, until_ts=until)
    settlements = store.settlements_of([t.trade_id for t in trades])
    return _csv(RTS22_COLUMNS, (_rts22_row(t, instruments, participants, wallets, settlements.get(t.trade_id),
                                           options) for t in trades))


def _rts22_row(t: StoredTrade, instruments: Mapping[str, Instrument], participants: Mapping[str, Participant],
               wallets: Mapping[str, str], settlement: SettlementUpdate | None, o: ExportOptions) -> dict[str, object]:
    inst = instruments.get(t.symbol)
    scale = Scale.of(inst) if inst is not None else Scale(Fraction(1), Fraction(1))
    trade = t.to_trade()
    country = {p: participants[p].jurisdiction if p in participants else "" for p in (trade.buyer, trade.seller)}
    return {
        "f1_report_status": "NEWT", "f2_transaction_reference_number": f"{o.mic}-{t.trade_id}",
        "f3_trading_venue_transaction_id": t.trade_id, "f4_executing_entity_id": o.executing_entity,
        "f7_buyer_id": trade.buyer, "f8_buyer_branch_country": country[trade.buyer],
        "f16_seller_id": trade.seller, "f17_seller_branch_country": country[trade.seller],
        "f28_trading_date_time": utc(t.ts), "f29_trading_capacity": "DEAL",
        "f30_quantity": scale.qty(t.qty), "f33_price": scale.price(t.price), "f34_price_currency": o.currency,
        "f35_net_amount": scale.amount(t.price, t.qty), "f36_venue": o.mic,
        "f41_instrument_id": _identifier(t.symbol, inst, o), "f42_instrument_full_name": inst.name if inst else "",
        "x_symbol": t.symbol, "x_buy_order_id": trade.buy_order_id, "x_sell_order_id": trade.sell_order_id,
        "x_aggressor": trade.aggressor.name.lower(), "x_buyer_wallet": wallets.get(trade.buyer),
        "x_seller_wallet": wallets.get(trade.seller), "x_premium_bps": t.premium_bps, "x_nav": t.nav,
        "x_settlement_status": (settlement.status if settlement else t.settlement_status).value,
        "x_settlement_tx_hash": settlement.tx_hash if settlement else None,
        "x_settlement_block": settlement.block if settlement else None,
    }


def _identifier(symbol: str, inst: Instrument | None, o: ExportOptions) -> str:
    if o.identifiers and o.identifiers.get(symbol):
        return o.identifiers[symbol]
    return inst.token_address if inst is not None else symbol


def rts24(store: Store, day: str | dt.date, options: ExportOptions = ExportOptions()) -> str:
    """Order records: every event of ``day`` (UTC) of every order live that day, in time order
    (ties: order id, then NEWO before fills before the end)."""
    since, until = day_window(day)
    instruments, _, _ = _context(store)
    orders = store.list_orders(active_since_ts=since, active_until_ts=until)
    by_id = {o.order_id: o for o in orders}
    fills: dict[int, list[StoredTrade]] = {}
    for t in store.list_trades(since_ts=since, until_ts=until):
        trade = t.to_trade()
        for order_id in {trade.buy_order_id, trade.sell_order_id}:
            if order_id in by_id:
                fills.setdefault(order_id, []).append(t)
    events: list[tuple[int, int, int, dict[str, object]]] = []
    for order in orders:
        events.extend(_order_events(order, fills.get(order.order_id, []), instruments.get(order.symbol), options))
    rows = []
    # time order; at one instant an order's entry first, then the fills (by trade, maker before taker)
    # it caused, then cancels and expiries
    for seq, (_, _, _, row) in enumerate(sorted((e for e in events if since <= e[0] < until),
                                                key=_event_order), start=1):
        row["f14_sequence_number"] = seq
        rows.append(row)
    return _csv(RTS24_COLUMNS, rows)


def _event_order(event: tuple[int, int, int, dict[str, object]]) -> tuple[int, int, int, int, int]:
    ts, order_id, kind, row = event
    trade = row.get("f47_trading_venue_transaction_id")
    passive = 0 if row.get("f44_passive_aggressive") == "PASV" else 1
    return ts, kind, trade if isinstance(trade, int) else 0, passive, order_id


def _order_events(order: StoredOrder, fills: list[StoredTrade], inst: Instrument | None,
                  o: ExportOptions) -> list[tuple[int, int, int, dict[str, object]]]:
    scale = Scale.of(inst) if inst is not None else Scale(Fraction(1), Fraction(1))
    base: dict[str, object] = {
        "f1_submitting_entity_id": order.participant, "f3_client_id": order.participant,
        "f7_trading_capacity": "DEAL", "f10_validity_period": _VALIDITY.get(order.tif, order.tif.upper()),
        "f11_validity_date_time": utc(order.expire_ts) if order.expire_ts else None, "f15_segment_mic": o.mic,
        "f16_order_book_code": order.symbol, "f17_instrument_id": _identifier(order.symbol, inst, o),
        "f18_date_of_receipt": utc(order.accepted_ts)[:10], "f19_order_id": order.order_id,
        "f21_order_type": _ORDER_TYPE.get(order.order_type, order.order_type.upper()),
        "f23_limit_price": scale.price(order.price), "f28_price_currency": o.currency,
        "f31_buy_sell_indicator": "BUYI" if order.side == "buy" else "SELL",
        "f35_initial_quantity": scale.qty(order.qty), "x_client_order_id": order.client_order_id,
    }
    remaining = order.qty
    out: list[tuple[int, int, int, dict[str, object]]] = [(order.accepted_ts, order.order_id, 0, {
        **base, "f9_date_time": utc(order.accepted_ts), "f20_order_event": "NEWO", "f32_order_status": "ACTI",
        "f36_remaining_quantity": scale.qty(order.qty), "f38_traded_quantity": "0"})]
    for t in sorted(fills, key=lambda f: f.trade_id):
        remaining -= t.qty
        aggressor_is_buy = t.aggressor == "buy"
        out.append((t.ts, order.order_id, 1, {
            **base, "f9_date_time": utc(t.ts), "f20_order_event": "FILL" if remaining <= 0 else "PARF",
            "f27_transaction_price": scale.price(t.price), "f32_order_status": "ACTI" if remaining > 0 else "INAC",
            "f36_remaining_quantity": scale.qty(max(remaining, 0)), "f38_traded_quantity": scale.qty(t.qty),
            "f44_passive_aggressive": "AGRE" if aggressor_is_buy == (order.side == "buy") else "PASV",
            "f47_trading_venue_transaction_id": t.trade_id}))
    if order.status in (OrderStatus.CANCELLED, OrderStatus.EXPIRED):
        out.append((order.updated_ts, order.order_id, 2, {
            **base, "f9_date_time": utc(order.updated_ts),
            "f20_order_event": "EXPI" if order.status is OrderStatus.EXPIRED else "CAME", "f32_order_status": "INAC",
            "f36_remaining_quantity": "0", "f38_traded_quantity": "0", "x_reason": order.reason}))
    return out


EXPORTS = {"rts22": rts22, "rts24": rts24}


def export(store: Store, kind: str, day: str | dt.date, options: ExportOptions = ExportOptions()) -> str:
    fn = EXPORTS.get(kind.lower())
    if fn is None:
        raise ExportError("EXPORT_UNKNOWN_KIND", f"unknown export {kind!r}: one of {', '.join(EXPORTS)}")
    return fn(store, day, options)


__all__ = ["DEFAULT_MIC", "EXPORTS", "RTS22_COLUMNS", "RTS24_COLUMNS", "ExportError", "ExportOptions", "Scale",
           "day_window", "export", "rts22", "rts24", "utc"]
