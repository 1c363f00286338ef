"""The leader with ``--store external --settlement external`` and the two consumers as processes
of their own (issue 17): one NATS server (R1), anvil, ``venue run --role auto``, ``venue
store-consumer`` and ``venue settler``. Orders and trades land in the store through the consumer
and every trade settles through the settler; both are SIGKILLed mid-flow while trading goes on,
restarted, and catch up: the store equals a replay of the stream (no loss, no duplicate), every
trade is decided once on chain and its state reaches the leader (recorded in its store)."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from journal.nats import NatsJournal
from settlement.deploy import DemoAdmin
from store import Store, rebuild_from_journal
from tests.ha.cluster import free_port
from tests.ha.test_gateway_process import ROOT, _healthy, _start, process_world
from venue.config import VenueConfig
from venueclient import VenueClient

sys.path.insert(0, str(ROOT / "scripts"))

import crash_venue as cv

SYMBOL = cv.SYMBOL
A, B = cv.PARTICIPANTS


async def _until(predicate: object, what: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


def _kill(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)


@pytest.mark.slow
@pytest.mark.anvil
async def test_store_and_settlement_run_as_consumers_and_catch_up(tmp_path: Path) -> None:
    with process_world(tmp_path, "OMNCONS") as world:
        chain, rpc, env, url, procs = world.chain, world.rpc, world.env, world.url, world.procs
        config = VenueConfig(data_dir=tmp_path / "a", chain=rpc, port=free_port())
        keys = cv.setup(chain, config)
        db = config.database_url

        def consumers() -> tuple[subprocess.Popen[bytes], subprocess.Popen[bytes]]:
            store_proc = _start(["store-consumer", "--journal-url", url, "--db-url", db,
                                 "--data-dir", str(tmp_path / "sc"), "--log-format", "text"],
                                tmp_path / "store-consumer.log", env)
            settler = _start(["settler", "--journal-url", url, "--data-dir", str(config.data_dir), "--chain", rpc,
                              "--log-format", "text"], tmp_path / "settler.log", env)
            procs.extend((store_proc, settler))
            return store_proc, settler

        store_proc, settler = consumers()  # started with the leader: the streams are durable
        leader = _start(["run", "--role", "auto", "--store", "external", "--settlement", "external",
                         "--journal-url", url, "--data-dir", str(config.data_dir), "--chain", rpc,
                         "--port", str(config.port)], tmp_path / "leader.log", env)
        procs.append(leader)
        leader_url = f"http://127.0.0.1:{config.port}"
        await _healthy(leader_url, leader)

        store = Store.open(db, migrate=False)
        seller = VenueClient(leader_url, keys[A]["key_id"], keys[A]["private_key"], timeout=30.0)
        buyer = VenueClient(leader_url, keys[B]["key_id"], keys[B]["private_key"], timeout=30.0)
        stream = NatsJournal.open(url, tmp_path / "reader")
        try:
            async def trade(n: int, tag: str) -> list[int]:
                ids = []
                for i in range(n):
                    await seller.place(SYMBOL, "sell", 1 + i, "45000", client_order_id=f"{tag}-s{i}")
                    bought = await buyer.place(SYMBOL, "buy", 1 + i, "45000", client_order_id=f"{tag}-b{i}")
                    ids += [f["trade_id"] for f in bought["fills"]]
                await seller.place(SYMBOL, "sell", 1, "46000", client_order_id=f"{tag}-rest")  # stays on the book
                return ids

            def journal_seq() -> int:
                stream.refresh()
                return stream.last_seq

            first = await trade(3, "one")
            await _until(lambda: {t.trade_id for t in store.list_trades()} >= set(first), "the trades in the store")

            _kill(store_proc)  # both consumers die mid-flow; the leader keeps trading
            _kill(settler)
            second = await trade(3, "two")
            assert store.last_projected_seq() < journal_seq()  # the leader did not project them itself
            store_proc, settler = consumers()
            await _until(lambda: store.last_projected_seq() == journal_seq(), "the store consumer's catch-up")
            trades = first + second
            assert sorted(t.trade_id for t in store.list_trades()) == sorted(trades)

            # every trade decided once on chain, its final state recorded by the leader
            await _until(lambda: all(cv._stored_state(config, t) == "final" for t in trades),
                         "every trade final in the leader's store", timeout=120)
            demo = DemoAdmin(chain, cv._deployment(config))
            contract = demo.settlement
            assert all(tuple(contract.functions.decision(t).call()) == (True, True) for t in trades)
            moved = sum(1 + i for i in range(3)) * 2
            notes = demo.balances(keys[B]["wallet"])[0]
            assert notes == 100_000 + moved  # the buyer got each trade's notes once

            # the projection equals an in-process projection of the same stream
            replayed = Store.open(f"sqlite:///{tmp_path / 'replayed.sqlite'}")
            try:
                stream.refresh()
                rebuild_from_journal(stream, replayed)
                assert store.list_orders(limit=1000) == replayed.list_orders(limit=1000)
                assert [(t.trade_id, t.price, t.qty, t.cmd_seq) for t in store.list_trades(limit=1000)] == \
                    [(t.trade_id, t.price, t.qty, t.cmd_seq) for t in replayed.list_trades(limit=1000)]
            finally:
                replayed.close()
        finally:
            await seller.aclose()
            await buyer.aclose()
            stream.close()
            store.close()
