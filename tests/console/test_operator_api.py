"""Operator REST + websocket against the live server (httpx and a websockets client, no browser)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from engine import NewOrder, Side
from gateway.operator import ConsoleAuth
from gateway.ports import Outcome, SettlementState
from tests.console.conftest import LiveServer, Signed
from tests.console.fakes import OTHER_SYMBOL, SYMBOL, FakeVenue
from venueclient.signing import login_payload, sign


@pytest.fixture
def client(server: LiveServer, op_auth: Signed) -> Iterator[httpx.Client]:
    """Signed as the operator by default; ``auth=None`` per request for anonymous calls."""
    with httpx.Client(base_url=server.url, timeout=10, auth=op_auth) as c:
        yield c


@pytest.fixture
def console(server: LiveServer, bearer: dict[str, str]) -> Iterator[httpx.Client]:
    """What the browser console does: bearer session token on /console/api."""
    with httpx.Client(base_url=server.url, timeout=10, headers=bearer) as c:
        yield c


class Ws:
    """A small sync websocket client speaking JSON (the gateway's framing: welcome first)."""

    def __init__(self, conn: ClientConnection) -> None:
        self.conn = conn
        welcome = self.receive_json()
        assert welcome["op"] == "welcome"
        self.nonce: str = welcome["nonce"]

    def send_json(self, message: Any) -> None:
        self.conn.send(json.dumps(message))

    def receive_json(self) -> Any:
        return json.loads(self.conn.recv(timeout=5))


@pytest.fixture
def ws(server: LiveServer) -> Iterator[Ws]:
    with connect(f"ws://127.0.0.1:{server.port}/v1/operator/ws", open_timeout=5) as conn:
        yield Ws(conn)


@pytest.fixture
def bearer(console_auth: ConsoleAuth) -> dict[str, str]:
    session = console_auth.exchange(console_auth.issue_login_code("ops-alice"))
    return {"Authorization": f"Bearer {session.token}"}


def error(resp: Any) -> str:
    code: str = resp.json()["error"]["code"]
    return code


def submit(server: LiveServer, venue: FakeVenue, participant: str, side: Side, qty: int, price: int) -> Any:
    cmd = NewOrder(ts=0, participant=participant, symbol=SYMBOL, side=side, qty=qty, price=price)
    outcome: Outcome = server.call(venue.submit(participant, cmd))
    return outcome


# ------------------------------------------------------------ auth


ROUTES = [
    ("GET", "/instruments", None),
    ("GET", f"/instruments/{SYMBOL}", None),
    ("GET", "/participants", None),
    ("POST", "/participants/bob/status", {"status": "suspended"}),
    ("POST", "/participants/alice/freeze", {"frozen": True}),
    ("POST", f"/instruments/{SYMBOL}/status", {"status": "halted"}),
    ("GET", "/rejections", None),
    ("GET", "/settlements", None),
    ("GET", "/reconciliation", None),
    ("POST", "/reconciliation/run", None),
    ("GET", "/audit", None),
    ("GET", "/trades", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
def test_every_operator_route_needs_an_operator(
    client: httpx.Client, trader_auth: Signed, venue: FakeVenue, method: str, path: str, body: Any
) -> None:
    signed = f"/v1/operator{path}"
    anonymous = client.request(method, signed, json=body, auth=None)
    assert (anonymous.status_code, error(anonymous)) == (401, "MISSING_AUTH")
    trader = client.request(method, signed, json=body, auth=trader_auth)
    assert (trader.status_code, error(trader)) == (403, "FORBIDDEN")

    console = f"/console/api{path}"
    no_token = client.request(method, console, json=body, auth=None)
    assert (no_token.status_code, error(no_token)) == (401, "MISSING_AUTH")
    bad_token = client.request(method, console, json=body, auth=None, headers={"Authorization": "Bearer abc.def"})
    assert (bad_token.status_code, error(bad_token)) == (401, "INVALID_SESSION")
    assert bad_token.headers["www-authenticate"] == "Bearer"

    assert venue.audit_log() == []
    assert venue.participants()[1].status == "active"
    assert venue.l2(SYMBOL).status.name == "OPEN"


def test_signed_operator_key_and_session_token_both_work(client: httpx.Client, bearer: dict[str, str]) -> None:
    assert client.get("/v1/operator/whoami").json() == {"operator": "ops-alice"}
    assert client.get("/console/api/whoami", headers=bearer, auth=None).json() == {"operator": "ops-alice"}
    # a session token is for the console paths only: /v1 is always signed
    v1 = client.get("/v1/operator/whoami", headers=bearer, auth=None)
    assert (v1.status_code, error(v1)) == (401, "MISSING_AUTH")


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
def test_console_paths_work_with_a_session(
    client: httpx.Client, bearer: dict[str, str], method: str, path: str, body: Any
) -> None:
    resp = client.request(method, f"/console/api{path}", json=body, headers=bearer, auth=None)
    assert resp.status_code == 200, resp.text


def test_console_login_code_flow(client: httpx.Client, trader_auth: Signed) -> None:
    assert client.post("/v1/operator/console-login", auth=trader_auth).status_code == 403
    issued = client.post("/v1/operator/console-login").json()
    assert issued["path"] == f"/console#code={issued['code']}"
    session = client.post("/console/api/session", json={"code": issued["code"]}, auth=None).json()
    assert session["operator"] == "ops-alice"
    again = client.post("/console/api/session", json={"code": issued["code"]}, auth=None)
    assert again.status_code == 401 and error(again) == "INVALID_LOGIN_CODE"

    headers = {"Authorization": f"Bearer {session['token']}"}
    refreshed = client.post("/console/api/session/refresh", headers=headers, auth=None).json()
    assert refreshed["token"] != session["token"]
    old = client.get("/console/api/whoami", headers=headers, auth=None)
    assert old.status_code == 401 and error(old) == "SESSION_REVOKED"  # a refresh retires the old token

    new_headers = {"Authorization": f"Bearer {refreshed['token']}"}
    assert client.delete("/console/api/session", headers=new_headers, auth=None).json() == {"ok": True}
    after = client.get("/console/api/whoami", headers=new_headers, auth=None)
    assert after.status_code == 401 and error(after) == "SESSION_REVOKED"
    assert client.delete("/console/api/session", auth=None).status_code == 401


def test_session_body_is_validated(client: httpx.Client) -> None:
    missing = client.post("/console/api/session", json={}, auth=None)
    assert missing.status_code == 400 and error(missing) == "MISSING_FIELD"
    extra = client.post("/console/api/session", json={"code": "x", "admin": True}, auth=None)
    assert extra.status_code == 400 and error(extra) == "UNKNOWN_FIELD"
    broken = client.post("/console/api/session", content=b"{", headers={"Content-Type": "application/json"},
                         auth=None)
    assert broken.status_code == 400 and error(broken) == "MALFORMED_JSON"


# ------------------------------------------------------------ instruments


def test_instruments_show_book_and_status(client: httpx.Client, server: LiveServer, venue: FakeVenue) -> None:
    submit(server, venue, "alice", Side.SELL, 5, 10_100)
    submit(server, venue, "bob", Side.BUY, 7, 9_900)
    body = client.get("/v1/operator/instruments").json()
    assert [i["symbol"] for i in body["instruments"]] == [SYMBOL, OTHER_SYMBOL]
    inst = body["instruments"][0]
    assert inst["status"] == "open"
    assert inst["asks"] == [{"price": "101.00", "qty": "5", "price_ticks": 10_100, "qty_lots": 5, "count": 1}]
    assert inst["bids"][0]["price"] == "99.00" and inst["bids"][0]["qty_lots"] == 7
    assert inst["price_increment"] == "0.01"
    one = client.get(f"/v1/operator/instruments/{SYMBOL}", params={"depth": 1}).json()
    assert one["symbol"] == SYMBOL and len(one["asks"]) == 1


def test_halt_and_resume(client: httpx.Client, console: httpx.Client, server: LiveServer, venue: FakeVenue) -> None:
    halted = console.post(f"/console/api/instruments/{SYMBOL}/status", json={"status": "halted"})
    assert halted.status_code == 200 and halted.json()["status"] == "halted"
    outcome = submit(server, venue, "alice", Side.SELL, 1, 10_000)
    assert outcome.result.code.name == "INSTRUMENT_HALTED"
    rejections = client.get("/v1/operator/rejections").json()
    assert rejections["counts"] == {"INSTRUMENT_HALTED": 1}
    assert rejections["recent"][0]["participant"] == "alice"
    resumed = console.post(f"/console/api/instruments/{SYMBOL}/status", json={"status": "OPEN"})
    assert resumed.json()["status"] == "open"
    audit = client.get("/v1/operator/audit").json()
    assert audit["chain_ok"] is True
    assert [e["action"] for e in audit["entries"]] == ["instrument.status", "instrument.status"]
    assert audit["entries"][0]["actor"] == "ops-alice"


@pytest.mark.parametrize(
    ("symbol", "body", "status", "code"),
    [
        ("NOPE", {"status": "halted"}, 404, "UNKNOWN_INSTRUMENT"),
        (SYMBOL, {"status": "paused"}, 400, "INVALID_FIELD"),
        (SYMBOL, {"status": 3}, 400, "INVALID_FIELD"),
        (SYMBOL, {}, 400, "MISSING_FIELD"),
        (SYMBOL, {"status": "halted", "why": "x"}, 400, "UNKNOWN_FIELD"),
    ],
)
def test_bad_status_requests(
    client: httpx.Client, console: httpx.Client, venue: FakeVenue, symbol: str, body: Any, status: int, code: str
) -> None:
    resp = console.post(f"/console/api/instruments/{symbol}/status", json=body)
    assert (resp.status_code, error(resp)) == (status, code)
    assert venue.l2(SYMBOL).status.name == "OPEN"


def test_engine_refusal_is_reported_with_its_code(client: httpx.Client, console: httpx.Client) -> None:
    closed = console.post(f"/console/api/instruments/{SYMBOL}/status", json={"status": "closed"})
    assert closed.status_code == 200
    reopen = console.post(f"/console/api/instruments/{SYMBOL}/status", json={"status": "open"})
    assert reopen.status_code == 422
    assert error(reopen) == "INVALID_STATUS_TRANSITION"


@pytest.mark.parametrize("query", ["limit=0", "limit=100000", "limit=ten"])
def test_limits_are_validated(client: httpx.Client, query: str) -> None:
    for path in ("trades", "rejections", "settlements", "audit"):
        resp = client.get(f"/v1/operator/{path}?{query}")
        assert resp.status_code == 400 and error(resp) == "INVALID_FIELD", path


def test_trades_and_settlements(client: httpx.Client, server: LiveServer, venue: FakeVenue) -> None:
    submit(server, venue, "alice", Side.SELL, 3, 10_000)
    outcome = submit(server, venue, "bob", Side.BUY, 3, 10_000)
    fill = next(e for e in outcome.result.events if type(e).__name__ == "Fill")
    trades = client.get("/v1/operator/trades", params={"symbol": SYMBOL}).json()["trades"]
    assert [(t["trade_id"], t["buyer"], t["seller"], t["price"], t["aggressor"]) for t in trades] == [
        (fill.trade_id, "bob", "alice", "100.00", "buy")
    ]
    assert client.get("/v1/operator/trades", params={"symbol": "NOPE"}).status_code == 404

    server.run(lambda: venue.settle(fill.trade_id, SettlementState.CONFIRMED, tx_hash="0x" + "ee" * 32,
                                    block=7, gas_used=150_484))
    body = client.get("/v1/operator/settlements").json()
    assert body["counts"] == {"pending": 0, "submitted": 0, "confirmed": 1, "failed": 0, "final": 0}
    assert body["settlements"][0]["state"] == "confirmed"
    assert body["settlements"][0]["tx_hash"] == "0x" + "ee" * 32
    assert body["settlements"][0]["gas_used"] == 150_484


# ------------------------------------------------------------ participants


def test_participants_and_status(client: httpx.Client, venue: FakeVenue) -> None:
    people = client.get("/v1/operator/participants").json()["participants"]
    assert [p["participant"] for p in people] == ["alice", "bob", "carol"]
    assert people[0]["note_balance"] == str(500 * 10**18 + 25 * 10**16)  # string: exact in JavaScript

    suspended = client.post("/v1/operator/participants/bob/status", json={"status": "suspended"})
    assert suspended.json()["status"] == "suspended" and suspended.json()["eligible"] is False
    assert venue.audit_log()[0].action == "participant.status"

    unknown = client.post("/v1/operator/participants/zed/status", json={"status": "suspended"})
    assert (unknown.status_code, error(unknown)) == (404, "UNKNOWN_PARTICIPANT")
    bad = client.post("/v1/operator/participants/bob/status", json={"status": "banned"})
    assert (bad.status_code, error(bad)) == (400, "INVALID_FIELD")
    assert len(venue.audit_log()) == 1


def test_freeze_wallet(client: httpx.Client, venue: FakeVenue) -> None:
    frozen = client.post("/v1/operator/participants/alice/freeze", json={"frozen": True}).json()
    assert frozen["frozen"] is True and frozen["tx_hash"].startswith("0x")
    assert venue.participants()[0].frozen is True

    no_wallet = client.post("/v1/operator/participants/carol/freeze", json={"frozen": True})
    assert (no_wallet.status_code, error(no_wallet)) == (409, "NO_WALLET")
    unknown = client.post("/v1/operator/participants/zed/freeze", json={"frozen": True})
    assert (unknown.status_code, error(unknown)) == (404, "UNKNOWN_PARTICIPANT")
    for not_bool in ("maybe", "yes", 1, None):
        resp = client.post("/v1/operator/participants/alice/freeze", json={"frozen": not_bool})
        assert (resp.status_code, error(resp)) == (400, "INVALID_FIELD"), not_bool

    venue.chain_down = True
    down = client.post("/v1/operator/participants/alice/freeze", json={"frozen": False})
    assert (down.status_code, error(down)) == (502, "CHAIN_ERROR")
    assert "connection refused" in down.json()["error"]["message"]
    assert venue.participants()[0].frozen is True


# ------------------------------------------------------------ reconciliation, audit


def test_reconciliation(client: httpx.Client, venue: FakeVenue) -> None:
    assert client.get("/v1/operator/reconciliation").json() == {"ts": None, "ok": True,
                                                                            "differences": []}
    venue.set_reconciliation_differences(["bob cash: venue 10, chain 8"])
    ran = client.post("/v1/operator/reconciliation/run").json()
    assert ran["ok"] is False and ran["differences"] == ["bob cash: venue 10, chain 8"] and ran["ts"] > 0
    assert client.get("/v1/operator/reconciliation").json() == ran
    venue.chain_down = True
    down = client.post("/v1/operator/reconciliation/run")
    assert (down.status_code, error(down)) == (502, "CHAIN_ERROR")


def test_audit_chain_break_is_reported(client: httpx.Client, console: httpx.Client, venue: FakeVenue) -> None:
    console.post(f"/console/api/instruments/{SYMBOL}/status", json={"status": "halted"})
    venue.tamper_audit()
    assert client.get("/v1/operator/audit").json()["chain_ok"] is False


# ------------------------------------------------------------ websocket


def test_ws_requires_login_first(ws: Ws) -> None:
    ws.send_json({"op": "subscribe"})
    assert ws.receive_json()["error"]["code"] == "NOT_LOGGED_IN"
    for _ in range(16):  # the trader websocket's rule: 16 frames without a login end the session
        ws.send_json({"op": "subscribe"})
    with pytest.raises(ConnectionClosed) as closed:
        for _ in range(17):
            ws.receive_json()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4001


def test_ws_refuses_bad_token(ws: Ws) -> None:
    ws.send_json({"op": "login", "token": "nope.nope"})
    reply = ws.receive_json()
    assert (reply["op"], reply["ok"], reply["error"]["code"]) == ("login", False, "INVALID_SESSION")
    ws.send_json({"op": "subscribe"})
    assert ws.receive_json()["error"]["code"] == "NOT_LOGGED_IN"


def _signed_login(ws: Ws, key_id: str, private_key: bytes) -> None:
    ts = int(time.time() * 1000)
    ws.send_json({"op": "login", "key_id": key_id, "ts": ts,
                  "signature": sign(private_key, login_payload(ts, ws.nonce))})


def _logged_in(reply: dict[str, Any]) -> str:
    assert (reply["op"], reply["ok"], reply["result"]["role"]) == ("login", True, "operator"), reply
    name: str = reply["result"]["operator"]
    return name


def test_ws_signed_login_with_an_operator_key(ws: Ws, venue: FakeVenue) -> None:
    _signed_login(ws, "op-key", venue.private_keys["op-key"])
    assert _logged_in(ws.receive_json()) == "ops-alice"


def test_ws_signed_login_refuses_trader_keys_and_bad_signatures(server: LiveServer, venue: FakeVenue) -> None:
    for key_id, private, code in (
        ("trader-key", venue.private_keys["trader-key"], "FORBIDDEN"),
        ("op-key", venue.private_keys["trader-key"], "BAD_SIGNATURE"),
    ):
        with connect(f"ws://127.0.0.1:{server.port}/v1/operator/ws", open_timeout=5) as conn:
            ws = Ws(conn)
            _signed_login(ws, key_id, private)
            assert ws.receive_json()["error"]["code"] == code
            ws.send_json({"op": "subscribe"})
            assert ws.receive_json()["error"]["code"] == "NOT_LOGGED_IN"


def test_ws_pushes_trades_books_status_settlements_rejections(
    client: httpx.Client, console: httpx.Client, server: LiveServer, ws: Ws, venue: FakeVenue, bearer: dict[str, str]
) -> None:
    token = bearer["Authorization"].split()[1]
    ws.send_json({"op": "login", "token": token})
    assert _logged_in(ws.receive_json()) == "ops-alice"
    ws.send_json({"op": "heartbeat", "req_id": 1})
    beat = ws.receive_json()
    assert (beat["op"], beat["req_id"], beat["ok"]) == ("heartbeat", 1, True)

    submit(server, venue, "alice", Side.SELL, 2, 10_000)
    outcome = submit(server, venue, "bob", Side.BUY, 2, 10_000)
    fill = next(e for e in outcome.result.events if type(e).__name__ == "Fill")
    seen = _receive_until(ws, {"trades", "book", "settlements"})
    assert [t["trade_id"] for t in seen["trades"]["trades"]] == [fill.trade_id]
    assert [n["state"] for n in seen["settlements"]["notices"]] == ["pending"]
    assert seen["settlements"]["counts"]["pending"] == 1
    assert seen["book"]["instrument"]["symbol"] == SYMBOL

    console.post(f"/console/api/instruments/{SYMBOL}/status", json={"status": "halted"})
    status = _receive_until(ws, {"status"})["status"]
    assert (status["symbol"], status["status"]) == (SYMBOL, "halted")

    submit(server, venue, "alice", Side.SELL, 1, 10_000)
    rejections = _receive_until(ws, {"rejections"})["rejections"]
    assert rejections["counts"] == {"INSTRUMENT_HALTED": 1}

    ws.send_json({"op": "trade"})
    assert _receive_until(ws, {"trade"})["trade"]["error"]["code"] == "UNKNOWN_OP"


def test_ws_pushes_the_phase_and_indicative_uncross_of_a_call_auction(
    console: httpx.Client, server: LiveServer, ws: Ws, venue: FakeVenue, bearer: dict[str, str]
) -> None:
    ws.send_json({"op": "login", "token": bearer["Authorization"].split()[1]})
    assert _logged_in(ws.receive_json()) == "ops-alice"
    call = console.post(f"/console/api/instruments/{SYMBOL}/status", json={"status": "call"})
    assert call.status_code == 200 and call.json()["status"] == "call"
    seen = _receive_until(ws, {"status", "indicative"})
    assert (seen["status"]["status"], seen["indicative"]["price"]) == ("call", None)
    submit(server, venue, "alice", Side.SELL, 2, 10_000)
    outcome = submit(server, venue, "bob", Side.BUY, 3, 10_000)
    assert not [e for e in outcome.result.events if type(e).__name__ == "Fill"]  # a call does not match
    indication = _receive_until(ws, {"indicative"})["indicative"]
    for _ in range(5):  # the first indication may be the one after alice's order alone
        if indication["imbalance_side"] is not None:
            break
        indication = _receive_until(ws, {"indicative"})["indicative"]
    assert indication["symbol"] == SYMBOL and indication["imbalance_side"] == "buy"
    assert indication["price"] is not None and indication["volume"] != indication["imbalance_qty"]


def test_ws_ends_a_console_session_that_was_logged_out(
    client: httpx.Client, ws: Ws, bearer: dict[str, str]
) -> None:
    ws.send_json({"op": "login", "token": bearer["Authorization"].split()[1]})
    _logged_in(ws.receive_json())
    assert client.delete("/console/api/session", headers=bearer, auth=None).json() == {"ok": True}
    ws.send_json({"op": "heartbeat"})
    reply = _receive_until(ws, {"heartbeat"})["heartbeat"]
    assert (reply["ok"], reply["error"]["code"]) == (False, "SESSION_REVOKED")
    with pytest.raises(ConnectionClosed) as closed:
        for _ in range(50):
            ws.receive_json()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4003


def _receive_until(ws: Ws, wanted: set[str], limit: int = 50) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    """Live pushes by ``type``, replies by ``op``."""
    for _ in range(limit):
        message = ws.receive_json()
        kind = message["type"] if message.get("channel") == "operator" else message["op"]
        if kind in wanted:
            seen.setdefault(kind, message)
        if wanted <= seen.keys():
            return seen
    raise AssertionError(f"did not see {wanted - seen.keys()} in {limit} messages")


# ------------------------------------------------------------ console pages


def test_console_page_and_assets_are_served_with_a_strict_policy(client: httpx.Client) -> None:
    page = client.get("/console")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert 'data-testid="instruments-panel"' in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["referrer-policy"] == "no-referrer"
    assert client.get("/console/console.js").headers["content-type"].startswith("text/javascript")
    assert client.get("/console/console.css").status_code == 200
    for bad in ("/console/index.html.bak", "/console/..%2Foperator.py", "/console/%2e%2e"):
        assert client.get(bad).status_code == 404, bad


def test_ws_batches_a_burst_of_trades_per_tick(
    server: LiveServer, ws: Ws, venue: FakeVenue, bearer: dict[str, str]
) -> None:
    ws.send_json({"op": "login", "token": bearer["Authorization"].split()[1]})
    _logged_in(ws.receive_json())

    async def burst() -> list[int]:  # one coroutine: all fills land within one push tick
        ids = []
        for _ in range(250):
            await venue.submit("alice", NewOrder(ts=0, participant="alice", symbol=SYMBOL, side=Side.SELL,
                                                 qty=1, price=10_000))
            outcome = await venue.submit("bob", NewOrder(ts=0, participant="bob", symbol=SYMBOL, side=Side.BUY,
                                                         qty=1, price=10_000))
            assert outcome.result is not None
            ids += [e.trade_id for e in outcome.result.events if type(e).__name__ == "Fill"]
        return ids

    ids = server.call(burst())
    seen = _receive_until(ws, {"trades", "settlements"})
    assert [t["trade_id"] for t in seen["trades"]["trades"]] == ids[-200:]
    notices = seen["settlements"]
    assert notices["truncated"] is True and len(notices["notices"]) == 200
    assert notices["counts"]["pending"] == 250


def test_operator_trades_are_paged_through_the_whole_history(
    client: httpx.Client, server: LiveServer, venue: FakeVenue
) -> None:
    ids = []
    for _ in range(5):
        submit(server, venue, "alice", Side.SELL, 1, 10_000)
        outcome = submit(server, venue, "bob", Side.BUY, 1, 10_000)
        ids += [e.trade_id for e in outcome.result.events if type(e).__name__ == "Fill"]
    seen: list[int] = []
    params: dict[str, Any] = {"limit": 2, "symbol": SYMBOL}
    for _ in range(5):
        resp = client.get("/v1/operator/trades", params=params)
        assert resp.status_code == 200, resp.text
        seen += [t["trade_id"] for t in resp.json()["trades"]]
        cursor = resp.headers.get("next-cursor")
        if cursor is None:
            break
        params["cursor"] = cursor
    assert seen == sorted(ids, reverse=True)
    by_carol = client.get("/v1/operator/trades", params={"participant": "carol"}).json()["trades"]
    assert by_carol == []
    bad = client.get("/v1/operator/trades", params={"cursor": "nope"})
    assert (bad.status_code, error(bad)) == (400, "INVALID_FIELD")
