"""The load test's histogram: every percentile within the stated relative error of the exact
nearest-rank percentile of the same samples."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loadtests.histogram import Histogram, exact_percentile

PERCENTILES = (0.1, 1, 25, 50, 90, 99, 99.9, 99.99, 100)


@settings(max_examples=300, deadline=None)
@given(samples=st.lists(st.integers(min_value=0, max_value=10**12), min_size=1, max_size=400),
       bits=st.integers(min_value=2, max_value=10))
def test_percentiles_are_within_the_relative_error(samples: list[int], bits: int) -> None:
    hist = Histogram(precision_bits=bits)
    for value in samples:
        hist.record(value)
    assert hist.count == len(samples) and hist.min == min(samples) and hist.max == max(samples)
    for p in PERCENTILES:
        exact = exact_percentile(samples, p)
        assert abs(hist.percentile(p) - exact) <= exact * hist.relative_error, (p, exact, hist.percentile(p))


@settings(max_examples=100, deadline=None)
@given(a=st.lists(st.integers(min_value=0, max_value=10**10), min_size=1, max_size=100),
       b=st.lists(st.integers(min_value=0, max_value=10**10), min_size=1, max_size=100))
def test_merge_equals_recording_everything(a: list[int], b: list[int]) -> None:
    left, right, both = Histogram(), Histogram(), Histogram()
    for v in a:
        left.record(v)
        both.record(v)
    for v in b:
        right.record(v)
        both.record(v)
    left.merge(right)
    assert [left.percentile(p) for p in PERCENTILES] == [both.percentile(p) for p in PERCENTILES]
    assert (left.count, left.min, left.max, left.total) == (both.count, both.min, both.max, both.total)


def test_small_values_are_exact_and_the_bound_is_stated() -> None:
    hist = Histogram(precision_bits=7)
    for v in range(1, 101):
        hist.record(v)
    assert [hist.percentile(p) for p in (1, 50, 99, 100)] == [1, 50, 99, 100]
    assert hist.relative_error == 1 / 256


def test_summary_in_milliseconds() -> None:
    hist = Histogram()
    for ms in (1, 2, 3, 4, 1000):
        hist.record(ms * 1_000_000)
    s = hist.summary()
    assert s["count"] == 5 and s["max"] == 1000.0 and s["p50"] == pytest.approx(3.0, rel=hist.relative_error)
    assert Histogram().summary() == {"count": 0, "p50": None, "p90": None, "p99": None, "p99.9": None,
                                     "max": None, "mean": None}


def test_bad_input_is_refused() -> None:
    hist = Histogram()
    with pytest.raises(ValueError, match="no samples"):
        hist.percentile(50)
    with pytest.raises(ValueError, match="non-negative"):
        hist.record(-1)
    hist.record(5)
    with pytest.raises(ValueError, match=r"percentile must be in \(0, 100\]"):
        hist.percentile(0)
    with pytest.raises(ValueError, match="precision_bits"):
        Histogram(precision_bits=0)
    with pytest.raises(ValueError, match="different precision"):
        hist.merge(Histogram(precision_bits=3))
