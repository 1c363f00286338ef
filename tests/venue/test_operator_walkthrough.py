"""Issue 19's "done when", as a new operator would do it from docs/deployment.md and the runbook:
deploy to a fresh anvil as if it were Base, register and onboard two investors, list a note, approve,
run the venue, trade, revoke a key, export the day's records, read the logs. Every step is the
documented command line (a subprocess or ``venue.cli.main``); trading goes through the Python
client over real sockets; settlement happens on the node."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from eth_account import Account

from settlement import Chain
from tests.venue.conftest import free_port
from venueclient import ApiError, VenueClient

pytestmark = [pytest.mark.anvil, pytest.mark.slow]


def _venue(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "venue.cli", *args], env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, f"venue {' '.join(args)}: {done.stderr}"
    return done.stdout


async def _trade_and_revoke(url: str, keys: dict[str, dict[str, str]], env: dict[str, str]) -> int:
    seller = VenueClient(url, keys["inv-1"]["key_id"], keys["inv-1"]["private_key"])
    buyer = VenueClient(url, keys["inv-2"]["key_id"], keys["inv-2"]["private_key"])
    async with seller, buyer:
        await seller.place("OMN-WALK", "sell", 3, "1050.00")
        bought = await buyer.place("OMN-WALK", "buy", 3, "1050.00", tif="ioc")
        assert bought["status"] == "filled", bought
        trade_id = int(bought["fills"][0]["trade_id"])
        deadline = time.monotonic() + 90
        while True:  # settled on the node
            [mine] = [f for f in await buyer.request("GET", "/v1/fills") if f["trade_id"] == trade_id]
            if mine["settlement"] in ("confirmed", "final"):
                break
            assert time.monotonic() < deadline, mine
            await asyncio.sleep(0.5)
        await asyncio.to_thread(_venue, env, "keys", "revoke", keys["inv-2"]["key_id"])
        deadline = time.monotonic() + 30
        while True:  # the running venue picks the revocation up (refresh: 2 s)
            try:
                await buyer.request("GET", "/v1/fills")
            except ApiError as exc:
                assert exc.status in (401, 403), exc
                break
            assert time.monotonic() < deadline, "a revoked key kept working"
            await asyncio.sleep(0.5)
    return trade_id


def test_a_new_operator_deploys_onboards_lists_trades_revokes_and_exports(node: Chain, tmp_path: Path) -> None:
    url = node.w3.provider.endpoint_uri  # type: ignore[attr-defined]
    admin_key, settler_key = (node.private_key(a).hex() for a in node.accounts[3:5])
    (tmp_path / "admin.key").write_text(admin_key)
    (tmp_path / "settler.key").write_text(settler_key)
    env = {**os.environ, "VENUE_CHAIN": url, "VENUE_DATA_DIR": str(tmp_path / "var"),
           "VENUE_ADMIN_KEY_FILE": str(tmp_path / "admin.key"),
           "VENUE_SETTLER_KEY_FILE": str(tmp_path / "settler.key")}
    # 1. deploy
    _venue(env, "migrate")
    deployment = json.loads(_venue(env, "deploy"))
    # 2. register identities on chain, onboard in the venue, API keys
    keys: dict[str, dict[str, str]] = {}
    for who, country, notes, cash in (("inv-1", "DE", "50", "0"), ("inv-2", "FR", "0", "100000")):
        wallet = Account.create()
        node.w3.eth.send_transaction({"from": node.accounts[0], "to": wallet.address, "value": 10**18})
        _venue(env, "chain", "register", wallet.address, "--country", country, "--notes", notes, "--cash", cash)
        (tmp_path / f"{who}.wallet.key").write_text(wallet.key.hex())
        _venue(env, "chain", "approve", "--key-file", str(tmp_path / f"{who}.wallet.key"))  # 4. (the investor)
        _venue(env, "participants", "add", who, "--category", "MIFID_PROFESSIONAL", "--jurisdiction", country,
               "--wallet", wallet.address)
        _venue(env, "keys", "create", who, "--out", str(tmp_path / f"{who}.json"))
        keys[who] = json.loads((tmp_path / f"{who}.json").read_text())
    # 3. list the note
    _venue(env, "instruments", "add", "OMN-WALK", "--name", "Walk-through note", "--token", deployment["token"],
           "--cash-token", deployment["stablecoin"], "--tick", "0.01", "--band", "500", "5000",
           "--blocked", "RU,KP,IR")
    # 5. run
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "venue.cli", "run", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 120
        while "listening" not in (proc.stdout.readline() or ""):
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.stderr else ""
        trade_id = asyncio.run(_trade_and_revoke(f"http://127.0.0.1:{port}", keys, env))
        # the day's records, while the venue runs (the store is shared)
        today = dt.datetime.now(dt.UTC).date().isoformat()
        rts22 = _venue(env, "export", "rts22", "--date", today)
        rts24 = _venue(env, "export", "rts24", "--date", today)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert str(trade_id) in rts22 and "1050" in rts22
    assert rts24.count("\n") >= 3  # header + the two orders
    # the logs an operator reads: JSON lines with the settlement of the trade and the key change
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    text = "\n".join(x["msg"] for x in lines)
    assert "confirmed" in text and str(trade_id) in text
    assert keys["inv-2"]["key_id"] in text
    for secret in (admin_key, settler_key, keys["inv-1"]["private_key"]):
        assert secret.removeprefix("0x") not in err
