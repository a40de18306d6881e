"""A Lua script called over many items: one call per chunk, all chunks in one round trip.

redis-py packs every argument in Python and reads every reply under its own timeout
context, which costs more than Redis running a small command. So batched work (state
writes, history appends, reads of many hashes) goes as one script call per chunk, with
the chunk's data as one JSON argument; the chunk size bounds how long a call holds Redis.

Every key a call touches is in its KEYS (`KeyTable` numbers them; the JSON names keys by
number). On a Redis Cluster one call's keys must share a slot, so there the items are
first grouped by their keys' hash tag (`tag_of`, notify_core/redis/keys.py) and each
group's chunks go to their own node, concurrently; on a single Redis nothing is grouped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, TypeVar

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript

T = TypeVar("T")


class ScriptArgs(NamedTuple):
    keys: list[str]
    args: list[Any]


class KeyTable:
    """The KEYS of one script call: each key once, named by its 1-based index (Lua's)."""

    __slots__ = ("_index", "keys")

    def __init__(self) -> None:
        self.keys: list[str] = []
        self._index: dict[str, int] = {}

    def __call__(self, key: str) -> int:
        index = self._index.get(key)
        if index is None:
            self.keys.append(key)
            index = self._index[key] = len(self.keys)
        return index


def is_cluster(redis: Any) -> bool:
    return isinstance(redis, RedisCluster)


def _split(items: Sequence[T], per_call: int) -> list[Sequence[T]]:
    return [items[i : i + per_call] for i in range(0, len(items), per_call)]


def _by_slot(
    items: Sequence[T], per_call: int, tag_of: Callable[[T], str]
) -> list[list[Sequence[T]]]:
    """The chunks of each hash tag's items, in their order: one list per tag."""
    groups: dict[str, list[T]] = {}
    for item in items:
        groups.setdefault(tag_of(item), []).append(item)
    return [_split(group, per_call) for group in groups.values()]


async def call_in_chunks(
    redis: Redis,
    script: AsyncScript,
    items: Sequence[T],
    per_call: int,
    args_of: Callable[[Sequence[T]], ScriptArgs],
    tag_of: Callable[[T], str],
) -> list[tuple[Sequence[T], Any]]:
    """`script` once per chunk of `items` (`args_of(chunk)`: its keys and arguments), in
    one round trip on a single Redis; each chunk with its reply. On a cluster, a chunk
    holds items of one hash tag (`tag_of(item)`), in their order. Raises what the script
    call raises."""
    if not items:
        return []
    cluster = is_cluster(redis)
    groups = _by_slot(items, per_call, tag_of) if cluster else [_split(items, per_call)]
    if len(groups) == 1 and len(groups[0]) == 1:
        call = args_of(items)
        return [(items, await script(keys=call.keys, args=call.args))]
    if cluster:  # each group on its slot's node, concurrently; a group's chunks in order

        async def in_order(group: list[Sequence[T]]) -> list[tuple[Sequence[T], Any]]:
            done = []
            for chunk in group:
                call = args_of(chunk)
                done.append((chunk, await script(keys=call.keys, args=call.args)))
            return done

        per_group = await asyncio.gather(*(in_order(g) for g in groups))
        return [pair for group in per_group for pair in group]
    (chunks,) = groups
    async with redis.pipeline(transaction=False) as pipe:
        for chunk in chunks:
            call = args_of(chunk)
            await script(keys=call.keys, args=call.args, client=pipe)
        results: list[Any] = await pipe.execute()
    return list(zip(chunks, results, strict=True))


async def call_per_item(
    redis: Redis,
    script: AsyncScript,
    items: Sequence[T],
    per_call: int,
    args_of: Callable[[Sequence[T]], ScriptArgs],
    tag_of: Callable[[T], str],
) -> list[Any]:
    """`call_in_chunks` for a script whose reply is a list with one value per item: those
    values, in the order of `items`."""
    if not is_cluster(redis):
        chunks = await call_in_chunks(redis, script, items, per_call, args_of, tag_of)
        return [value for _, reply in chunks for value in reply]
    indexed = list(enumerate(items))
    replies = await call_in_chunks(
        redis,
        script,
        indexed,
        per_call,
        lambda chunk: args_of([item for _, item in chunk]),
        lambda pair: tag_of(pair[1]),
    )
    values: list[Any] = [None] * len(items)
    for chunk, reply in replies:
        for (n, _), value in zip(chunk, reply, strict=True):
            values[n] = value
    return values
