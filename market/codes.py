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
    FUNDING_UNAVAILABLE = "FUNDING_UNAVAILABLE"


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
    ResultCode.NOT_ALLOWED_IN_CALL: "IOC, FOK, market orders and crosses are not accepted during a call auction",
    ResultCode.SELF_CROSS: "the buyer and the seller of a cross are the same participant",
    ResultCode.INVALID_TRADE_ORIGIN: "a cross must be an RFQ or a block trade",
    ResultCode.NOT_IN_CALL: "the instrument is not in a call auction",
    ResultCode.BOOK_CROSSED: "the book is crossed: the instrument reopens only through a call auction",
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
    GateCode.FUNDING_UNAVAILABLE: (1405, "the shared cash ledger of a sharded venue did not answer; retry shortly"),
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
    # sharding by instrument (issue 17)
    "INSTRUMENT_NOT_ON_SHARD": (1960, "this venue shard does not trade the instrument; send it to its owner"),
}

# Request-for-quote and negotiated block trades (``venue.rfq``, ``venue.blocks``): refusals before
# the engine. The Cross they print is then answered by the engine like any command.
_GATE_OFF_BOOK: dict[str, tuple[int, str]] = {
    "RFQ_NOT_ALLOWED": (1701, "this instrument does not take requests for quotes"),
    "RFQ_NO_RESPONDERS": (1702, "no participant is eligible to quote the other side of this request"),
    "RFQ_MIN_QTY_INVALID": (1703, "the minimum quantity must be positive and at most the requested quantity"),
    "RFQ_EXPIRY_INVALID": (1704, "the time to live is outside what the instrument allows"),
    "RFQ_TOO_MANY_OPEN": (1705, "the participant has too many open requests for quotes"),
    "RFQ_UNKNOWN": (1706, "no such request for quotes (or it was not sent to this participant)"),
    "RFQ_NOT_OPEN": (1707, "the request for quotes is no longer open"),
    "RFQ_EXPIRED": (1708, "the request for quotes has expired"),
    "RFQ_OWN_REQUEST": (1709, "a participant cannot quote its own request"),
    "RFQ_QUOTE_SIZE": (1710, "the quote's quantity is outside the request's minimum and requested quantity"),
    "RFQ_QUOTE_UNKNOWN": (1711, "no such live quote on this request"),
    "RFQ_QUOTE_EXPIRED": (1712, "the quote has expired"),
    "RFQ_NOT_REQUESTER": (1713, "only the participant who requested the quotes may accept or cancel them"),
    "BLOCK_NOT_ALLOWED": (1720, "this instrument does not take negotiated block trades"),
    "BLOCK_TOO_SMALL": (1721, "the quantity is below the instrument's minimum block size"),
    "BLOCK_SELF_TRADE": (1722, "the counterparty of a block trade must be another participant"),
    "BLOCK_COUNTERPARTY_UNKNOWN": (1723, "the named counterparty is not a participant of the venue"),
    "BLOCK_TERMS_MISMATCH": (1724, "the two sides of the block trade do not agree on its terms"),
    "BLOCK_ALREADY_SUBMITTED": (1725, "this participant already submitted its side of this block trade"),
    "BLOCK_EXPIRED": (1726, "the other side did not confirm the block trade in time"),
    "BLOCK_UNKNOWN": (1727, "no such pending block trade of this participant"),
    "BLOCK_CLOSED": (1728, "this block id was already used by these two participants"),
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
    # keys (venue.registry): a revoked key's websocket sessions are closed with this reason
    "KEY_REVOKED": (2950, "the API key was revoked"),
    # investor-signed orders
    "SIGNED_ORDER_MALFORMED": (2701, "the signed_order object is not well formed"),
    # gateway processes (venue gateway, venue.gatewayproc / venue.remote)
    "LEADER_UNAVAILABLE": (2850, "no venue leader answered the forwarded request in time; retry"),
    "REMOTE_ERROR": (2851, "the venue leader failed to process the forwarded request"),
    "REMOTE_BAD_REQUEST": (2852, "the venue leader could not decode the forwarded request"),
    # server side
    "VENUE_ERROR": (2901, "the venue could not process the command; retry later"),
    "INTERNAL_ERROR": (2902, "internal error"),
}

