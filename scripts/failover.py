"""Failover test of leader + hot standby on a three-node NATS JetStream cluster (``venue.ha``).

The driver starts three ``nats-server`` nodes with JetStream on free loopback ports (store dirs
under the work dir), anvil, deploys the contracts, lists an instrument and onboards two investors,
then runs two ``venue run --role ...`` processes (each its own data dir and SQLite store, one
replicated journal: an R3 stream) while two clients send random signed orders to whichever
process answers. Then, at random points:

- ``--kills`` times: SIGKILL the leader; the standby takes over when the lease lapses; the killed
  one is restarted as the new standby (the failover time, kill -> new leader ready, is printed);
- once: SIGSTOP the leader, wait for the standby to take over, SIGCONT the old leader: it must be
  fenced (its lease renewal or its next append is refused) and exit with status 3, never answer;
- once: SIGKILL one NATS node while orders flow (restarted afterwards).

Finally it checks, against the final leader's store, the chain and a clean replay of the stream:
every acknowledged order and trade is present exactly once, the live book equals the replay,
every trade settled on chain exactly once (the wallets moved by exactly the trades).

    .venv/bin/python scripts/failover.py --kills 10 --seed 7
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import crash_venue as cv  # noqa: E402

from engine import Engine, NewOrder  # noqa: E402
from journal.nats import NatsJournal  # noqa: E402
from settlement.chain import start_anvil  # noqa: E402
from settlement.deploy import DemoAdmin  # noqa: E402
from tests.ha.cluster import NatsCluster, free_port  # noqa: E402
from venue.config import VenueConfig  # noqa: E402
from venue.ha import EXIT_DEPOSED  # noqa: E402
from venueclient import ApiError, TransportError, VenueClient  # noqa: E402

LEASE_TTL = 2.0
SYMBOL = cv.SYMBOL
PARTICIPANTS = cv.PARTICIPANTS


class Node:
    """One venue process slot: data dir, port, and the process when running."""

    def __init__(self, name: str, config: VenueConfig, journal_url: str, settler_key: str, log: Path) -> None:
        self.name, self.config, self.journal_url = name, config, journal_url
        self.settler_key, self.log = settler_key, log
        self.proc: subprocess.Popen[bytes] | None = None
        self._log_from = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.config.port}"

    def start(self, role: str) -> None:
        env = {**os.environ, "VENUE_SETTLER_KEY": self.settler_key, "VENUE_FINALITY": str(cv.FINALITY),
               "VENUE_JOURNAL_REPLICAS": "3", "VENUE_LEASE_TTL_S": str(LEASE_TTL)}
        cmd = [sys.executable, "-m", "venue.cli", "run", "--role", role, "--journal-url", self.journal_url,
               "--data-dir", str(self.config.data_dir), "--chain", self.config.chain, "--port", str(self.config.port)]
        with self.log.open("ab") as out:
            out.write(f"\n=== start {self.name} as {role} ===\n".encode())
        self._log_from = self.log.stat().st_size
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=self.log.open("ab"), stderr=subprocess.STDOUT)

    async def standing_by(self, timeout: float = 120.0) -> None:
        """Wait until this (re)started process follows the stream (a hot standby)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.log.open("rb") as f:
                f.seek(self._log_from)
                if b"standby: following" in f.read():
                    return
            if not self.running():
                raise SystemExit(f"venue {self.name} exited while starting as a standby (see {self.log})")
            await asyncio.sleep(0.1)
        raise SystemExit(f"venue {self.name} did not stand by within {timeout} s")

    def takeover_times(self) -> tuple[float | None, float | None]:
        """Wall-clock times this process printed since its start: stream claimed, serving."""
        with self.log.open("rb") as f:
            f.seek(self._log_from)
            text = f.read().decode(errors="replace")
        claimed = re.findall(r"claimed at ([0-9.]+)\)", text)
        serving = re.findall(r"\(leader; at ([0-9.]+)\)", text)
        return (float(claimed[-1]) if claimed else None, float(serving[-1]) if serving else None)

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)


async def ready(http: httpx.AsyncClient, node: Node) -> bool:
    try:
        return (await http.get(f"{node.url}/health", timeout=1.0)).status_code == 200
    except httpx.HTTPError:
        return False


async def wait_leader(nodes: list[Node], timeout: float, exclude: Node | None = None) -> tuple[Node, float]:
    """The node that serves (the leader) and how long it took to appear."""
    t0 = time.monotonic()
    async with httpx.AsyncClient() as http:
        while time.monotonic() - t0 < timeout:
            for node in nodes:
                if node is not exclude and node.proc is not None and not node.running():
                    # what a process manager does (restart=always): a deposed leader comes back as a standby
                    print(f"{node.name} exited with {node.proc.returncode}: restarted as a standby", flush=True)
                    node.start("standby")
                if node is not exclude and node.running() and await ready(http, node):
                    return node, time.monotonic() - t0
            await asyncio.sleep(0.05)
    raise SystemExit(f"no leader within {timeout} s (see the logs in {nodes[0].log.parent})")


