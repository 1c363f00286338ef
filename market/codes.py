"""Every stable error code of the venue, banded by the stage that answers with it, each with its
default human message beside it (exchange-core ``CommandResultCode`` style).

    0    - 999   engine      ``engine.ResultCode`` (declared in ``engine``, which imports nothing of ours)
    1000 - 1999  gate        eligibility and funding (compliance) before the engine
    2000 - 2999  gateway     request shape, authentication, protocol, server faults
    3000 - 3999  settlement  why a trade did not settle
    4000 - 4999  operator    operator actions

Clients see the NAME (``"POST_ONLY_WOULD_CROSS"``); names and numbers are both stable API: never
rename or renumber a code, add new ones. A name is registered once, in one band. The message
here is the default; a stage may return a more specific message with the same code.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum, unique

from engine import ResultCode


class Stage(StrEnum):
    ENGINE = "engine"
    GATE = "gate"
    GATEWAY = "gateway"
    SETTLEMENT = "settlement"
    OPERATOR = "operator"


BANDS: dict[Stage, range] = {
    Stage.ENGINE: range(0, 1000),
    Stage.GATE: range(1000, 2000),
    Stage.GATEWAY: range(2000, 3000),
    Stage.SETTLEMENT: range(3000, 4000),
    Stage.OPERATOR: range(4000, 5000),
}


@dataclass(frozen=True, slots=True)
class Code:
    name: str
    number: int
    stage: Stage
    message: str


@unique
class GateCode(StrEnum):
    """Gate (compliance) refusals. Value equals name. The order of the members is compliance's
    precedence (``compliance.codes.PRECEDENCE``): the earliest failing condition is reported.
    An unknown instrument is the engine's ``UNKNOWN_INSTRUMENT``, one spelling for clients."""

    UNKNOWN_INSTRUMENT = "UNKNOWN_INSTRUMENT"
    INVALID_ORDER = "INVALID_ORDER"
    PARTICIPANT_UNKNOWN = "PARTICIPANT_UNKNOWN"
    PARTICIPANT_SUSPENDED = "PARTICIPANT_SUSPENDED"
    NO_WALLET = "NO_WALLET"
    KYC_EXPIRED = "KYC_EXPIRED"
    CATEGORY_NOT_ALLOWED = "CATEGORY_NOT_ALLOWED"
    JURISDICTION_BLOCKED = "JURISDICTION_BLOCKED"
    JURISDICTION_NOT_ALLOWED = "JURISDICTION_NOT_ALLOWED"
    INSTRUMENT_MATURED = "INSTRUMENT_MATURED"
    CHAIN_STATE_STALE = "CHAIN_STATE_STALE"
    CHAIN_STATE_UNKNOWN = "CHAIN_STATE_UNKNOWN"
    TOKEN_PAUSED = "TOKEN_PAUSED"
    IDENTITY_NOT_VERIFIED = "IDENTITY_NOT_VERIFIED"
    COUNTRY_MISMATCH = "COUNTRY_MISMATCH"
    WALLET_FROZEN = "WALLET_FROZEN"
    TOKEN_COMPLIANCE_REFUSED = "TOKEN_COMPLIANCE_REFUSED"
    LOCKED_UP = "LOCKED_UP"
    ORDER_TOO_SMALL = "ORDER_TOO_SMALL"
    ORDER_TOO_LARGE = "ORDER_TOO_LARGE"
    PROTECTION_PRICE_REQUIRED = "PROTECTION_PRICE_REQUIRED"
    HOLDING_CAP_EXCEEDED = "HOLDING_CAP_EXCEEDED"
    MAX_HOLDERS_REACHED = "MAX_HOLDERS_REACHED"
    INSUFFICIENT_CASH = "INSUFFICIENT_CASH"
    INSUFFICIENT_ALLOWANCE = "INSUFFICIENT_ALLOWANCE"
    INSUFFICIENT_NOTES = "INSUFFICIENT_NOTES"
    INSUFFICIENT_NOTE_ALLOWANCE = "INSUFFICIENT_NOTE_ALLOWANCE"


