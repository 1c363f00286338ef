#!/usr/bin/env python3
"""Crash test: drive orders into a venue node, SIGKILL it at random points, restart, verify.

    .venv/bin/python scripts/crash_test.py --orders 3000 --kills 8 [--store-url sqlite:///...]

The node speaks the line protocol of ``journal.node`` (``--node-cmd`` swaps in another process
that speaks it too; ``{python}``, ``{dir}``, ``{engine}`` are substituted). Requests are pipelined
(``--window`` in flight), so kills land in the middle of group-commit batches.

Checked at the end, against the journal left on disk:
* every acknowledged command is in the journal at the acknowledged seq, as sent (ts = the
  acknowledged stamp), and a clean replay gives the acknowledged outcome: code, order id, trade ids;
* every restart recovered at least up to the highest seq acknowledged before the kill (after some
  kills the journal's unacknowledged tail is also torn/cut, as a power loss would, see ``--tear``);
* the journal holds only commands the driver sent (nothing invented, nothing duplicated);
* the last node's engine (snapshot + replay + live commands) equals a clean replay of the journal:
  same engine-state digest, same L2 book, same applied seq; ``validate()`` passes;
* with ``--store-url``: every acknowledged order and trade is in the store, and the store equals a
  rebuild from the journal.
Exit status 0 when all hold; the report is printed as JSON.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import dataclasses
import json
import os
import random
import shlex
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from engine import (  # noqa: E402
    AddInstrument,
    AdvanceTime,
    AmendOrder,
    CancelOrder,
    Command,
    InstrumentSpec,
    MassCancel,
    NewOrder,
    OrderType,
    Side,
    TimeInForce,
)
from journal import Journal, codec  # noqa: E402
from journal.journal import MAGIC  # noqa: E402
from journal.node import engine_digest, engine_factory, result_summary  # noqa: E402

SYMBOL = "OMN1"
SPEC = InstrumentSpec(symbol=SYMBOL, tick_size=10_000, lot_size=10**18, band_low=1, band_high=10_000)
PARTICIPANTS = [f"p{i}" for i in range(1, 7)]
DEFAULT_NODE_CMD = "{python} -m journal.node --dir {dir} --engine {engine} --snapshot-every {snapshot_every}"
STORE_NODE_CMD = "{python} -m venue.node --dir {dir} --engine {engine} --snapshot-every {snapshot_every}"


class NodeDied(Exception):
    pass


class NodeProcess:
    """One node process; a reader thread collects replies by request id."""

    def __init__(self, argv: list[str], log: Path) -> None:
        self._stderr = log.open("ab")
        self.proc = subprocess.Popen(
            argv, cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, start_new_session=True
        )
        self.replies: dict[int, dict[str, Any]] = {}
        self.cond = threading.Condition()
        self.eof = False
        ready = self.proc.stdout.readline() if self.proc.stdout else b""
        if not ready:
            self.proc.wait()
            raise NodeDied(f"node exited before ready (rc={self.proc.returncode}); see {log}")
        self.ready: dict[str, Any] = json.loads(ready)
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            doc = json.loads(line)
            with self.cond:
                self.replies[doc["id"]] = doc
                self.cond.notify_all()
        with self.cond:
            self.eof = True
            self.cond.notify_all()

    def send(self, doc: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(doc, separators=(",", ":")).encode() + b"\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError) as exc:
            raise NodeDied(f"node stdin closed: {exc}") from exc

    def wait_reply(self, req_id: int, timeout: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self.cond:
            while req_id not in self.replies:
                if self.eof:
                    raise NodeDied(f"node exited while waiting for request {req_id}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no reply to request {req_id} within {timeout}s")
                self.cond.wait(left)
            return self.replies[req_id]

    def wait_any(self, timeout: float) -> None:
        with self.cond:
            self.cond.wait(timeout)

    def kill(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self._thread.join()
        self._close()

    def finish(self, timeout: float = 60.0) -> int:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        rc = self.proc.wait(timeout)
        self._thread.join()
        self._close()
        return rc

    def _close(self) -> None:
        for f in (self.proc.stdin, self.proc.stdout):
            if f is not None:
                with contextlib.suppress(BrokenPipeError):
                    f.close()
        self._stderr.close()


@dataclasses.dataclass
class Sent:
    cmd: Command
    run: int


class Driver:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.rng = random.Random(args.seed)
        self.directory = Path(args.dir)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.sent: dict[int, Sent] = {}
        self.acks: dict[int, dict[str, Any]] = {}
        self.order_ids: list[int] = []
        self.next_id = 1
        self.problems: list[str] = []
        self.restarts: list[dict[str, Any]] = []
        self.tears = 0
        self.stream_sent = 0

    # ------------------------------------------------------------ command stream

    def random_command(self, req_id: int) -> Command:
        r = self.rng.random()
        who = self.rng.choice(PARTICIPANTS)
        side = self.rng.choice(list(Side))
        if r < 0.62 or not self.order_ids:
            tif = self.rng.choices(
                [TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK, TimeInForce.GTD], [80, 10, 4, 6]
            )[0]
            expire = time.time_ns() + self.rng.randint(0, 50_000_000) if tif is TimeInForce.GTD else None
            return NewOrder(
                ts=0,
                participant=who,
                symbol=SYMBOL,
                side=side,
                qty=self.rng.randint(1, 12),
                price=self.rng.randint(95, 105),
                tif=tif,
                expire_ts=expire,
                client_order_id=f"r{req_id}",
            )
        if r < 0.67:
            return NewOrder(
                ts=0,
                participant=who,
                symbol=SYMBOL,
                side=side,
                qty=self.rng.randint(1, 8),
                price=None,
                order_type=OrderType.MARKET,
                tif=TimeInForce.IOC,
                client_order_id=f"r{req_id}",
            )
        if r < 0.84:
            return CancelOrder(ts=0, participant=who, order_id=self.rng.choice(self.order_ids[-200:]))
        if r < 0.95:
            oid = self.rng.choice(self.order_ids[-200:])
            if self.rng.random() < 0.5:
                return AmendOrder(ts=0, participant=who, order_id=oid, qty=self.rng.randint(1, 15))
            return AmendOrder(ts=0, participant=who, order_id=oid, price=self.rng.randint(95, 105))
        if r < 0.97:
            return MassCancel(ts=0, participant=who, side=side if self.rng.random() < 0.5 else None)
        return AdvanceTime(ts=0)

    def submit(self, node: NodeProcess, cmd: Command, run: int) -> int:
        req_id = self.next_id
        self.next_id += 1
        self.sent[req_id] = Sent(cmd=cmd, run=run)
        node.send({"id": req_id, "op": "submit", "cmd": json.loads(codec.encode(cmd))})
        return req_id

    def harvest(self, node: NodeProcess, outstanding: set[int]) -> int:
        """Move replies that arrived into ``acks``; returns how many."""
        with node.cond:
            done = [i for i in outstanding if i in node.replies]
            for i in done:
                reply = node.replies.pop(i)
                outstanding.discard(i)
                if "error" in reply:
                    self.problems.append(f"request {i}: node error {reply['error']}")
                    continue
                self.acks[i] = reply
                if reply.get("order_id") is not None and isinstance(self.sent[i].cmd, NewOrder):
                    self.order_ids.append(reply["order_id"])
        return len(done)

    # ------------------------------------------------------------ runs

    def node_argv(self) -> list[str]:
        fields = {
            "python": sys.executable,
            "dir": str(self.directory),
            "engine": self.args.engine,
            "snapshot_every": str(self.args.snapshot_every),
        }
        template = self.args.node_cmd
        if self.args.store_url and template == DEFAULT_NODE_CMD:
            template = STORE_NODE_CMD  # the same node plus the store projection
        argv = [part.format(**fields) for part in shlex.split(template)]
        if self.args.store_url:
            argv += ["--store-url", self.args.store_url]
        return argv

    def tear_tail(self) -> None:
        """Simulate a power loss on top of the kill: SIGKILL alone never tears a write (the kernel
        finishes it), so cut the newest segment at a random byte after everything acknowledged
        (and after the newest snapshot, which only covers fsynced records) and append junk."""
        segments = sorted(self.directory.glob("journal-*.log"))
        if not segments:
            return
        path = segments[-1]
        data = path.read_bytes()
        keep_seq = max(
            [a["seq"] for a in self.acks.values()]
            + [_snapshot_seq(p) for p in self.directory.glob("snapshot-*.json")]
            + [0]
        )
        floor = _end_of_seq(data, int(path.name[8:28]), keep_seq)
        if floor is None or floor >= len(data):
            return
        cut = self.rng.randint(floor, len(data) - 1)
        garbage = self.rng.randbytes(self.rng.randint(1, 40))  # a torn write leaves junk, never a clean cut
        path.write_bytes(data[:cut] + garbage)
        self.tears += 1

    def start(self, run: int) -> NodeProcess:
        node = NodeProcess(self.node_argv(), self.directory / "node.stderr")
        acked_max = max((a["seq"] for a in self.acks.values()), default=0)
        recovered = node.ready.get("recovered_seq", 0)
        self.restarts.append(
            {
                "run": run,
                "recovered_seq": recovered,
                "acked_max_before": acked_max,
                "repaired": node.ready.get("repaired"),
            }
        )
        if recovered < acked_max:
            self.problems.append(f"run {run}: recovered only up to {recovered}, but {acked_max} was acknowledged")
        return node

    def run(self) -> dict[str, Any]:
        started = time.monotonic()
        runs = self.args.kills + 1
        per_run = max(1, self.args.orders // runs)
        final_state: dict[str, Any] = {}
        for run in range(runs):
            node = self.start(run)
            outstanding = {self.submit(node, AddInstrument(ts=0, spec=SPEC), run)}  # INSTRUMENT_EXISTS after run 0
            last = run == runs - 1
            kill_after = None if last else self.rng.randint(1, per_run)
            acked_this_run = 0
            # Killed runs stop early; the last run sends whatever of the budget is left.
            to_send = per_run if not last else max(0, self.args.orders - self.stream_sent)
            killed = False
            while to_send > 0 or outstanding:
                while to_send > 0 and len(outstanding) < self.args.window:
                    outstanding.add(self.submit(node, self.random_command(self.next_id), run))
                    to_send -= 1
                    self.stream_sent += 1
                    if kill_after is not None and self.rng.random() < 0.02:
                        break  # vary how much is in flight when the kill lands
                node.wait_any(0.01)
                acked_this_run += self.harvest(node, outstanding)
                if kill_after is not None and acked_this_run >= kill_after:
                    node.kill()
                    self.harvest(node, outstanding)  # replies read before the kill still count
                    if self.rng.random() < self.args.tear:
                        self.tear_tail()
                    killed = True
                    break
            if killed:
                continue
            state_id = self.next_id
            self.next_id += 1
            node.send({"id": state_id, "op": "state", "symbols": [SYMBOL]})
            final_state = node.wait_reply(state_id)
            stop_id = self.next_id
            self.next_id += 1
            node.send({"id": stop_id, "op": "stop"})
            node.wait_reply(stop_id)
            rc = node.finish()
            if rc != 0:
                self.problems.append(f"node exited with {rc} on stop")
        report = self.verify(final_state)
        report["elapsed_s"] = round(time.monotonic() - started, 2)
        return report

    # ------------------------------------------------------------ verification

    def verify(self, final_state: dict[str, Any]) -> dict[str, Any]:
        factory = engine_factory(self.args.engine)
        engine: Any = factory.new()
        replayed: dict[int, tuple[Command, dict[str, Any]]] = {}
        with Journal.open(self.directory) as journal:
            for seq, cmd in journal.replay():
                result = engine.process(cmd)
                replayed[seq] = (cmd, result_summary(seq, cmd, result))
            last_seq = journal.last_seq
        if hasattr(engine, "validate"):
            try:
                engine.validate()
            except Exception as exc:  # reported, not raised
                self.problems.append(f"clean replay fails validate(): {exc}")

        seen_seqs: set[int] = set()
        acked_orders = acked_trades = 0
        for req_id, ack in sorted(self.acks.items()):
            seq = ack["seq"]
            if seq in seen_seqs:
                self.problems.append(f"seq {seq} acknowledged twice")
            seen_seqs.add(seq)
            if seq not in replayed:
                self.problems.append(f"request {req_id}: acknowledged seq {seq} is not in the journal (lost)")
                continue
            cmd, summary = replayed[seq]
            expected_cmd = dataclasses.replace(self.sent[req_id].cmd, ts=ack["ts"])
            if cmd != expected_cmd:
                self.problems.append(f"request {req_id}: journal seq {seq} holds {cmd!r}, sent {expected_cmd!r}")
            ack_view = {k: ack[k] for k in ("seq", "ts", "code", "order_id", "trades")}
            if ack_view != summary:
                self.problems.append(f"request {req_id}: acknowledged {ack_view}, clean replay gives {summary}")
            if isinstance(cmd, NewOrder) and ack["order_id"] is not None:
                acked_orders += 1
            acked_trades += len(ack["trades"])

        sent_counts = collections.Counter(codec.encode(s.cmd) for s in self.sent.values())
        journal_counts = collections.Counter(codec.encode(dataclasses.replace(c, ts=0)) for c, _ in replayed.values())
        invented = journal_counts - sent_counts
        if invented:
            self.problems.append(f"journal holds {sum(invented.values())} commands the driver never sent")

        if not final_state:
            self.problems.append("no final state from the last node")
        else:
            if final_state.get("applied_seq") != last_seq:
                self.problems.append(f"final node applied {final_state.get('applied_seq')}, journal ends at {last_seq}")
            if final_state.get("engine_sha256") != engine_digest(engine):
                self.problems.append("final node engine state differs from a clean replay of the journal")
            if hasattr(engine, "l2"):
                clean_l2 = json.loads(json.dumps(dataclasses.asdict(engine.l2(SYMBOL))))
                if final_state.get("l2", {}).get(SYMBOL) != clean_l2:
                    self.problems.append("final node L2 book differs from a clean replay")
        store_report = self.verify_store() if self.args.store_url else None
        return {
            "ok": not self.problems,
            "problems": self.problems[:50],
            "kills": len(self.restarts) - 1,
            "simulated_torn_tails": self.tears,
            "tails_repaired_on_restart": sum(1 for r in self.restarts if r["repaired"]),
            "restarts": self.restarts,
            "sent": len(self.sent),
            "acknowledged": len(self.acks),
            "acknowledged_orders": acked_orders,
            "acknowledged_trades": acked_trades,
            "journal_commands": last_seq,
            "durable_but_unacknowledged": last_seq - len(self.acks),
            "store": store_report,
        }

    def verify_store(self) -> dict[str, Any]:
        from store import Store, rebuild_from_journal, sync_from_journal

        factory = engine_factory(self.args.engine)
        store = Store.open(self.args.store_url)
        try:
            with Journal.open(self.directory) as journal:
                sync_from_journal(journal, store, factory=factory)
                orders = {o.order_id: o for o in store.list_orders()}
                trades = {t.trade_id for t in store.list_trades()}
                for req_id, ack in self.acks.items():
                    is_order = isinstance(self.sent[req_id].cmd, NewOrder) and ack["order_id"] is not None
                    if is_order and ack["order_id"] not in orders:
                        self.problems.append(f"store lacks acknowledged order {ack['order_id']}")
                    for t in ack["trades"]:
                        if t not in trades:
                            self.problems.append(f"store lacks acknowledged trade {t}")
                live = (store.list_orders(), store.list_trades())
                rebuild_from_journal(journal, store, factory=factory)
                if (store.list_orders(), store.list_trades()) != live:
                    self.problems.append("store differs from a rebuild from the journal")
            return {"orders": len(orders), "trades": len(trades)}
        finally:
            store.close()


def _snapshot_seq(path: Path) -> int:
    return int(path.name[9:29])


def _end_of_seq(data: bytes, first_seq: int, seq: int) -> int | None:
    """Byte offset just after record ``seq`` in a segment (its start if ``seq`` is before it)."""
    header = struct.Struct("<IIQ")
    offset = len(MAGIC)
    if seq < first_seq:
        return offset
    while offset + header.size <= len(data):
        word, _crc, rec_seq = header.unpack_from(data, offset)
        offset += header.size + (int(word) & 0x7FFFFFFF)
        if rec_seq == seq:
            return offset
    return None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dir", default=None, help="node data directory (default: a new temp dir)")
    p.add_argument("--orders", type=int, default=3000, help="commands to send in total")
    p.add_argument("--kills", type=int, default=8, help="SIGKILLs (at least 5 for the acceptance run)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--window", type=int, default=64, help="requests in flight")
    p.add_argument("--snapshot-every", type=int, default=150)
    p.add_argument("--engine", default="engine:Engine", help="engine class for the node and the clean replay")
    p.add_argument("--node-cmd", default=DEFAULT_NODE_CMD, help="node command template")
    p.add_argument("--store-url", default=None, help="let the node project into this database and check it")
    p.add_argument("--tear", type=float, default=0.5, help="probability of a simulated torn tail after a kill")
    args = p.parse_args(argv)
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(2**32)
    if args.dir is None:
        args.dir = tempfile.mkdtemp(prefix="crash-test-")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report = Driver(args).run()
    report["seed"] = args.seed
    report["dir"] = args.dir
    print(json.dumps(report, indent=2))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