_SETTLEMENT: dict[str, tuple[int, str]] = {
    "SETTLEMENT_ERROR": (3001, "settlement failed"),
    "NO_WALLET_AFTER_RESTART": (3002, "a party of the trade had no wallet when the venue restarted"),
    "TRADE_CHECK_FAILED": (3003, "a party was no longer eligible or funded when the trade was checked"),
    "SETTLEMENT_SETTINGS_MISMATCH": (3004, "the settler's finality/confirmations differ from the leader's"),
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
    # request for quotes and block trades (operator console)
    "OFF_BOOK_CANCELLED_BY_OPERATOR": (4601, "an operator cancelled the request for quotes or block trade"),
    "STORE_UNAVAILABLE": (4051, "the venue's database cannot be reached; retry later"),
    # leader and standby on NATS JetStream (venue.ha)
    "HA_ROLE_INVALID": (4701, "the role must be auto, leader or standby"),
    "HA_NEEDS_NATS": (4702, "leader/standby roles need the replicated journal (journal_url = nats://...)"),
    "LEASE_HELD": (4703, "another process holds the leader lease"),
    "HA_CLAIM_FAILED": (4704, "the stream kept moving: this process could not fence out the previous leader"),
    "SHARD_MAP_INVALID": (4705, "the shard map is malformed, or names no such shard, or gives an instrument twice"),
    # onboarding, keys and listings (venue.registry: CLI and operator API alike)
    "INVALID_JURISDICTION": (4201, "not an ISO 3166-1 alpha-2 country code"),
    "INVALID_WALLET": (4202, "not a 0x address with a valid EIP-55 checksum"),
    "WALLET_IN_USE": (4203, "the wallet already belongs to another participant"),
    "PARTICIPANT_EXISTS": (4204, "a participant with this id exists"),
    "INVALID_CATEGORY": (4205, "not an investor category the venue knows"),
    "INVALID_KYC": (4206, "the KYC validity is invalid"),
    "KEY_NOT_FOUND": (4207, "no such API key"),
    "INVALID_LISTING_RULE": (4208, "a listing rule has an invalid value"),
    "INVALID_NUMBER": (4210, "not a positive decimal number of whole base units"),
    "INVALID_BAND": (4211, "the price band is invalid"),
    "INVALID_SIZE": (4212, "need 0 < min qty <= max qty"),
    "PARTICIPANT_CLOSED": (4213, "the participant was offboarded"),
    "ADMIN_KEY_MISSING": (4214, "no chain admin key is configured (admin_key or admin_key_file)"),
    "CHAIN_KEY_INVALID": (4215, "a configured chain key is not a 32-byte hex private key"),
    "EPHEMERAL_CHAIN": (4216, "an in-process or anvil chain lives only as long as the venue"),
    "MIGRATION_FAILED": (4217, "the database schema could not be upgraded"),
    "INVALID_RECORD": (4218, "the record does not fit the schema"),
    "INVALID_PARTICIPANT_ID": (4219, "participant ids are 1-64 letters, digits, '-', '_' or '.'"),
    # records, register of holders, audit anchoring (venue.exports, venue.holders, venue.anchor)
    "EXPORT_UNKNOWN_KIND": (4301, "unknown record export (rts22 or rts24)"),
    "EXPORT_BAD_DATE": (4302, "the export date must be a day as YYYY-MM-DD"),
    "UNKNOWN_TRADE": (4303, "no such trade of this participant"),
    "REGISTER_CHAIN_ERROR": (4310, "the chain could not be read for the register of holders"),
    "ANCHOR_NONE": (4320, "the audit log has no on-chain anchor yet"),
    "ANCHOR_CHAIN_BROKEN": (4321, "the audit log's hash chain does not verify"),
    "ANCHOR_TX_NOT_FOUND": (4322, "the anchor transaction is not on the chain"),
    "ANCHOR_MISMATCH": (4323, "the hash in the anchor transaction differs from the recomputed audit chain"),
    "ANCHOR_FAILED": (4324, "the audit head could not be written on-chain"),
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
    tables = ((Stage.GATE, _GATE_VENUE), (Stage.GATE, _GATE_OFF_BOOK), (Stage.GATEWAY, _GATEWAY),
              (Stage.SETTLEMENT, _SETTLEMENT),
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