_ENGINE: dict[ResultCode, str] = {
    ResultCode.OK: "ok",
    ResultCode.UNKNOWN_INSTRUMENT: "unknown instrument",
    ResultCode.INSTRUMENT_EXISTS: "instrument already exists",
    ResultCode.INSTRUMENT_NOT_OPEN: "instrument is not open for trading yet (pre-open)",
    ResultCode.INSTRUMENT_HALTED: "instrument is halted",
    ResultCode.INSTRUMENT_CLOSED: "instrument is closed",
    ResultCode.INVALID_STATUS_TRANSITION: "this status change is not allowed from the current status",
    ResultCode.INVALID_INSTRUMENT_SPEC: "invalid instrument specification",
    ResultCode.INVALID_QUANTITY: "quantity must be positive",
    ResultCode.QUANTITY_BELOW_MIN: "quantity is below the instrument's minimum order size",
    ResultCode.QUANTITY_ABOVE_MAX: "quantity is above the instrument's maximum order size",
    ResultCode.INVALID_PRICE: "price must be positive",
    ResultCode.PRICE_OUTSIDE_BAND: "price is outside the instrument's price band",
    ResultCode.MISSING_PRICE: "a limit order needs a price",
    ResultCode.MISSING_EXPIRY: "a GTD order needs expire_ts",
    ResultCode.EXPIRY_IN_PAST: "expire_ts is in the past",
    ResultCode.INVALID_ORDER_FLAGS: "invalid combination of order type, time in force, post-only and expiry",
    ResultCode.POST_ONLY_WOULD_CROSS: "post-only order would cross the book",
    ResultCode.FOK_NOT_FILLABLE: "fill-or-kill order cannot be filled completely",
    ResultCode.NO_LIQUIDITY: "no liquidity within the protection price",
    ResultCode.UNKNOWN_ORDER: "unknown order",
    ResultCode.AMEND_NO_CHANGE: "amend changes nothing",
    ResultCode.AMEND_QTY_TOO_LOW: "new quantity must be above the filled quantity",
    ResultCode.INVALID_TIME: "command time is earlier than the engine clock",
}

_GATE: dict[GateCode, tuple[int, str]] = {
    # UNKNOWN_INSTRUMENT is the engine's code (101)
    GateCode.INVALID_ORDER: (1001, "the order is not valid for this instrument"),
    GateCode.PARTICIPANT_UNKNOWN: (1101, "the participant is not known to the venue"),
    GateCode.PARTICIPANT_SUSPENDED: (1102, "the participant is suspended"),
    GateCode.NO_WALLET: (1103, "the participant has no settlement wallet"),
    GateCode.KYC_EXPIRED: (1104, "the participant's KYC has expired"),
    GateCode.CATEGORY_NOT_ALLOWED: (1105, "the participant's investor category may not trade this instrument"),
    GateCode.JURISDICTION_BLOCKED: (1106, "the participant's jurisdiction is blocked for this instrument"),
    GateCode.JURISDICTION_NOT_ALLOWED: (1107, "the participant's jurisdiction is not allowed for this instrument"),
    GateCode.INSTRUMENT_MATURED: (1108, "the instrument has matured: trading has ended"),
    GateCode.CHAIN_STATE_STALE: (1201, "the venue's view of the chain is stale; retry shortly"),
    GateCode.CHAIN_STATE_UNKNOWN: (1202, "the venue has no chain state for this wallet or token yet"),
    GateCode.TOKEN_PAUSED: (1203, "the token is paused on chain"),
    GateCode.IDENTITY_NOT_VERIFIED: (1204, "the wallet's identity is not verified in the on-chain registry"),
    GateCode.COUNTRY_MISMATCH: (1205, "the on-chain investor country differs from the participant's jurisdiction"),
    GateCode.WALLET_FROZEN: (1206, "the wallet is frozen on chain"),
    GateCode.TOKEN_COMPLIANCE_REFUSED: (1207, "the token's own compliance (canTransfer) would refuse the transfer"),
    GateCode.LOCKED_UP: (1301, "the instrument is in its lock-up period: sells are refused"),
    GateCode.ORDER_TOO_SMALL: (1302, "the order is below the instrument's minimum size"),
    GateCode.ORDER_TOO_LARGE: (1303, "the order is above the instrument's maximum size"),
    GateCode.PROTECTION_PRICE_REQUIRED: (1304, "a market buy needs a protection price to reserve cash"),
    GateCode.HOLDING_CAP_EXCEEDED: (1305, "the order would take the holding above the instrument's cap"),
    GateCode.MAX_HOLDERS_REACHED: (1306, "the instrument has reached its maximum number of holders"),
    GateCode.INSUFFICIENT_CASH: (1401, "not enough cash for this order and the open ones"),
    GateCode.INSUFFICIENT_ALLOWANCE: (1402, "the cash allowance for the settlement contract is too low"),
    GateCode.INSUFFICIENT_NOTES: (1403, "not enough notes for this order and the open ones"),
    GateCode.INSUFFICIENT_NOTE_ALLOWANCE: (1404, "the note allowance for the settlement contract is too low"),
}

