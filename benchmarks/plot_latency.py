"""Latency vs load plot from a load test's JSON: the open-loop run (``python -m loadtests.openloop
... --out FILE``) or the locust run (``python -m loadtests.run ... --out FILE``).

    .venv/bin/python benchmarks/plot_latency.py var/loadtest/openloop_anvil.json --png docs/perf/openloop_latency.png
    .venv/bin/python benchmarks/plot_latency.py var/loadtest/anvil.json --png docs/perf/latency_vs_load.png

Open loop: x = offered orders/s (log), left y (log) = websocket ack p50/p99/p99.9, REST order p50/p99
and market-data fan-out p50/p99, all from the scheduled send time; right y = achieved orders/s.
Locust: x = orders/s the venue handled at each point (labelled with the user counts); y (log):
websocket ack, REST IOC round trip and market-data fan-out latency, p50 and p99.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt
from matplotlib import ticker

SERIES = (
    ("ws_ack", "websocket order ack", "tab:blue"),
    ("rest_ioc", "REST IOC order", "tab:orange"),
    ("md_fanout", "market data fan-out", "tab:green"),
)


OPENLOOP_SERIES = (
    ("ws_ack", "websocket ack", "tab:blue", ("p50", "p99", "p99.9")),
    ("rest", "REST order", "tab:orange", ("p50", "p99")),
    ("md_fanout", "market data fan-out", "tab:green", ("p50", "p99")),
)
STYLES = {"p50": "-o", "p99": "--^", "p99.9": ":v"}


def plot_openloop(results: dict[str, Any], png: Path, title: str | None = None) -> None:
    points = sorted(results["points"], key=lambda p: p["offered_per_s"])
    x = [p["offered_per_s"] for p in points]
    fig, ax = plt.subplots(figsize=(8.5, 5), dpi=110)
    for key, label, colour, pcts in OPENLOOP_SERIES:
        for pct in pcts:
            xy = [(a, p[key][pct]) for a, p in zip(x, points, strict=True) if p[key].get(pct) is not None]
            if xy:
                ax.plot([a for a, _ in xy], [b for _, b in xy], STYLES[pct], color=colour, label=f"{label} {pct}")
    ax.axhline(10, color="grey", linewidth=0.8, linestyle="-.", label="goal: ws ack p99 10 ms at 1,000/s")
    saturated = [p["offered_per_s"] for p in points if p.get("saturated")]
    if saturated:
        ax.axvline(min(saturated), color="tab:red", linewidth=0.8, alpha=0.6, label="first saturated point")
    ax.set_xscale("log")
    ax.set_yscale("log")
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_formatter(ticker.FormatStrFormatter("%g"))
        axis.set_minor_formatter(ticker.NullFormatter())
    ax.set_xticks(x)
    ax.set_xlabel("offered orders/s (open loop, fixed schedule)")
    ax.set_ylabel("latency from the scheduled send, ms (log)")
    twin = ax.twinx()
    twin.plot(x, [p["achieved_per_s"] for p in points], "-s", color="black", alpha=0.5, label="achieved orders/s")
    twin.plot(x, x, ":", color="black", alpha=0.3, label="achieved = offered")
    twin.set_yscale("log")
    twin.set_ylim(min(x) / 1.5, max(x) * 1.5)
    twin.yaxis.set_major_formatter(ticker.FormatStrFormatter("%g"))
    twin.yaxis.set_minor_formatter(ticker.NullFormatter())
    twin.set_ylabel("achieved orders/s (log)")
    load = [p.get("loadavg_1m_before") for p in points if p.get("loadavg_1m_before") is not None]
    r = results
    ax.set_title(title or f"OMN venue, open-loop load ({r.get('chain')} chain, {r.get('makers')} ws makers, "
                          f"{r.get('investors')} REST investors, {r.get('subscribers')} md subscribers; "
                          f"{r.get('cores')} shared cores, load avg {min(load, default=0):.0f}-"
                          f"{max(load, default=0):.0f})", fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    lines, labels = ax.get_legend_handles_labels()
    lines2, labels2 = twin.get_legend_handles_labels()
    fig.legend(lines + lines2, labels + labels2, fontsize=7, ncol=4, loc="lower center")
    fig.tight_layout(rect=(0, 0.13, 1, 1))
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png)
    plt.close(fig)


def plot(results: dict[str, Any], png: Path, title: str | None = None) -> None:
    if results.get("mode") == "openloop":
        plot_openloop(results, png, title)
        return
    points = sorted(results["points"], key=lambda p: p["orders_per_s"])
    x = [p["orders_per_s"] for p in points]
    fig, ax = plt.subplots(figsize=(8, 4.8), dpi=110)
    for key, label, colour in SERIES:
        for pct, style in (("p50", "-o"), ("p99", "--^")):
            ys = [p.get(f"{key}_{pct}_ms") for p in points]
            xy = [(a, b) for a, b in zip(x, ys, strict=True) if b is not None]
            if xy:
                ax.plot([a for a, _ in xy], [b for _, b in xy], style, color=colour, label=f"{label} {pct}")
    for p in points:
        ax.annotate(f"{p['makers']}+{p['investors']}", (p["orders_per_s"], p.get("ws_ack_p50_ms") or 1),
                    textcoords="offset points", xytext=(0, -14), ha="center", fontsize=7, color="tab:blue")
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(ticker.FormatStrFormatter("%g"))
    ax.yaxis.set_minor_formatter(ticker.FormatStrFormatter("%g"))
    ax.tick_params(axis="y", which="minor", labelsize=7)
    ax.set_xlabel("orders/s handled (labels: ws market makers + REST investors)")
    ax.set_ylabel("latency, ms (log)")
    subs = points[0]["subscribers"] if points else 0
    ax.set_title(title or f"OMN venue under locust load ({results.get('chain')} chain, {subs} md subscribers, "
                          f"{results.get('cores')} shared cores)", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=3, loc="upper left")
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", type=Path,
                        help="JSON written by python -m loadtests.openloop --out or python -m loadtests.run --out")
    parser.add_argument("--png", type=Path, default=Path("docs/perf/latency_vs_load.png"))
    parser.add_argument("--title")
    args = parser.parse_args(argv)
    plot(json.loads(args.results.read_text()), args.png, args.title)
    print(f"wrote {args.png}")


if __name__ == "__main__":
    main()
