"""The open-loop load generator: its schedule, arguments and saturation rule, and a short real run
against the whole venue (host process, in-process EVM) with the consistency check."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from typing import Any

import pytest

from loadtests import LoadTestError
from loadtests.openloop import HttpPool, build_parser, parse_mix, parse_rates, run, saturated, schedule, table


def test_the_schedule_is_fixed_in_advance_at_the_offered_rate() -> None:
    plan = schedule(400, 2.5, {"quote": 0.6, "ioc": 0.4}, seed=1)
    assert len(plan) == 1000
    assert plan[0][0] == 0 and plan[-1][0] == pytest.approx(999 / 400)
    assert all(b[0] - a[0] == pytest.approx(1 / 400) for a, b in itertools.pairwise(plan))
    kinds = Counter(kind for _, kind in plan)
    assert set(kinds) == {"quote", "ioc"} and 0.5 < kinds["quote"] / 1000 < 0.7
    assert plan == schedule(400, 2.5, {"quote": 0.6, "ioc": 0.4}, seed=1)  # reproducible


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(LoadTestError, match="unknown kind 'market'"):
        parse_mix("quote=0.5,market=0.5")
    with pytest.raises(LoadTestError, match="is not kind=fraction"):
        parse_mix("quote=lots")
    with pytest.raises(LoadTestError, match="add up to zero"):
        parse_mix("quote=0,ioc=0")
    with pytest.raises(LoadTestError, match="comma-separated"):
        parse_rates("250,fast")
    with pytest.raises(LoadTestError, match="must be positive"):
        parse_rates("250,0")
    with pytest.raises(LoadTestError, match="must be positive"):
        schedule(0, 1, {"quote": 1}, seed=1)
    with pytest.raises(LoadTestError, match="--makers and --investors"):
        run(build_parser().parse_args(["--makers", "0"]))


def _point(offered: float, achieved: float, p99: float | None) -> dict[str, Any]:
    return {"offered_per_s": offered, "achieved_per_s": achieved, "ws_ack": {"p99": p99}}


def test_saturation_rule() -> None:
    assert saturated(_point(1000, 950, 20.0)) is None
    assert saturated(_point(1000, 899, 20.0)) == "achieved 899 < 90% of offered"
    assert saturated(_point(1000, 990, 1500.0)) == "ws ack p99 1500 ms > 1000 ms"
    assert saturated(_point(1000, 990, None)) is None  # no websocket orders in the mix


@pytest.mark.slow
def test_a_short_open_loop_run_is_consistent_and_measured_from_real_samples() -> None:
    args = build_parser().parse_args(["--rates", "40", "--duration", "3", "--makers", "1", "--investors", "2",
                                      "--subscribers", "1", "--settle-timeout", "120"])
    results = run(args)
    [point] = results["points"]
    assert point["consistency"]["ok"], point["consistency"]["problems"]
    assert point["consistency"]["counts"]["trades"] > 0
    assert point["scheduled"] == 120 and sum(point["sent"].values()) == 120
    assert point["answered"] == 120 and not point["errors"], point
    ws, rest = point["ws_ack"], point["rest"]
    # every percentile comes from the recorded replies: one sample per order of that kind
    assert ws["count"] == point["sent"]["quote"] and rest["count"] == 120 - point["sent"]["quote"]
    for summary in (ws, rest, point["md_fanout"]):
        assert summary["count"] > 0
        assert 0 < summary["p50"] <= summary["p90"] <= summary["p99"] <= summary["p99.9"] <= summary["max"]
    assert point["achieved_per_s"] > 0
    assert "| 40 |" in table(results["points"])


async def test_a_keep_alive_connection_the_server_closed_is_replaced() -> None:
    """The server may close an idle keep-alive connection (uvicorn: after 5 s); the next request on it
    reads nothing back, and is sent again on a new connection instead of counting as an error."""
    served: list[bytes] = []

    async def answer_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(next(line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
                     .split(b":")[1])
        served.append(await reader.readexactly(length))
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")
        await writer.drain()
        writer.close()  # then hangs up, as after a keep-alive timeout

    server = await asyncio.start_server(answer_once, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    pool = HttpPool("127.0.0.1", port, 2)
    try:
        assert await pool.post("/x", b"one", {}) == (200, b"{}")
        await asyncio.sleep(0.05)  # the hang-up has reached the client
        assert await pool.post("/x", b"two", {}) == (200, b"{}")
    finally:
        pool.close()
        server.close()
        await server.wait_closed()
    assert served == [b"one", b"two"]