# Refusals of the venue's gate stage that are not compliance rules.
_GATE_VENUE: dict[str, tuple[int, str]] = {
    "AMEND_IN_FLIGHT": (1901, "the order has an amend in flight; retry when it is answered"),
    "SETTLEMENT_BACKLOG": (1902, "too much notional is waiting for settlement; retry when trades settle"),
    "PRICE_OUTSIDE_NAV_COLLAR": (1903, "the price is outside the instrument's collar around its NAV"),
    # investor-signed orders (issue 16)
    "SIGNED_ORDER_REQUIRED": (1801, "this participant or instrument requires an order signed by the wallet"),
    "SIGNED_ORDER_BAD_SIGNATURE": (1802, "the signed order's signature is not the participant's wallet's"),
    "SIGNED_ORDER_MISMATCH": (1803, "the signed order's fields do not match the submitted order"),
    "SIGNED_ORDER_EXPIRED": (1804, "the signed order has expired"),
    "SIGNED_ORDER_AMEND_BEYOND": (1805, "the amend goes beyond the signed order's limit price or maximum quantity"),
    "SIGNED_ORDERS_UNAVAILABLE": (1806, "the venue has no settlement contract to check signed orders against"),
    "SIGNED_ORDER_REUSED": (1807, "this signed order is already attached to another order"),
    "STORE_BACKLOG": (1951, "the venue's database is behind; new orders are refused until it catches up"),
}

_GATEWAY: dict[str, tuple[int, str]] = {
    # request shape
    "MALFORMED_JSON": (2001, "the body is not valid JSON"),
    "UNKNOWN_FIELD": (2002, "the request has a field this endpoint does not know"),
    "MISSING_FIELD": (2003, "a required field is missing"),
    "INVALID_FIELD": (2004, "a field has an invalid value"),
    "INVALID_DECIMAL": (2005, "a decimal field is not a plain decimal number"),
    "VALUE_TOO_LARGE": (2006, "a value is too large"),
    "WRONG_TICK": (2007, "the price is not a multiple of the instrument's tick"),
    "WRONG_LOT": (2008, "the quantity is not a multiple of the instrument's lot"),
    "BODY_TOO_LARGE": (2009, "the request body is too large"),
    "CLIENT_ORDER_ID_REUSED": (2010, "the client order id was already used for a different order"),
    "DUPLICATE_JSON_KEY": (2011, "a key appears more than once in one JSON object"),
    "REQUEST_TIMEOUT": (2012, "the request body did not arrive in time"),
    # auth
    "MISSING_AUTH": (2101, "the request is not signed"),
    "UNKNOWN_KEY": (2102, "unknown API key"),
    "BAD_SIGNATURE": (2103, "the signature does not verify"),
    "EXPIRED_SIGNATURE": (2104, "the signature timestamp is outside the accepted window"),
    "REPLAYED_REQUEST": (2105, "this signed request was already seen"),
    "FORBIDDEN": (2106, "this API key may not do this"),
    "RATE_LIMITED": (2107, "too many requests; retry later"),
    # routing
    "NOT_FOUND": (2201, "not found"),
    "METHOD_NOT_ALLOWED": (2202, "method not allowed"),
    # websocket protocol
    "NOT_LOGGED_IN": (2301, "log in first"),
    "ALREADY_LOGGED_IN": (2302, "this session is already logged in"),
    "UNKNOWN_OP": (2303, "unknown op"),
    "UNKNOWN_CHANNEL": (2304, "unknown channel"),
    "MESSAGE_TOO_LARGE": (2305, "the message is too large"),
    "TOO_MANY_IN_FLIGHT": (2306, "too many requests in flight on this session"),
    "SUBSCRIBE_RATE_LIMITED": (2307, "too many subscribe/unsubscribe requests on this connection; retry later"),
    # market-maker tools
    "MMP_FROZEN": (2401, "market-maker protection froze quoting on this instrument"),
    "QUOTE_CROSSED": (2402, "a mass quote's best bid is not below its best ask"),
    # investor-signed orders
    "SIGNED_ORDER_MALFORMED": (2701, "the signed_order object is not well formed"),
    # server side
    "VENUE_ERROR": (2901, "the venue could not process the command; retry later"),
    "INTERNAL_ERROR": (2902, "internal error"),
}