class Flow:
    """Two clients sending random orders to whichever node answers; acknowledgements recorded."""

    def __init__(self, nodes: list[Node], keys: dict[str, dict[str, str]], rng: random.Random) -> None:
        self.nodes, self.keys, self.rng = nodes, keys, rng
        self.acks = cv.Acks()
        self.coids: Counter[str] = Counter()
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._stop.clear()
        self._tasks = [asyncio.create_task(self._client(p, random.Random(self.rng.random()))) for p in PARTICIPANTS]

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)

    async def _client(self, participant: str, rng: random.Random) -> None:
        key = self.keys[participant]
        clients = [VenueClient(n.url, key["key_id"], key["private_key"], timeout=2.0) for n in self.nodes]
        current = 0
        try:
            while not self._stop.is_set():
                client = clients[current]
                try:
                    if rng.random() < 0.15 and self.acks.orders:
                        await client.cancel(rng.choice(list(self.acks.orders)))
                        continue
                    side = rng.choice(("buy", "sell"))
                    price = Decimal(45_000) + Decimal(rng.randint(-20, 20)) / 10
                    ack = await client.place(SYMBOL, side, rng.randint(1, 3), price)
                except ApiError:
                    await asyncio.sleep(0.01)  # refused (or a standby that is still starting): nothing acknowledged
                    continue
                except TransportError:
                    current = (current + 1) % len(clients)  # the other node may lead now
                    await asyncio.sleep(0.05)
                    continue
                self.acks.orders[int(ack["order_id"])] = ack["client_order_id"]
                self.coids[ack["client_order_id"]] += 1
                for fill in ack["fills"]:
                    self.acks.trades[int(fill["trade_id"])] = (fill["price"], fill["qty"])
        finally:
            for c in clients:
                await c.aclose()


def replay_stream(url: str, directory: Path) -> tuple[Engine, list[str]]:
    """A clean replay of the whole stream into a fresh engine, and every client order id in it."""
    engine = Engine()
    coids: list[str] = []
    with NatsJournal.open(url, directory) as journal:
        for _, cmd in journal.replay():
            engine.process(cmd)
            if isinstance(cmd, NewOrder) and cmd.client_order_id:
                coids.append(cmd.client_order_id)
    return engine, coids


def replayed_levels(engine: Engine) -> tuple[cv.Levels, cv.Levels]:
    spec = engine.spec(SYMBOL)
    assert spec is not None, "the stream never listed the instrument"
    snap = engine.l2(SYMBOL)

    def fmt(levels: Any) -> cv.Levels:
        return [(Decimal(lv.price * spec.tick_size) / 10**6, Decimal(lv.qty)) for lv in levels]

    return fmt(snap.bids), fmt(snap.asks)


