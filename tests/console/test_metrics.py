"""The metrics module and the /metrics route."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from engine import NewOrder, Side
from gateway import metrics
from gateway.ports import SettlementState
from tests.console.conftest import LiveServer, Signed
from tests.console.fakes import SYMBOL, FakeVenue


def sample(text: str, name: str, labels: dict[str, str] | None = None) -> float:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in (labels or {}).items()):
                return float(s.value)
    raise AssertionError(f"no sample {name} {labels}")


def value(name: str, labels: dict[str, str] | None = None) -> float:
    got = metrics.REGISTRY.get_sample_value(name, labels or {})
    return 0.0 if got is None else got


def test_record_order_counts_by_kind_and_code() -> None:
    before = value("venue_orders_received_total", {"kind": "new"})
    accepted = value("venue_orders_accepted_total", {"kind": "new"})
    halted = value("venue_orders_rejected_total", {"kind": "new", "code": "INSTRUMENT_HALTED"})
    metrics.record_order("new", None)
    metrics.record_order("new", "INSTRUMENT_HALTED")
    assert value("venue_orders_received_total", {"kind": "new"}) == before + 2
    assert value("venue_orders_accepted_total", {"kind": "new"}) == accepted + 1
    assert value("venue_orders_rejected_total", {"kind": "new", "code": "INSTRUMENT_HALTED"}) == halted + 1
    with pytest.raises(ValueError, match="unknown order kind"):
        metrics.record_order("spoof", None)


def test_ws_sessions_gauge() -> None:
    start = value("venue_ws_sessions", {"channel": "trader"})
    metrics.ws_session_opened("trader")
    metrics.ws_session_opened("trader")
    metrics.ws_session_closed("trader")
    assert value("venue_ws_sessions", {"channel": "trader"}) == start + 1
    metrics.ws_session_closed("trader")


def test_observe_venue_counts_trades_and_settlements(server: LiveServer, venue: FakeVenue) -> None:
    stop = server.run(lambda: metrics.observe_venue(venue))
    accepted = value("venue_engine_orders_accepted_total", {"symbol": SYMBOL})
    trades = value("venue_trades_total", {"symbol": SYMBOL})
    lots = value("venue_traded_lots_total", {"symbol": SYMBOL})
    confirmed = value("venue_settlement_transitions_total", {"state": "confirmed"})
    gas = value("venue_settlement_gas_used_total")
    for participant, side in (("alice", Side.SELL), ("bob", Side.BUY)):
        cmd = NewOrder(ts=0, participant=participant, symbol=SYMBOL, side=side, qty=4, price=10_000)
        outcome = server.call(venue.submit(participant, cmd))
    assert outcome.result is not None
    fill = next(e for e in outcome.result.events if type(e).__name__ == "Fill")
    server.run(lambda: venue.settle(fill.trade_id, SettlementState.CONFIRMED, tx_hash="0x1", gas_used=1000))
    server.run(stop)
    server.run(lambda: venue.settle(fill.trade_id, SettlementState.CONFIRMED, tx_hash="0x1", gas_used=1000))
    assert value("venue_engine_orders_accepted_total", {"symbol": SYMBOL}) == accepted + 2
    assert value("venue_trades_total", {"symbol": SYMBOL}) == trades + 1
    assert value("venue_traded_lots_total", {"symbol": SYMBOL}) == lots + 4
    assert value("venue_settlement_transitions_total", {"state": "confirmed"}) == confirmed + 1  # not after stop
    assert value("venue_settlement_gas_used_total") == gas + 1000


def test_metrics_endpoint_has_venue_state_and_request_latency(
    server: LiveServer, venue: FakeVenue, op_auth: Signed
) -> None:
    with httpx.Client(base_url=server.url) as client:
        client.get("/console/api/instruments")  # 401, still timed under its route template
        client.get("/v1/operator/instruments/OMN-2027", auth=op_auth)
        client.post(f"/v1/operator/instruments/{SYMBOL}/status", json={"status": "halted"}, auth=op_auth)
        for _ in range(2):
            cmd = NewOrder(ts=0, participant="alice", symbol=SYMBOL, side=Side.SELL, qty=1, price=10_000)
            server.call(venue.submit("alice", cmd))
        client.get("/no/such/path")
        resp = client.get("/metrics")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain")
    text = resp.text
    assert sample(text, "venue_instrument_status", {"symbol": SYMBOL, "status": "halted"}) == 1
    assert sample(text, "venue_instrument_status", {"symbol": SYMBOL, "status": "open"}) == 0
    assert sample(text, "venue_settlements", {"state": "pending"}) == 0
    assert sample(text, "venue_rejections_total", {"code": "INSTRUMENT_HALTED"}) == 2
    assert sample(text, "venue_reconciliation_ok") == 1
    assert sample(text, "venue_http_requests_total",
                  {"route": "/v1/operator/instruments/{symbol}", "status": "200"}) >= 1
    assert sample(text, "venue_http_requests_total", {"route": "/console/api/instruments", "status": "401"}) >= 1
    assert sample(text, "venue_http_requests_total", {"route": "unmatched", "status": "404"}) >= 1
    assert sample(text, "venue_http_request_duration_seconds_count",
                  {"route": "/v1/operator/instruments/{symbol}"}) >= 1
    assert "/v1/operator/instruments/OMN-2027" not in text  # templates, never raw paths
