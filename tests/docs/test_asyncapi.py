"""docs/api/asyncapi.yaml says what the code does: ops, channels, close codes, login and order fields."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from gateway import framing, mm_routes, offbook_routes, ws
from gateway.config import GatewayConfig
from gateway.mm import CancelAfterRequest, MassQuoteRequest, MmpConfigRequest, MmpResetRequest
from gateway.schemas import AmendRequest, CancelRequest, MassCancelRequest, NewOrderRequest
from gateway.streams import PRIVATE_CHANNELS, PUBLIC_CHANNELS
from market import SettlementState

DOC: dict[str, Any] = yaml.safe_load(
    (Path(__file__).resolve().parents[2] / "docs" / "api" / "asyncapi.yaml").read_text())
MESSAGES: dict[str, Any] = DOC["components"]["messages"]


def _fields(name: str) -> set[str]:
    return set(MESSAGES[name]["payload"]["properties"]) - {"op", "req_id"}


def test_document_is_asyncapi_3_with_every_message_on_the_channel() -> None:
    assert DOC["asyncapi"].startswith("3.")
    refs = {ref["$ref"].rsplit("/", 1)[1] for ref in DOC["channels"]["session"]["messages"].values()}
    assert refs == set(MESSAGES)


def test_client_ops_are_the_ones_the_session_handles() -> None:
    sent = {m["$ref"].rsplit("/", 1)[1] for m in DOC["operations"]["clientRequests"]["messages"]}
    assert sent == {"login", "heartbeat", "subscribe", "unsubscribe", *ws._ORDER_MODELS, *mm_routes.SYNC_OPS,
                    *offbook_routes.WS_OPS}


def test_channels_are_the_gateway_channels() -> None:
    assert set(MESSAGES["subscribe"]["payload"]["properties"]["channel"]["enum"]) == {
        *PUBLIC_CHANNELS, *PRIVATE_CHANNELS}
    pushes = {m["$ref"].rsplit("/", 1)[1] for m in DOC["operations"]["serverMessages"]["messages"]}
    assert {*PUBLIC_CHANNELS, *PRIVATE_CHANNELS} <= pushes


def test_login_and_order_fields_match_the_models() -> None:
    assert _fields("login") == set(ws.LoginMessage.model_fields) - {"op", "req_id"}
    assert set(MESSAGES["login"]["payload"]["required"]) - {"op"} == {
        name for name, f in ws.LoginMessage.model_fields.items() if f.is_required()} - {"op"}
    for op, model in (("new_order", NewOrderRequest), ("amend", AmendRequest), ("cancel", CancelRequest),
                      ("mass_cancel", MassCancelRequest), ("mass_quote", MassQuoteRequest),
                      ("cancel_after", CancelAfterRequest), ("set_mmp", MmpConfigRequest),
                      ("reset_mmp", MmpResetRequest), ("get_mmp", MmpResetRequest)):
        assert _fields(op) == set(model.model_fields), op


def test_off_book_op_fields_match_the_models() -> None:
    ids = {"rfq_id", "quote_id"}
    for op, model in (("rfq_request", offbook_routes.RfqRequest), ("block_submit", offbook_routes.BlockRequest),
                      ("block_cancel", offbook_routes.BlockCancelRequest)):
        assert _fields(op) == set(model.model_fields), op
    assert _fields("rfq_quote") == set(offbook_routes.QuoteRequest.model_fields) | {"rfq_id"}
    assert _fields("rfq_accept") == set(offbook_routes.AcceptRequest.model_fields) | {"rfq_id"}
    assert _fields("rfq_cancel_quote") == ids and _fields("rfq_cancel") == {"rfq_id"}


def test_close_codes_and_limits_match_the_code() -> None:
    text = " ".join(DOC["info"]["description"].split())
    documented = {int(code) for code in re.findall(r"\b(40\d\d)\b", text)}
    constants = {v for k, v in vars(framing).items() if k.startswith("CLOSE_")}
    assert documented == constants
    cfg = GatewayConfig()
    assert f"within {cfg.login_timeout_s:g} s" in text
    assert f"{cfg.heartbeat_timeout_s:g} s by default" in text
    assert f"{cfg.signature_window_s:g} s by default" in text
    assert f"more than {cfg.ws_pre_login_frames} frames before a login" in text
    assert f"At most {cfg.ws_max_in_flight} order" in text


def test_settlement_states_are_the_vocabulary() -> None:
    states = MESSAGES["settlements"]["payload"]["properties"]["state"]["enum"]
    assert set(states) == {s.value for s in SettlementState}