async def main_async(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    workdir = Path(args.dir or tempfile.mkdtemp(prefix="failover-"))
    cluster = NatsCluster(workdir / "nats", size=3).start()
    chain = start_anvil(block_time=cv.BLOCK_TIME)
    nodes: list[Node] = []
    try:
        rpc = str(chain.w3.provider.endpoint_uri)  # type: ignore[attr-defined]
        settler_key = "0x" + chain.private_key(chain.accounts[1]).hex()
        journal_url = cluster.url("OMN")
        configs = [VenueConfig(data_dir=workdir / name, chain=rpc, port=free_port()) for name in ("a", "b")]
        keys = cv.setup(chain, configs[0])
        configs[1].data_dir.mkdir(parents=True, exist_ok=True)
        for item in configs[0].data_dir.iterdir():  # the same reference data (store, keys, deployment)
            if item.is_file():
                shutil.copy2(item, configs[1].data_dir / item.name)
        before = {p: DemoAdmin(chain, cv._deployment(configs[0])).balances(keys[p]["wallet"]) for p in PARTICIPANTS}
        nodes = [Node(name, c, journal_url, settler_key, workdir / f"venue-{name}.log")
                 for name, c in zip(("a", "b"), configs, strict=True)]
        nodes[0].start("auto")
        leader, _ = await wait_leader(nodes, timeout=120)
        nodes[1].start("standby")
        await nodes[1].standing_by()
        flow = Flow(nodes, keys, rng)
        flow.start()
        failovers: list[float] = []
        stop_at = rng.randrange(args.kills + 1) if args.sigstop else -1
        nats_kill_at = rng.randrange(args.kills + 1) if args.nats_kill else -1
        fenced_ok = not args.sigstop
        for i in range(args.kills + (1 if args.sigstop else 0)):
            await asyncio.sleep(rng.uniform(0.3, args.seconds))
            if i == nats_kill_at:
                victim = rng.choice(cluster.nodes)
                victim.kill()
                print(f"killed NATS node {victim.name}", flush=True)
                await asyncio.sleep(rng.uniform(0.5, 1.5))
            standby = next(n for n in nodes if n is not leader)
            if i == stop_at:
                fenced_ok = await sigstop_round(leader, nodes, failovers)
            else:
                t0, wall = time.monotonic(), time.time()
                leader.signal(signal.SIGKILL)
                assert leader.proc is not None
                leader.proc.wait()
                new, _ = await wait_leader(nodes, timeout=90, exclude=leader)
                failovers.append(time.monotonic() - t0)
                claimed, serving = new.takeover_times()
                detail = (f" (kill -> stream claimed {claimed - wall:.2f} s, -> serving {serving - wall:.2f} s)"
                          if claimed and serving else "")
                print(f"kill {len(failovers)}: {leader.name} -> {new.name} in {failovers[-1]:.2f} s{detail}",
                      flush=True)
                leader.start("standby")
            if i == nats_kill_at:
                for n in cluster.nodes:
                    if n.proc is None:
                        n.start()
            deposed = leader
            leader = standby
            await deposed.standing_by()  # the restarted node follows again before the next kill
        await asyncio.sleep(1.0)
        await flow.stop()
        leader, _ = await wait_leader(nodes, timeout=60)
        live = await cv.book_levels(leader.url, keys[PARTICIPANTS[0]])
        settled = await cv._wait_settled(leader.config, chain, timeout=180)
        engine, coids = await asyncio.to_thread(replay_stream, journal_url, workdir / "replay")
        problems = verify_stream(flow, coids)
        if not fenced_ok:
            problems.append("the SIGSTOPped leader was not fenced (it did not exit with status 3)")
        for node in nodes:
            if node.running():
                node.signal(signal.SIGTERM)
                assert node.proc is not None
                with contextlib.suppress(subprocess.TimeoutExpired):
                    node.proc.wait(timeout=30)
        flow.acks.kills = len(failovers)
        ok = cv._verify(leader.config, chain, keys, flow.acks, before, live, settled,
                        replay=replayed_levels(engine)) == 0
        if failovers:
            qs = sorted(failovers)
            print(f"failover times (s, kill -> new leader serving) over {len(qs)}: min {qs[0]:.2f} "
                  f"p50 {statistics.median(qs):.2f} max {qs[-1]:.2f} mean {statistics.fmean(qs):.2f}")
        for p in problems:
            print("PROBLEM:", p)
        good = ok and not problems
        print(f"failovers: {len(failovers)}; fenced: {fenced_ok}")
        print("OK" if good else "FAILED")
        return 0 if good else 1
    finally:
        for node in nodes:
            if node.running():
                node.signal(signal.SIGKILL)
        chain.close()
        cluster.stop()


async def sigstop_round(leader: Node, nodes: list[Node], failovers: list[float]) -> bool:
    """Pause the leader until the standby leads, resume it: it must exit (fenced), status 3."""
    t0 = time.monotonic()
    leader.signal(signal.SIGSTOP)
    new, _ = await wait_leader(nodes, timeout=90, exclude=leader)
    failovers.append(time.monotonic() - t0)
    print(f"sigstop: {leader.name} paused -> {new.name} leads in {failovers[-1]:.2f} s", flush=True)
    leader.signal(signal.SIGCONT)
    assert leader.proc is not None
    try:
        status = leader.proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        leader.signal(signal.SIGKILL)
        leader.proc.wait()
        status = None
    print(f"sigstop: resumed {leader.name} exited with {status} (fenced = {status == EXIT_DEPOSED})", flush=True)
    leader.start("standby")
    return status == EXIT_DEPOSED


def verify_stream(flow: Flow, coids: list[str]) -> list[str]:
    problems = []
    in_stream = Counter(coids)
    for coid, n in flow.coids.items():
        if n != 1:
            problems.append(f"client order id {coid} acknowledged {n} times")
        if in_stream[coid] != 1:
            problems.append(f"acknowledged order {coid} is {in_stream[coid]} times in the stream")
    print(f"acknowledged orders: {len(flow.coids)}; in the stream once each: "
          f"{all(in_stream[c] == 1 for c in flow.coids)}; orders in the stream: {len(coids)}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=10, help="SIGKILLs of the leader")
    parser.add_argument("--seconds", type=float, default=2.0, help="max trading time before each kill")
    parser.add_argument("--no-sigstop", dest="sigstop", action="store_false", help="skip the SIGSTOP round")
    parser.add_argument("--no-nats-kill", dest="nats_kill", action="store_false", help="keep every NATS node up")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--dir", help="work directory (default: a new temp dir)")
    return asyncio.run(main_async(parser.parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
