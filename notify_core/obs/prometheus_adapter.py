"""The one place towerco-notify reaches into prometheus_client's private attributes (hence
the upper bound on it in pyproject.toml); tests/test_core_parts.py is its canary: what this
does must equal what the public `observe` does, bucket for bucket.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable

from prometheus_client import Histogram


def observe_many(histogram: Histogram, values: Iterable[float]) -> None:
    """`histogram.observe` of each value, with one locked increment per bucket and one
    for the sum: a pipeline batch observes thousands of latencies, and prometheus_client
    takes two locks per observation. Relies on the Histogram's `_upper_bounds`,
    `_buckets` and `_sum` (tests/test_core_parts.py checks it matches `observe`)."""
    bounds: list[float] = histogram._upper_bounds
    counts = [0] * len(bounds)
    total = 0.0
    for value in values:
        counts[bisect_left(bounds, value)] += 1
        total += value
    for bucket, n in zip(histogram._buckets, counts, strict=True):
        if n:
            bucket.inc(n)
    histogram._sum.inc(total)
