"""``venue gateway`` as a process of its own (issue 17): one NATS server (R1), a leader and a
standby ``venue run --role`` process and one gateway process. Clients trade through the gateway
(REST acknowledgements, websocket market data); the leader is SIGKILLed, the standby takes over,
the gateway keeps serving: an order sent while no process leads is answered once, and an order
the dead leader acknowledged (resting, or filled at once), resent through the gateway under its
client order id, gets the same order back, not a second one. Market data carries the journal
position (``stream_seq``): the leader's own websocket and the gateway give a trade the stream
sequence of the batch that holds its order, before the failover and after it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from tests.ha.cluster import NatsCluster, free_port, nats_server_binary

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import crash_venue as cv  # noqa: E402

from engine import NewOrder  # noqa: E402
from journal import codec  # noqa: E402
from journal.nats import NatsJournal, split_records  # noqa: E402
from settlement.chain import Chain, start_anvil  # noqa: E402
from venue.config import VenueConfig  # noqa: E402
from venueclient import VenueClient  # noqa: E402

SYMBOL = cv.SYMBOL
A, B = cv.PARTICIPANTS


def _start(args: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "venue.cli", *args], cwd=ROOT, env={**os.environ, **env},
                            stdout=log.open("ab"), stderr=subprocess.STDOUT)


async def _healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as http:
        while time.monotonic() < deadline:
            assert proc.poll() is None, f"process exited with {proc.returncode}"
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(f"{url}/health", timeout=1.0)).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise AssertionError(f"{url} not healthy within {timeout} s")


async def _log_says(log: Path, text: bytes, proc: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in log.read_bytes():
            return
        assert proc.poll() is None, f"process exited with {proc.returncode} (see {log})"
        await asyncio.sleep(0.1)
    raise AssertionError(f"{log} never said {text!r}")


def _positions_in_stream(url: str, directory: Path) -> tuple[dict[tuple[str, str], int], list[int]]:
    """(participant, client order id) of every new order -> the stream sequence of its batch; and
    the stream sequences of the epoch messages (one per leader)."""
    positions: dict[tuple[str, str], int] = {}
    epochs: list[int] = []
    with NatsJournal.open(url, directory) as journal:
        for msg in journal.messages(0):
            if msg.epoch:
                epochs.append(msg.stream_seq)
            for _seq, payload in split_records(msg):
                cmd = codec.decode(payload)
                if isinstance(cmd, NewOrder) and cmd.client_order_id:
                    positions[(cmd.participant, cmd.client_order_id)] = msg.stream_seq
    return positions, epochs


@dataclass
class ProcessWorld:
    """What a test of venue processes runs on: its own NATS node, an anvil node, the venue
    processes' environment (settler key, finality, R1, a 2 s lease) and the stream's URL."""

    cluster: NatsCluster
    chain: Chain
    rpc: str
    env: dict[str, str]
    url: str
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)  # stopped on the way out


@contextlib.contextmanager
def process_world(tmp_path: Path, stream: str) -> Iterator[ProcessWorld]:
    if nats_server_binary() is None:
        pytest.skip("nats-server is not installed")
    cluster = NatsCluster(tmp_path / "nats", size=1).start()
    chain = start_anvil(block_time=cv.BLOCK_TIME)
    env = {"VENUE_SETTLER_KEY": "0x" + chain.private_key(chain.accounts[1]).hex(),
           "VENUE_FINALITY": str(cv.FINALITY), "VENUE_JOURNAL_REPLICAS": "1", "VENUE_LEASE_TTL_S": "2"}
    world = ProcessWorld(cluster=cluster, chain=chain, rpc=str(chain.w3.provider.endpoint_uri),  # type: ignore[attr-defined]
                         env=env, url=cluster.url(stream))
    try:
        yield world
    finally:
        for proc in world.procs:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)
        chain.close()
        cluster.stop()


@pytest.mark.slow
@pytest.mark.anvil
async def test_a_gateway_process_serves_across_a_leader_change(tmp_path: Path) -> None:
    with process_world(tmp_path, "OMNGW") as world:
        chain, rpc, env, url, procs = world.chain, world.rpc, world.env, world.url, world.procs
        configs = [VenueConfig(data_dir=tmp_path / name, chain=rpc, port=free_port()) for name in ("a", "b")]
        keys = cv.setup(chain, configs[0])
        configs[1].data_dir.mkdir(parents=True)
        for item in configs[0].data_dir.iterdir():  # the same reference data (store, keys, deployment)
            if item.is_file():
                shutil.copy2(item, configs[1].data_dir / item.name)

        def venue(c: VenueConfig, role: str) -> subprocess.Popen[bytes]:
            return _start(["run", "--role", role, "--journal-url", url, "--data-dir", str(c.data_dir),
                           "--chain", rpc, "--port", str(c.port)], tmp_path / f"{c.data_dir.name}.log", env)

        leader = venue(configs[0], "auto")
        procs.append(leader)
        leader_url = f"http://127.0.0.1:{configs[0].port}"
        await _healthy(leader_url, leader)
        standby = venue(configs[1], "standby")
        procs.append(standby)
        await _log_says(tmp_path / "b.log", b"standby: following", standby)
        gw_port = free_port()
        gateway = _start(["gateway", "--journal-url", url, "--data-dir", str(tmp_path / "gw"), "--port", str(gw_port)],
                         tmp_path / "gw.log", {})
        procs.append(gateway)
        gw_url = f"http://127.0.0.1:{gw_port}"
        await _healthy(gw_url, gateway)

        seller = VenueClient(gw_url, keys[A]["key_id"], keys[A]["private_key"], timeout=60.0)
        buyer = VenueClient(gw_url, keys[B]["key_id"], keys[B]["private_key"], timeout=60.0)
        direct = VenueClient(leader_url, keys[A]["key_id"], keys[A]["private_key"], timeout=10.0)
        direct_b = VenueClient(leader_url, keys[B]["key_id"], keys[B]["private_key"], timeout=10.0)
        stream = await buyer.connect()
        own = await direct.connect()  # the leader's own websocket
        try:
            await own.subscribe("trades", symbol=SYMBOL)
            # orders and market data through the gateway
            book = await stream.local_book(SYMBOL, timeout=30)
            await stream.subscribe("trades", symbol=SYMBOL)
            sell = await seller.place(SYMBOL, "sell", 5, "45000", client_order_id="gw-sell-1")
            assert sell["status"] == "open" and sell["order_id"]
            buy = await buyer.place(SYMBOL, "buy", 2, "45000", client_order_id="gw-buy-1")
            assert buy["status"] == "filled" and len(buy["fills"]) == 1
            trade_id = buy["fills"][0]["trade_id"]
            seen = await stream.next_event(timeout=30, where=lambda m: m.get("channel") == "trades")
            assert str(trade_id) in str(seen), seen
            seen_own = await own.next_event(timeout=30, where=lambda m: m.get("channel") == "trades")
            assert seen_own["trade_id"] == trade_id and seen_own["stream_seq"] == seen["stream_seq"] > 0
            for _ in range(300):  # the book's deltas, fanned out by the gateway (bounded wait)
                if book.best_ask() is not None:
                    break
                await asyncio.sleep(0.1)
            best = book.best_ask()
            assert best is not None and best[:2] == (Decimal("45000"), Decimal(3)), best

            # websocket order entry (a batch on the venue side) and the store-backed history
            bid = await stream.place(SYMBOL, "buy", 1, "44000", client_order_id="gw-ws-1")
            assert bid["status"] == "open" and bid["order_id"], bid
            for _ in range(300):
                fills = await buyer.my_fills(SYMBOL)
                if fills:
                    break
                await asyncio.sleep(0.1)
            assert [f["trade_id"] for f in fills] == [trade_id]
            record = await seller.request("GET", f"/v1/orders/{sell['order_id']}")
            assert record["status"] == "partially_filled", record

            # an order the leader acknowledges itself, then the leader dies
            rested = await direct.place(SYMBOL, "sell", 1, "46000", client_order_id="direct-1")
            filled = await direct_b.place(SYMBOL, "buy", 1, "45000", client_order_id="direct-2")
            assert filled["status"] == "filled"
            leader.send_signal(signal.SIGKILL)
            leader.wait(timeout=30)

            # sent while no process leads: the gateway retries the same request until one does
            inflight = await seller.place(SYMBOL, "sell", 1, "47000", client_order_id="gw-inflight-1")
            assert inflight["status"] == "open"
            assert b"submit: no leader answered" in (tmp_path / "gw.log").read_bytes()  # it was in flight
            assert gateway.poll() is None
            again = await seller.place(SYMBOL, "sell", 1, "47000", client_order_id="gw-inflight-1")
            assert again["order_id"] == inflight["order_id"]
            # the dead leader's acknowledged order, resent through the gateway: the same order
            resent = await seller.place(SYMBOL, "sell", 1, "46000", client_order_id="direct-1")
            assert resent["order_id"] == rested["order_id"]
            # and one that filled at once: the same order, filled, not a second trade
            refilled = await buyer.place(SYMBOL, "buy", 1, "45000", client_order_id="direct-2")
            assert (refilled["order_id"], refilled["status"]) == (filled["order_id"], "filled"), refilled
            assert len(await buyer.my_fills(SYMBOL)) == 2  # gw-buy-1's and direct-2's

            mine = await seller.my_orders(SYMBOL)
            coids = sorted(o["client_order_id"] for o in mine)
            assert coids == ["direct-1", "gw-inflight-1", "gw-sell-1"], mine
            await _log_says(tmp_path / "b.log", b"(leader; at", standby, timeout=5)

            # a trade on the new leader: its stream_seq is its order's batch, after the takeover's epoch
            after = await buyer.place(SYMBOL, "buy", 1, "46000", client_order_id="gw-after-1")
            assert after["status"] == "filled", after
            later = await stream.next_event(timeout=30, where=lambda m: m.get("channel") == "trades"
                                            and m["trade_id"] == after["fills"][0]["trade_id"])
            positions, epochs = await asyncio.to_thread(_positions_in_stream, url, tmp_path / "reader")
            assert seen["stream_seq"] == positions[(B, "gw-buy-1")]
            assert later["stream_seq"] == positions[(B, "gw-after-1")] > max(epochs) > seen["stream_seq"]
        finally:
            with contextlib.suppress(Exception):  # its server was killed
                await own.close()
            await stream.close()
            for client in (seller, buyer, direct, direct_b):
                await client.aclose()
