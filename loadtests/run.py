"""Load test driver: one venue, locust at several load points, then the consistency check.

    .venv/bin/python -m loadtests.run --investors 4,8,16 --makers 2 --subscribers 4 --duration 20

Starts ``loadtests.host`` (a fresh venue on loopback: SQLite + in-process EVM by default,
``--chain anvil`` for a real node), then for each load point runs locust headless for a fixed
time (``MarketMakerUser`` x makers over websockets, ``InvestorUser`` x investors over REST,
``SubscriberUser`` x subscribers on the book channel), reads locust's CSV statistics, and finally
asks the venue for its view and checks it against every fill the clients saw (``loadtests.check``).
Prints a table, writes JSON (``--out``), exits 1 if the check failed or a part did not run.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from loadtests import LoadTestError, cli
from loadtests.check import check

REPO = Path(__file__).resolve().parent.parent
LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"
ORDER_ROWS = ("WS new_order", "WS amend", "WS mass_cancel", "POST POST /v1/orders ioc",
              "POST POST /v1/orders passive", "POST POST /v1/orders/cancel")


class Host:
    """The venue host subprocess (own session, so a hard stop also ends the anvil it started)."""

    def __init__(self, workdir: Path, *, makers: int, investors: int, chain: str, settle_timeout: float,
                 profile: Path | None = None) -> None:
        self.keys = workdir / "keys.json"
        self.settle_timeout = settle_timeout
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "loadtests.host", "--data-dir", str(workdir / "venue"), "--keys-out",
             str(self.keys), "--makers", str(makers), "--investors", str(investors), "--chain", chain,
             "--settle-timeout", str(settle_timeout), *(["--profile", str(profile)] if profile else [])],
            cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, start_new_session=True,
        )
        self._lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True, name="host-stdout").start()
        try:
            self.base_url = str(self._read_tagged("READY", 600)["base_url"])
        except BaseException:
            self.stop()
            raise

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put("")  # end of output

    def _read_tagged(self, tag: str, timeout: float) -> dict[str, Any]:
        """The JSON after ``tag`` on the host's stdout (other lines are passed through to stderr)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise LoadTestError(f"no {tag} from the venue host within {timeout:.0f} s") from None
            if not line:
                raise LoadTestError(f"the venue host exited (code {self.proc.wait()}) before printing {tag}")
            if line.startswith(tag + " "):
                return dict(json.loads(line[len(tag) + 1:]))
            sys.stderr.write(line)

    def view(self) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write("check\n")
        self.proc.stdin.flush()
        return self._read_tagged("CHECK", self.settle_timeout + 120)

    def stop(self) -> None:
        if self.proc.poll() is None and self.proc.stdin is not None:
            try:
                self.proc.stdin.write("stop\n")
                self.proc.stdin.close()
            except OSError:
                pass
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def _row(stats: dict[str, dict[str, str]], name: str) -> dict[str, float]:
    r = stats.get(name)
    if r is None or not int(r["Request Count"]):
        return {"count": 0, "failures": 0, "rps": 0.0, "p50": float("nan"), "p99": float("nan")}
    return {"count": int(r["Request Count"]), "failures": int(r["Failure Count"]), "rps": float(r["Requests/s"]),
            "p50": float(r["50%"]), "p99": float(r["99%"])}


def _merged_percentiles(stats: dict[str, dict[str, str]], names: tuple[str, ...]) -> tuple[float, float]:
    """Count-weighted p50/p99 of several rows (locust keeps no merged histogram per group)."""
    rows = [_row(stats, n) for n in names]
    total = sum(r["count"] for r in rows)
    if not total:
        return float("nan"), float("nan")
    return (sum(r["p50"] * r["count"] for r in rows if r["count"]) / total,
            max(r["p99"] for r in rows if r["count"]))


def run_point(host: Host, workdir: Path, *, makers: int, investors: int, subscribers: int,
              duration: int) -> tuple[dict[str, Any], dict[str, Any]]:
    prefix = workdir / f"locust-{makers}m-{investors}i"
    observed_path = workdir / f"observed-{makers}m-{investors}i.json"
    users = makers + investors + subscribers
    classes = ["MarketMakerUser", "InvestorUser"] + (["SubscriberUser"] if subscribers else [])
    env = {**os.environ, "LOADTEST_KEYS": str(host.keys), "LOADTEST_OBSERVED": str(observed_path),
           "LOADTEST_MAKERS": str(makers), "LOADTEST_SUBSCRIBERS": str(subscribers)}
    cmd = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "-u", str(users), "-r", str(users),
           "-t", f"{duration}s", "--stop-timeout", "10", "--host", host.base_url, "--csv", str(prefix),
           "--only-summary", "--loglevel", "WARNING", *classes]
    started = time.monotonic()
    try:
        done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=duration + 120)
    except subprocess.TimeoutExpired as exc:
        raise LoadTestError(f"locust did not stop within {duration + 120} s") from exc
    if done.returncode not in (0, 1):  # 1: some requests failed, which the table reports
        raise LoadTestError(f"locust exited with {done.returncode}: {done.stderr[-2000:]}")
    with open(f"{prefix}_stats.csv") as fh:
        stats = {f"{r['Type']} {r['Name']}": r for r in csv.DictReader(fh)}
    observed: dict[str, Any] = json.loads(observed_path.read_text())
    ws_p50, ws_p99 = _merged_percentiles(stats, ("WS new_order", "WS amend", "WS mass_cancel"))
    rest = _row(stats, "POST POST /v1/orders ioc")
    md = _row(stats, "MD book delta")
    orders = sum(_row(stats, n)["count"] for n in ORDER_ROWS)
    failures = sum(_row(stats, n)["failures"] for n in (*ORDER_ROWS, "POST POST /v1/orders/mass-cancel"))
    point = {
        "makers": makers, "investors": investors, "subscribers": subscribers, "duration_s": duration,
        "wall_s": round(time.monotonic() - started, 1),
        "orders": orders, "orders_per_s": round(sum(_row(stats, n)["rps"] for n in ORDER_ROWS), 1),
        "ws_ack_p50_ms": ws_p50, "ws_ack_p99_ms": ws_p99,
        "rest_ioc_p50_ms": rest["p50"], "rest_ioc_p99_ms": rest["p99"],
        "md_deltas": md["count"], "md_fanout_p50_ms": md["p50"], "md_fanout_p99_ms": md["p99"],
        "md_gaps": observed["md_gaps"], "md_crossed": observed["md_crossed"],
        "errors": failures, "error_codes": observed["failures"], "rejections": sum(observed["rejections"].values()),
        "rejection_codes": observed["rejections"],
        "fills_streamed": len(observed["stream_fills"]),
    }
    return point, observed


