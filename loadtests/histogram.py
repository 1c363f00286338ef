"""A log-bucketed latency histogram (HDR style) with a stated relative error.

Values are non-negative integers (the load test records nanoseconds). A value below
``2**precision_bits`` has a bucket of its own (exact); above, the bucket of ``v`` spans
``[lo, lo + 2**(e - precision_bits))`` where ``e = v.bit_length() - 1``, so it is reported as the
bucket's midpoint (clamped to the smallest and largest value recorded) with relative error at most
``2**-(precision_bits + 1)`` (default 7 bits: 1/256, under 0.4%). Memory grows with the value
range, not with the number of samples (about 128 buckets per power of two actually used).

``percentile(p)`` is the nearest-rank percentile: the ``ceil(p/100 * n)``-th smallest sample
(at least 1), the same definition as ``exact_percentile`` over a sorted list, which the tests
compare it with. ``max`` and ``min`` are exact.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any


class Histogram:
    __slots__ = ("_bits", "_counts", "_sub", "count", "max", "min", "total")

    def __init__(self, precision_bits: int = 7) -> None:
        if not 1 <= precision_bits <= 16:
            raise ValueError(f"precision_bits must be 1..16, got {precision_bits}")
        self._bits = precision_bits
        self._sub = 1 << precision_bits
        self._counts: dict[int, int] = {}
        self.count = 0
        self.total = 0
        self.min = 0
        self.max = 0

    @property
    def relative_error(self) -> float:
        """The bound on |reported - true| / true of any percentile."""
        return 2.0 ** -(self._bits + 1)

    def _index(self, value: int) -> int:
        if value < self._sub:
            return value
        shift = value.bit_length() - 1 - self._bits
        return (shift + 1) * self._sub + (value >> shift) - self._sub

    def _bounds(self, index: int) -> tuple[int, int]:
        """[lo, hi) of the values in bucket ``index``."""
        if index < self._sub:
            return index, index + 1
        shift = index // self._sub - 1
        lo = (index - shift * self._sub) << shift
        return lo, lo + (1 << shift)

    def record(self, value: int, count: int = 1) -> None:
        if value < 0:
            raise ValueError(f"a histogram records non-negative values, got {value}")
        index = self._index(value)
        self._counts[index] = self._counts.get(index, 0) + count
        if not self.count or value < self.min:
            self.min = value
        if not self.count or value > self.max:
            self.max = value
        self.count += count
        self.total += value * count

    def merge(self, other: Histogram) -> None:
        if other._bits != self._bits:
            raise ValueError("histograms of different precision cannot be merged")
        if not other.count:
            return
        for index, n in other._counts.items():
            self._counts[index] = self._counts.get(index, 0) + n
        self.min = other.min if not self.count else min(self.min, other.min)
        self.max = other.max if not self.count else max(self.max, other.max)
        self.count += other.count
        self.total += other.total

    def percentile(self, p: float) -> int:
        """The nearest-rank ``p``-th percentile (0 < p <= 100), within ``relative_error``."""
        if not self.count:
            raise ValueError("no samples recorded")
        if not 0 < p <= 100:
            raise ValueError(f"percentile must be in (0, 100], got {p}")
        rank = max(1, math.ceil(p / 100 * self.count))
        seen = 0
        for index in sorted(self._counts):
            seen += self._counts[index]
            if seen >= rank:
                lo, hi = self._bounds(index)
                mid = (lo + hi - 1) // 2 if hi - lo > 1 else lo
                return min(max(mid, self.min), self.max)
        return self.max  # not reached: the counts add up to self.count

    def mean(self) -> float:
        return self.total / self.count if self.count else math.nan

    def summary(self, scale: float = 1e-6, percentiles: Iterable[float] = (50, 90, 99, 99.9)) -> dict[str, Any]:
        """Count, percentiles, max and mean in units of ``scale`` (default: ns -> ms); None without samples."""
        out: dict[str, Any] = {"count": self.count}
        for p in percentiles:
            out[f"p{p:g}"] = round(self.percentile(p) * scale, 3) if self.count else None
        out["max"] = round(self.max * scale, 3) if self.count else None
        out["mean"] = round(self.mean() * scale, 3) if self.count else None
        return out


def exact_percentile(samples: Sequence[int], p: float) -> int:
    """The nearest-rank percentile of ``samples`` (the reference the histogram is tested against)."""
    ordered = sorted(samples)
    return ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1]
