"""The one bounded map: the in-memory stores, dedupe sets and encode caches all keep at
most `maxsize` entries and drop the least recently put first.

An `OrderedDict` (its reads and writes stay in C: these maps sit on the embedded mode's
hot path, where cachetools' pure-Python LRU measured slower); `put` says what it dropped,
for the indexes that follow a store.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Bounded(OrderedDict[K, V]):
    def __init__(self, maxsize: int) -> None:
        super().__init__()
        self.maxsize = maxsize

    def put(self, key: K, value: V) -> list[tuple[K, V]]:
        """Set `key` (now the most recent); the entries dropped to stay within maxsize."""
        self[key] = value
        self.move_to_end(key)
        dropped = []
        while len(self) > self.maxsize:
            dropped.append(self.popitem(last=False))
        return dropped
