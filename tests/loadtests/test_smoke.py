"""A short real load run: venue host + locust + consistency check, end to end (embedded venue)."""

from __future__ import annotations

import pytest

from loadtests import LoadTestError
from loadtests.run import build_parser, run, table


@pytest.mark.slow
def test_short_load_run_is_consistent() -> None:
    args = build_parser().parse_args(
        ["--investors", "2", "--makers", "1", "--subscribers", "1", "--duration", "6", "--settle-timeout", "120"])
    results = run(args)
    point = results["points"][0]
    assert results["consistency"]["ok"], results["consistency"]["problems"]
    assert results["consistency"]["counts"]["trades"] > 0
    assert point["orders"] > 0 and point["md_deltas"] > 0 and point["errors"] == 0, point
    assert point["ws_ack_p50_ms"] > 0 and point["rest_ioc_p50_ms"] > 0
    assert "| 1 | 2 | 1 |" in table(results["points"])


def test_a_venue_that_cannot_start_is_a_clear_error() -> None:
    args = build_parser().parse_args(["--investors", "1", "--makers", "1", "--chain", "nonsense"])
    with pytest.raises(LoadTestError, match=r"exited .* before printing READY"):
        run(args)


def test_bad_load_points_are_refused() -> None:
    with pytest.raises(LoadTestError, match="one per load point"):
        run(build_parser().parse_args(["--investors", "1,2", "--makers", "1,2,3"]))
    with pytest.raises(LoadTestError, match="comma-separated counts"):
        run(build_parser().parse_args(["--investors", "x"]))
