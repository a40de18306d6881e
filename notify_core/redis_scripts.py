"""A Lua script called over many items: one call per chunk, all chunks in one round trip.

redis-py packs every argument in Python and reads every reply under its own timeout
context, which costs more than Redis running a small command. So batched work (state
writes, history appends, reads of many hashes) goes as one script call per chunk, with
the chunk's data as one JSON argument; the chunk size bounds how long a call holds Redis.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

T = TypeVar("T")


async def call_in_chunks(
    redis: Redis,
    script: AsyncScript,
    items: Sequence[T],
    per_call: int,
    args_of: Callable[[Sequence[T]], list[Any]],
) -> list[Any]:
    """`script` once per chunk of `items` (`args_of(chunk)`: its arguments), in one round
    trip; the replies in chunk order. Raises what the script call raises."""
    if not items:
        return []
    chunks = [items[i : i + per_call] for i in range(0, len(items), per_call)]
    if len(chunks) == 1:
        return [await script(args=args_of(items))]
    async with redis.pipeline(transaction=False) as pipe:
        for chunk in chunks:
            await script(args=args_of(chunk), client=pipe)
        replies: list[Any] = await pipe.execute()
    return replies
