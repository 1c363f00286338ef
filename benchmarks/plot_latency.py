"""Latency vs load plot from a load test's JSON (``python -m loadtests.run ... --out FILE``).

    .venv/bin/python benchmarks/plot_latency.py var/loadtest/anvil.json --png docs/perf/latency_vs_load.png

x: orders/s the venue handled at each load point (labelled with the user counts); y (log scale):
websocket order ack, REST IOC order round trip and market-data fan-out latency, p50 and p99.
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


def plot(results: dict[str, Any], png: Path, title: str | None = None) -> None:
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
    parser.add_argument("results", type=Path, help="JSON written by python -m loadtests.run --out")
    parser.add_argument("--png", type=Path, default=Path("docs/perf/latency_vs_load.png"))
    parser.add_argument("--title")
    args = parser.parse_args(argv)
    plot(json.loads(args.results.read_text()), args.png, args.title)
    print(f"wrote {args.png}")


if __name__ == "__main__":
    main()
