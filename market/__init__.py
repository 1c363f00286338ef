"""The venue's shared vocabulary: the nouns every stage exchanges, and the one error-code registry.

``market`` sits directly above ``engine`` and imports nothing else of ours, so every package
(compliance, settlement, store, gateway, venue) may use it. Nothing here does I/O.

    model.py   Listing, Trade (built only from an engine Fill), SettlementState/SettlementUpdate,
               SettlementNotice, Role/ApiKey, ParticipantId/Wallet, Rejection, Outcome, OrderAck
    codes.py   every stable error code, banded by stage, each with its human message
    history.py TradeQuery, Page, OrderRecord and the opaque trade cursor (history reads)
    offbook.py requests for quotes, quotes and block trades (their states and notices), and
               OffBookRefused, the refusal their desks raise with a stable code
"""

from market.codes import Code, Stage, code_info, engine_message, message
from market.history import (
    CursorError,
    HistoricTrade,
    OrderRecord,
    Page,
    TradeQuery,
    decode_cursor,
    encode_cursor,
    page_of,
)
from market.model import (
    ApiKey,
    Listing,
    OrderAck,
    OrderStatus,
    Outcome,
    ParticipantId,
    Rejection,
    Role,
    SettlementNotice,
    SettlementState,
    SettlementUpdate,
    Trade,
    Wallet,
    normalise_wallet,
)
from market.offbook import (
    BlockState,
    BlockTrade,
    OffBookNotice,
    OffBookRefused,
    Quote,
    QuoteState,
    Rfq,
    RfqState,
)

__all__ = [
    "ApiKey",
    "BlockState",
    "BlockTrade",
    "Code",
    "CursorError",
    "HistoricTrade",
    "Listing",
    "OffBookNotice",
    "OffBookRefused",
    "OrderAck",
    "OrderRecord",
    "OrderStatus",
    "Outcome",
    "Page",
    "ParticipantId",
    "Quote",
    "QuoteState",
    "Rejection",
    "Rfq",
    "RfqState",
    "Role",
    "SettlementNotice",
    "SettlementState",
    "SettlementUpdate",
    "Stage",
    "Trade",
    "TradeQuery",
    "Wallet",
    "code_info",
    "decode_cursor",
    "encode_cursor",
    "engine_message",
    "message",
    "normalise_wallet",
    "page_of",
]
