"""The consistency rules: a clean run passes, and each kind of damage is reported."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from loadtests.check import check


def _trade(trade_id: int, buyer: str, seller: str, buy_order: int, sell_order: int, **extra: Any) -> dict[str, Any]:
    return {"trade_id": trade_id, "buyer": buyer, "seller": seller, "buy_order_id": buy_order,
            "sell_order_id": sell_order, "price": "45000.01", "qty": "2", "settlement": "confirmed",
            "reason": None, "core_settlement": "confirmed", **extra}


def _fill(participant: str, trade: dict[str, Any], side: str) -> dict[str, Any]:
    return {"participant": participant, "trade_id": trade["trade_id"], "side": side,
            "order_id": trade[f"{side}_order_id"], "price": trade["price"], "qty": trade["qty"]}


@pytest.fixture
def run() -> tuple[dict[str, Any], dict[str, Any]]:
    trades = [_trade(1, "inv-1", "mm-1", 10, 4), _trade(2, "mm-1", "inv-2", 5, 11)]
    view: dict[str, Any] = {"trades": trades, "engine_error": None, "gatekeeper_error": None, "crossed": False,
            "best_bid": "44990.00", "best_ask": "45010.00", "open_orders": 0, "open_holds": 0,
            "pending_obligations": 0, "reserved": {}, "drained": True, "store_caught_up": True}
    stream = [_fill(t["buyer"], t, "buy") for t in trades] + [_fill(t["seller"], t, "sell") for t in trades]
    observed = {"stream_fills": stream, "ack_fills": [_fill("inv-1", trades[0], "buy")]}
    return view, observed


def test_clean_run_passes(run: tuple[dict[str, Any], dict[str, Any]]) -> None:
    result = check(*run)
    assert result.ok, result.problems
    assert result.counts["trades"] == 2 and result.counts["fills_streamed"] == 4 and result.counts["settled"] == 2


def test_lost_fill(run: tuple[dict[str, Any], dict[str, Any]]) -> None:
    view, observed = run
    del observed["stream_fills"][1]
    result = check(view, observed)
    assert not result.ok and result.problems[0].startswith("lost fill: ('mm-1', 2, 'buy'")


def test_duplicated_fill(run: tuple[dict[str, Any], dict[str, Any]]) -> None:
    view, observed = run
    observed["stream_fills"].append(dict(observed["stream_fills"][0]))
    assert [p.split(":")[0] for p in check(view, observed).problems] == ["duplicated fill"]


def test_fill_that_differs_from_the_trade(run: tuple[dict[str, Any], dict[str, Any]]) -> None:
    view, observed = run
    observed["stream_fills"][0]["qty"] = "3"
    kinds = sorted(p.split(":")[0] for p in check(view, observed).problems)
    assert kinds == ["lost fill", "unknown fill"]


def test_ack_fill_of_no_trade(run: tuple[dict[str, Any], dict[str, Any]]) -> None:
    view, observed = run
    observed["ack_fills"].append({**observed["ack_fills"][0], "trade_id": 99})
    assert [p.split(":")[0] for p in check(view, observed).problems] == ["unknown ack fill"]


def test_duplicated_trade_row(run: tuple[dict[str, Any], dict[str, Any]]) -> None:
    view, observed = run
    view["trades"].append(copy.deepcopy(view["trades"][0]))
    assert "duplicated trade" in [p.split(":")[0] for p in check(view, observed).problems]


@pytest.mark.parametrize(("change", "kind"), [
    ({"engine_error": "InvariantError: crossed"}, "engine invariant"),
    ({"crossed": True}, "crossed book"),
    ({"gatekeeper_error": "InvariantError: cash aggregate"}, "reservations"),
    ({"open_holds": 1}, "reservations"),
    ({"pending_obligations": 2}, "reservations"),
    ({"reserved": {"inv-1": 5}}, "reservations"),
    ({"store_caught_up": False}, "store"),
])
def test_venue_side_problems(run: tuple[dict[str, Any], dict[str, Any]], change: dict[str, Any], kind: str) -> None:
    view, observed = run
    result = check({**view, **change}, observed)
    assert not result.ok and [p.split(":")[0] for p in result.problems] == [kind]


def test_reservations_of_open_orders_are_not_leaks(run: tuple[dict[str, Any], dict[str, Any]]) -> None:
    view, observed = run
    assert check({**view, "open_orders": 1, "open_holds": 1, "reserved": {"mm-1": 7}}, observed).ok


@pytest.mark.parametrize(("settlement", "reason", "kind"), [
    ("pending", None, "unsettled"),
    ("submitted", None, "unsettled"),
    ("failed", None, "unexplained failure"),
])
def test_unsettled_or_unexplained(run: tuple[dict[str, Any], dict[str, Any]], settlement: str,
                                  reason: str | None, kind: str) -> None:
    view, observed = run
    view["trades"][1].update(settlement=settlement, reason=reason, core_settlement=settlement)
    assert [p.split(":")[0] for p in check(view, observed).problems] == [kind]


def test_failed_with_reason_is_explained(run: tuple[dict[str, Any], dict[str, Any]]) -> None:
    view, observed = run
    view["trades"][1].update(settlement="failed", reason="TRADE_FAILED: frozen", core_settlement="failed")
    result = check(view, observed)
    assert result.ok and result.counts["failed_explained"] == 1


def test_core_and_store_disagree(run: tuple[dict[str, Any], dict[str, Any]]) -> None:
    view, observed = run
    view["trades"][0]["core_settlement"] = "submitted"
    assert [p.split(":")[0] for p in check(view, observed).problems] == ["settlement mismatch"]


def test_many_problems_are_summarised(run: tuple[dict[str, Any], dict[str, Any]]) -> None:
    view, _ = run
    view["trades"] = [_trade(i, "inv-1", "mm-1", 100 + i, 200 + i) for i in range(1, 31)]
    problems = check(view, {"stream_fills": [], "ack_fills": []}).problems
    assert len(problems) == 11 and problems[-1] == "lost fill: 50 more"


def test_crossed_market_data_book(run: tuple[dict[str, Any], dict[str, Any]]) -> None:
    view, observed = run
    result = check(view, {**observed, "md_crossed": 3})
    assert result.problems == ["crossed book: a subscriber's local book was crossed after 3 deltas"]


def test_final_trades_are_settled(run: tuple[dict[str, Any], dict[str, Any]]) -> None:
    """With finality tracking a confirmed trade moves on to ``final``: settled, not still pending."""
    view, observed = run
    view["trades"][0].update(settlement="final", core_settlement="final")
    result = check(view, observed)
    assert result.ok, result.problems
    assert result.counts["settled"] == 2