_SETTLEMENT: dict[str, tuple[int, str]] = {
    "SETTLEMENT_ERROR": (3001, "settlement failed"),
    "NO_WALLET_AFTER_RESTART": (3002, "a party of the trade had no wallet when the venue restarted"),
    "TRADE_CHECK_FAILED": (3003, "a party was no longer eligible or funded when the trade was checked"),
    "CHAIN_ERROR": (3101, "the chain node failed"),
    "CHAIN_UNAVAILABLE": (3102, "the chain node cannot be reached"),
    "TRANSACTION_REVERTED": (3103, "the settlement transaction reverted"),
    "TRANSACTION_TIMEOUT": (3104, "no receipt in time"),
    "INVALID_TRADE": (3201, "the trade cannot be settled as given (bad address or amount)"),
    "ORDER_CANCELLED_ON_CHAIN": (3601, "the investor cancelled the signed order on chain"),
}

_OPERATOR: dict[str, tuple[int, str]] = {
    "UNKNOWN_PARTICIPANT": (4001, "no such participant"),
    "NO_CHAIN_ADMIN": (4002, "no chain admin is configured"),
    "NO_COMPLIANCE": (4003, "no compliance component is configured"),
    # automatic halts and life cycle (venue.attestations); reasons of a halt, also in the audit log
    "ATTESTATION_STALE": (4101, "the latest NAV or custody attestation is older than the listing allows"),
    "CUSTODY_SHORTFALL": (4102, "the custodian's BTC balance covers less than the BTC accrued to the notes"),
    "UNREGISTERED_SIGNER": (4103, "an attestation from a signer not registered for the series was ignored"),
    "RESUME_REASON_REQUIRED": (4104, "resuming a halted instrument needs a reason"),
    "STORE_UNAVAILABLE": (4051, "the venue's database cannot be reached; retry later"),
}


def _build() -> dict[str, Code]:
    registry: dict[str, Code] = {}

    def add(name: str, number: int, stage: Stage, message: str) -> None:
        if name in registry:
            raise ValueError(f"error code {name} registered twice")
        if number not in BANDS[stage]:
            raise ValueError(f"error code {name}={number} is outside the {stage} band")
        registry[name] = Code(name, number, stage, message)

    for rc, text in _ENGINE.items():
        add(rc.name, rc.value, Stage.ENGINE, text)
    for gate, (number, text) in _GATE.items():
        add(gate.value, number, Stage.GATE, text)
    tables = ((Stage.GATE, _GATE_VENUE), (Stage.GATEWAY, _GATEWAY), (Stage.SETTLEMENT, _SETTLEMENT),
              (Stage.OPERATOR, _OPERATOR))
    for stage, table in tables:
        for name, (number, text) in table.items():
            add(name, number, stage, text)
    numbers = [c.number for c in registry.values()]
    if len(numbers) != len(set(numbers)):
        raise ValueError("two error codes share a number")
    return registry


REGISTRY: dict[str, Code] = _build()

# Old public spellings that clients may have seen, mapped to the code that replaced them.
ALIASES: dict[str, str] = {"INSTRUMENT_UNKNOWN": "UNKNOWN_INSTRUMENT"}


def code_info(name: str) -> Code | None:
    return REGISTRY.get(ALIASES.get(name, name))


def message(name: str) -> str:
    """The default human message of a code (a readable fallback for an unregistered name)."""
    info = code_info(name)
    return info.message if info is not None else name.lower().replace("_", " ")


def engine_message(code: ResultCode) -> str:
    return message(code.name)


def stage_of(name: str) -> Stage | None:
    info = code_info(name)
    return info.stage if info is not None else None


class Unavailable(Exception):
    """A part the venue needs is out of service (e.g. ``STORE_UNAVAILABLE``): answered with 503."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail or message(code)}")
        self.code = code
        self.message = message(code)
