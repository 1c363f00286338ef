"""Issue 12 items 3 and 4 against a real ``venue run`` process on anvil:

- a signed IOC that traded, resent byte for byte after a restart (clean SIGTERM or SIGKILL), and
  the same order signed anew under the same client order id, create no second order and no trade;
- SIGTERM runs the venue's stop path (exit code 0, the stop line, websocket sessions closed).
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import store as store_pkg
from settlement import Chain
from tests.venue.conftest import free_port
from tests.venue.test_history_restart import _crash_venue
from venue.config import VenueConfig
from venueclient import VenueClient
from venueclient.signing import HEADER_KEY, HEADER_SIGNATURE, HEADER_TIMESTAMP, sign, signing_payload

pytestmark = [pytest.mark.slow, pytest.mark.anvil]


class _Process:
    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(30)


@pytest.fixture
def processes() -> Iterator[_Process]:
    running = _Process()
    try:
        yield running
    finally:
        running.stop_all()


def _setup(anvil: Chain, tmp_path: Path) -> tuple[Any, VenueConfig, dict[str, dict[str, str]], str]:
    cv = _crash_venue()
    settler_key = "0x" + anvil.private_key(anvil.accounts[1]).hex()
    config = VenueConfig(data_dir=tmp_path / "var", chain=str(anvil.w3.provider.endpoint_uri),  # type: ignore[attr-defined]
                         port=free_port(), settler_key=settler_key)
    keys = cv.setup(anvil, config)
    return cv, config, keys, settler_key


async def _start(cv: Any, config: VenueConfig, settler_key: str, log: Path, processes: _Process) -> str:
    proc = cv.start_venue(config, settler_key, log)
    processes.procs.append(proc)
    url = f"http://{config.host}:{config.port}"
    await cv.wait_ready(url, proc)
    return url


def _signed(key: dict[str, str], body: bytes, ts_ms: int) -> dict[str, str]:
    return {"content-type": "application/json", HEADER_KEY: key["key_id"], HEADER_TIMESTAMP: str(ts_ms),
            HEADER_SIGNATURE: sign(key["private_key"], signing_payload(ts_ms, "POST", "/v1/orders", body))}


def _stop(proc: subprocess.Popen[bytes], how: signal.Signals) -> int:
    proc.send_signal(how)
    return proc.wait(60)


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
async def test_signed_ioc_resent_after_restart_does_not_execute_again(
    anvil: Chain, tmp_path: Path, processes: _Process, monkeypatch: pytest.MonkeyPatch, how: signal.Signals,
) -> None:
    monkeypatch.setenv("VENUE_SIGNATURE_WINDOW_S", "300")  # the resend is well inside the window
    cv, config, keys, settler_key = await asyncio.to_thread(_setup, anvil, tmp_path)
    seller_id, buyer_id = cv.PARTICIPANTS
    url = await _start(cv, config, settler_key, tmp_path / "venue.log", processes)
    async with VenueClient(url, keys[seller_id]["key_id"], keys[seller_id]["private_key"]) as seller:
        resting = await seller.place(cv.SYMBOL, "sell", 5, "1000.00")
    body = json.dumps({"symbol": cv.SYMBOL, "side": "buy", "qty": "1", "price": "1000.00", "type": "limit",
                       "tif": "ioc", "client_order_id": "retry-1"}, separators=(",", ":")).encode()
    headers = _signed(keys[buyer_id], body, int(time.time() * 1000))
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        first = await http.post("/v1/orders", content=body, headers=headers)
    assert first.status_code == 200, first.text
    assert (first.json()["status"], first.json()["filled_qty"]) == ("filled", "1")

    _stop(processes.procs[-1], how)
    url = await _start(cv, config, settler_key, tmp_path / "venue.log", processes)
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        replayed = await http.post("/v1/orders", content=body, headers=headers)
        assert replayed.status_code >= 400, replayed.text
        assert replayed.json()["error"]["code"] == "REPLAYED_REQUEST"
        resigned = await http.post("/v1/orders", content=body, headers=_signed(keys[buyer_id], body,
                                                                            int(time.time() * 1000)))
        assert resigned.status_code >= 400, resigned.text
        assert resigned.json()["error"]["code"] == "CLIENT_ORDER_ID_REUSED"
    async with VenueClient(url, keys[buyer_id]["key_id"], keys[buyer_id]["private_key"]) as buyer, \
            VenueClient(url, keys[seller_id]["key_id"], keys[seller_id]["private_key"]) as seller:
        assert len(await buyer.my_fills()) == 1
        still = await seller.request("GET", f"/v1/orders/{resting['order_id']}")
        assert still["remaining_qty"] == "4"
        trades, _ = await buyer.trades_page(cv.SYMBOL, limit=100)
        assert len(trades) == 1
    assert _stop(processes.procs[-1], signal.SIGTERM) == 0


async def test_sigterm_drains_through_the_stop_path(anvil: Chain, tmp_path: Path, processes: _Process) -> None:
    cv, config, keys, settler_key = await asyncio.to_thread(_setup, anvil, tmp_path)
    seller_id, _ = cv.PARTICIPANTS
    log = tmp_path / "venue.log"
    url = await _start(cv, config, settler_key, log, processes)
    async with VenueClient(url, keys[seller_id]["key_id"], keys[seller_id]["private_key"]) as seller:
        stream = await seller.connect()
        placed = await stream.place(cv.SYMBOL, "sell", 1, "1000.00")
        proc = processes.procs[-1]
        proc.send_signal(signal.SIGTERM)
        for _ in range(200):  # bounded: 20 s
            if stream.closed.is_set():
                break
            await asyncio.sleep(0.1)
        assert stream.closed.is_set()
        code = stream.close_code
        assert await asyncio.to_thread(proc.wait, 60) == 0
    text = log.read_text(errors="replace")
    assert "SIGTERM: stopping" in text
    assert "venue stopped: journal closed, store flushed" in text
    assert code is not None and code != 1006  # closed by the server with a code, not dropped
    # the stop path flushed the store: the order is there without any journal catch-up
    db = store_pkg.Store.open(config.database_url)
    try:
        assert db.get_order(placed["order_id"]) is not None
    finally:
        db.close()