def _fmt(value: float) -> str:
    return "-" if value != value else f"{value:.1f}"  # NaN: no samples


def table(points: list[dict[str, Any]]) -> str:
    lines = ["| makers (ws) | investors (REST) | md subscribers | orders/s | ws ack p50 / p99 ms | "
             "REST IOC p50 / p99 ms | md fan-out p50 / p99 ms | errors | rejections |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for p in points:
        lines.append(
            f"| {p['makers']} | {p['investors']} | {p['subscribers']} | {p['orders_per_s']:.0f} | "
            f"{_fmt(p['ws_ack_p50_ms'])} / {_fmt(p['ws_ack_p99_ms'])} | "
            f"{_fmt(p['rest_ioc_p50_ms'])} / {_fmt(p['rest_ioc_p99_ms'])} | "
            f"{_fmt(p['md_fanout_p50_ms'])} / {_fmt(p['md_fanout_p99_ms'])} | {p['errors']} | {p['rejections']} |")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> dict[str, Any]:
    try:
        investor_points = [int(x) for x in args.investors.split(",")]
        maker_points = [int(x) for x in args.makers.split(",")]
    except ValueError as exc:
        raise LoadTestError(f"--investors and --makers take comma-separated counts: {exc}") from exc
    if len(maker_points) == 1:
        maker_points *= len(investor_points)
    if len(maker_points) != len(investor_points) or min(maker_points + investor_points) < 1:
        raise LoadTestError("--makers is one count or one per load point (as many as --investors), all >= 1")
    with tempfile.TemporaryDirectory(prefix="omn-load-") as tmp:
        workdir = Path(tmp)
        started = time.monotonic()
        host = Host(workdir, makers=max(maker_points), investors=max(investor_points), chain=args.chain,
                    settle_timeout=args.settle_timeout, profile=args.host_profile)
        setup_s = time.monotonic() - started
        try:
            points: list[dict[str, Any]] = []
            md_crossed = 0
            stream_fills: list[Any] = []
            ack_fills: list[Any] = []
            for makers, investors in zip(maker_points, investor_points, strict=True):
                point, observed = run_point(host, workdir, makers=makers, investors=investors,
                                            subscribers=args.subscribers, duration=args.duration)
                points.append(point)
                stream_fills += observed["stream_fills"]
                ack_fills += observed["ack_fills"]
                md_crossed += observed["md_crossed"]
                print(f"load point {len(points)}/{len(investor_points)}: {point['orders_per_s']:.0f} orders/s",
                      file=sys.stderr, flush=True)
            view = host.view()
        finally:
            host.stop()
    result = check(view, {"stream_fills": stream_fills, "ack_fills": ack_fills, "md_crossed": md_crossed})
    return {"chain": args.chain, "cores": os.cpu_count(), "setup_s": round(setup_s, 1), "points": points,
            "consistency": result.as_json(), "settlement_counts": view["settlement_counts"],
            "venue_rejections": view["rejection_counts"], "journal_commands": view["journal_commands"],
            "watcher": view["watcher"]}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--investors", default="4,8,16", help="comma-separated investor counts, one load point each")
    parser.add_argument("--makers", default="2", help="market makers: one count, or one per load point")
    parser.add_argument("--subscribers", type=int, default=4, help="market-data subscribers (fan-out latency)")
    parser.add_argument("--duration", type=int, default=20, help="seconds per load point")
    parser.add_argument("--chain", default="inprocess", help="inprocess | anvil")
    parser.add_argument("--settle-timeout", type=float, default=300.0)
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    parser.add_argument("--host-profile", type=Path, help="cProfile the venue's event loop, write the stats here")
    return parser


def summary(results: dict[str, Any], args: argparse.Namespace) -> tuple[list[str], bool]:
    c = results["consistency"]
    return ([table(results["points"]), "",
             f"consistency: {'OK' if c['ok'] else 'FAILED'}  " + ", ".join(f"{k} {v}" for k, v in c["counts"].items()),
             *(f"  - {problem}" for problem in c["problems"])], bool(c["ok"]))


def main(argv: list[str] | None = None) -> int:
    return cli.main(build_parser(), run, summary, argv)


if __name__ == "__main__":
    sys.exit(main())
