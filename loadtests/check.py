"""Consistency rules after a load run: the venue's own view against what the clients observed.

``check(view, observed)``: ``view`` is ``loadtests.host.venue_view`` (engine, gatekeeper, the store's
trades with settlement state, after settlement drained); ``observed`` is what the locust users
recorded (every fill on a private ``fills`` stream and in a REST order ack). Rules:

- every trade gives exactly one fill to the buyer and one to the seller, each seen exactly once on
  the owner's stream (none lost, none duplicated, none that is not in the trades table), with the
  trade's order id, side, price and quantity; fills in REST acks are trades too;
- the engine's invariants hold and the book is not crossed, neither at the end nor in any
  subscriber's local book (snapshot + deltas) after any delta;
- compliance reservations balance (the gatekeeper recomputes its aggregates), no hold outlives its
  order, no obligation outlives its settlement;
- every trade is settled (confirmed, or final where finality is tracked) or failed with a reason;
  the core and the store agree.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

_MAX_LISTED = 10  # problems of one kind listed one by one before they are summarised

FillKey = tuple[str, int, str, int, str, str]  # participant, trade id, side, order id, price, qty


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckResult:
    ok: bool
    problems: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "problems": self.problems, "counts": self.counts}


def _key(fill: dict[str, Any]) -> FillKey:
    return (str(fill["participant"]), int(fill["trade_id"]), str(fill["side"]), int(fill["order_id"]),
            str(fill["price"]), str(fill["qty"]))


def expected_fills(trades: list[dict[str, Any]]) -> set[FillKey]:
    out: set[FillKey] = set()
    for t in trades:
        out.add((t["buyer"], int(t["trade_id"]), "buy", int(t["buy_order_id"]), t["price"], t["qty"]))
        out.add((t["seller"], int(t["trade_id"]), "sell", int(t["sell_order_id"]), t["price"], t["qty"]))
    return out


class _Problems:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self._kinds: Counter[str] = Counter()

    def add(self, kind: str, detail: str) -> None:
        self._kinds[kind] += 1
        if self._kinds[kind] <= _MAX_LISTED:
            self.lines.append(f"{kind}: {detail}")

    def finish(self) -> list[str]:
        return self.lines + [f"{kind}: {n - _MAX_LISTED} more" for kind, n in self._kinds.items() if n > _MAX_LISTED]


def check(view: dict[str, Any], observed: dict[str, Any]) -> CheckResult:
    problems = _Problems()
    trades: list[dict[str, Any]] = view["trades"]

    ids = Counter(int(t["trade_id"]) for t in trades)
    for trade_id, n in ids.items():
        if n > 1:
            problems.add("duplicated trade", f"trade {trade_id} is in the trades table {n} times")

    expected = expected_fills(trades)
    seen = Counter(_key(f) for f in observed["stream_fills"])
    for key, n in sorted(seen.items()):
        if n > 1:
            problems.add("duplicated fill", f"{key} arrived {n} times on the stream")
        if key not in expected:
            problems.add("unknown fill", f"{key} was streamed but is not a trade (or differs from it)")
    for key in sorted(expected - set(seen)):
        problems.add("lost fill", f"{key} never arrived on the owner's stream")
    acked = Counter(_key(f) for f in observed["ack_fills"])
    for key, n in sorted(acked.items()):
        if key not in expected:
            problems.add("unknown ack fill", f"{key} was in an order ack but is not a trade")
        if n > 1:
            problems.add("duplicated ack fill", f"{key} was in {n} acks")

    if view["engine_error"]:
        problems.add("engine invariant", view["engine_error"])
    if view["crossed"]:
        problems.add("crossed book", f"best bid {view['best_bid']} >= best ask {view['best_ask']}")
    if observed.get("md_crossed"):
        problems.add("crossed book", f"a subscriber's local book was crossed after {observed['md_crossed']} deltas")
    if view["gatekeeper_error"]:
        problems.add("reservations", view["gatekeeper_error"])
    if view["open_holds"] != view["open_orders"]:
        problems.add("reservations", f"{view['open_holds']} funding holds for {view['open_orders']} open orders")
    if view["drained"] and view["pending_obligations"]:
        problems.add("reservations", f"{view['pending_obligations']} settlement obligations left after every "
                                     "trade finished")
    if view["drained"] and not view["open_orders"] and view["reserved"]:
        problems.add("reservations", f"cash/notes still reserved with no open order and nothing to settle "
                                     f"(chain watcher: {view.get('watcher')}): {view['reserved']}")
    if not view["store_caught_up"]:
        problems.add("store", "the store projection did not catch up with the journal")

    for t in trades:
        state, reason = t["settlement"], t.get("reason")
        if state == "failed" and not reason:
            problems.add("unexplained failure", f"trade {t['trade_id']} failed without a reason")
        elif state not in ("confirmed", "final", "failed"):
            problems.add("unsettled", f"trade {t['trade_id']} is still {state}")
        if t.get("core_settlement") not in (None, state):
            problems.add("settlement mismatch", f"trade {t['trade_id']}: core says {t['core_settlement']}, "
                                                f"store says {state}")

    states = Counter(str(t["settlement"]) for t in trades)
    counts = {
        "trades": len(trades),
        "fills_expected": len(expected),
        "fills_streamed": sum(seen.values()),
        "fills_in_acks": sum(acked.values()),
        "settled": states["confirmed"] + states["final"],
        "failed_explained": sum(1 for t in trades if t["settlement"] == "failed" and t.get("reason")),
        "open_orders": int(view["open_orders"]),
        "open_holds": int(view["open_holds"]),
    }
    lines = problems.finish()
    return CheckResult(ok=not lines, problems=lines, counts=counts)
