"""Redis writes of the state stores, gathered while a pipeline batch is handled and sent
in one round trip.

Per incident alert the Redis engine wrote the incident hash, a timeline entry and, for a
critical one, the escalation state and a second entry: a round trip each, which held the
incident path to ~1.5 k alerts/s. While a batch is open (`MessageHandler.handle_batch`),
the stores sharing this object queue those writes instead and keep the values they wrote
readable (`pending`) until they are sent. They are sent before any notification is stored
(the publisher flushes first, so a client never hears of an incident whose state is not
in Redis yet) and when the batch ends, before its offsets are acked: a crash in between
redelivers the batch, and every write repeats as it would have.

Outside a batch (the HTTP API, an escalation tick while no batch runs) a write goes
straight to Redis, unless older writes are still queued (it joins them, keeping order).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import orjson
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from notify_core.obs import metrics
from notify_core.redis.keys import slot_tag
from notify_core.redis.scripts import KeyTable, ScriptArgs, call_in_chunks

log = logging.getLogger(__name__)

ABSENT: Any = object()
# Redis cannot be reached (down, restarting, slow): wait and retry, never drop
UNREACHABLE = (RedisConnectionError, RedisTimeoutError, ConnectionError, TimeoutError, OSError)
WRITES_PER_CALL = 500  # bounds how long one call holds Redis


class HashWrite(NamedTuple):
    """HSET these fields, then (re)set the key's TTL. (Tuples, not frozen dataclasses: a
    batch makes one per site it touched, and a frozen dataclass is slow to create.)"""

    key: str
    fields: Mapping[str, str]
    ttl_s: int


class ListAppend(NamedTuple):
    """RPUSH an entry to a list capped at its latest `keep` entries (the oldest go), then
    (re)set the TTL."""

    key: str
    entry: bytes
    keep: int
    ttl_s: int


class IndexMove(NamedTuple):
    """Put `member` (scored) in the sorted set `key` and take it out of `other`, then
    (re)set the TTL of `key`; `keep` > 0 caps `key` at its highest-scored members."""

    key: str
    other: str
    member: str
    score: float
    keep: int
    ttl_s: int


Write = HashWrite | ListAppend | IndexMove

# The writes of a round as one script call with one argument (JSON) instead of 2-3
# commands each: redis-py spends more packing each command and argument (in Python) and
# reading each reply (with its timeout) than Redis spends applying them. The writes name
# their keys by index in KEYS (notify_core/redis/scripts.py). pcall: a refused write is
# counted, the rest still applied.
_APPLY_LUA = """
local errors, first = 0, ''
for _, w in ipairs(cjson.decode(ARGV[1])) do
  local op, key, ttl = w[1], KEYS[w[2]], w[3]
  local r
  if op == 'h' then
    r = redis.pcall('HSET', key, unpack(w[4]))
  elseif op == 'z' then
    r = redis.pcall('ZADD', key, w[6], w[5])
    if type(r) ~= 'table' then
      redis.pcall('ZREM', KEYS[w[4]], w[5])
      if w[7] > 0 then redis.call('ZREMRANGEBYRANK', key, 0, -w[7] - 1) end
    end
  else
    r = redis.pcall('RPUSH', key, w[5])
    if type(r) ~= 'table' then redis.call('LTRIM', key, -w[4], -1) end
  end
  if type(r) == 'table' and r.err then
    errors = errors + 1
    if first == '' then first = key .. ': ' .. r.err end
  else
    redis.call('EXPIRE', key, ttl)
  end
end
return {errors, first}
"""


class WriteBehind:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._apply = redis.register_script(_APPLY_LUA)
        self._open = False
        self._queue: list[Write] = []
        self._sent = 0  # writes sent so far: the absolute index of _queue[0]
        # key -> (absolute index just past its last queued write, the value written)
        self._pending: dict[str, tuple[int, Any]] = {}
        # hashes whose writes may be merged and lag (KPI snapshots): key -> fields, TTL
        self._merged: dict[str, tuple[dict[str, str], int]] = {}
        self._lock = asyncio.Lock()

    def open(self) -> None:
        """From now on, queue writes until `flush`."""
        self._open = True

    def close(self) -> None:
        """Stop queueing; what is queued still needs a `flush`."""
        self._open = False

    @property
    def queued(self) -> int:
        return len(self._queue)

    def pending(self, key: str) -> Any:
        """The value last written under `key` and not yet sent, or ABSENT."""
        entry = self._pending.get(key)
        return ABSENT if entry is None else entry[1]

    async def write(self, write: Write, value: Any = ABSENT) -> None:
        """Send `write` now, or queue it while a batch is open (with `value`, what
        `pending(write.key)` returns until it is sent)."""
        if not self._open and not self._queue:
            await self._execute([write])
            return
        self._queue.append(write)
        if value is not ABSENT:
            self._pending[write.key] = (self._sent + len(self._queue), value)

    async def write_many(self, writes: Sequence[Write]) -> None:
        """`write` of each (none of them read back), in one round trip when sent now."""
        if not self._open and not self._queue:
            await self._execute(writes)
            return
        self._queue.extend(writes)

    async def merge_hashes(self, writes: Sequence[HashWrite]) -> None:
        """Like `write_many`, for hashes where only the latest value of each field
        matters and a short lag is fine (KPI snapshots): while a batch is open, the
        writes of each key are merged and sent once, when the batch ends, not with every
        run's state (the batch's runs would otherwise rewrite every site each time)."""
        if not self._open and not self._queue and not self._merged:
            await self._execute(writes)
            return
        merged = self._merged
        for w in writes:
            entry = merged.get(w.key)
            if entry is None:
                merged[w.key] = (dict(w.fields), w.ttl_s)
            else:
                entry[0].update(w.fields)

    async def flush(self) -> None:
        """Send everything queued, in order, in one round trip per round.

        Raises what Redis' client raises when Redis cannot be reached (a connection
        error, a timeout): nothing is dropped, the caller retries. A write Redis refuses
        (a key of the wrong type, say) is logged, counted and dropped; the others are
        applied all the same, so one bad key cannot hold the partition. Any other failure
        (a bug) drops the round, logged and counted, for the same reason.
        """
        if not self._open and self._merged:  # the batch is over: the merged go too
            self._queue.extend(HashWrite(k, f, ttl) for k, (f, ttl) in self._merged.items())
            self._merged = {}
        if not self._queue:
            return
        async with self._lock:
            while self._queue:
                n = len(self._queue)
                try:
                    await self._execute(self._queue[:n])
                except UNREACHABLE:
                    raise
                except Exception:
                    metrics.STATE_WRITE_ERRORS.inc(n)
                    log.exception("%d state write(s) could not be sent; dropped", n)
                del self._queue[:n]
                self._sent += n
                sent = self._sent
                self._pending = {k: e for k, e in self._pending.items() if e[0] > sent}

    async def _execute(self, writes: Sequence[Write]) -> None:
        try:
            chunks = await call_in_chunks(
                self._redis, self._apply, writes, WRITES_PER_CALL, _script_args, _tag_of
            )
            replies = [reply for _, reply in chunks]
        except ResponseError as exc:  # the script itself (not a write) failed
            replies = [[len(writes), str(exc).encode()]]
        for errors, first in replies:
            if errors:
                metrics.STATE_WRITE_ERRORS.inc(errors)
                log.error(
                    "Redis refused %d state write(s), dropped; first: %s",
                    errors,
                    first.decode(errors="replace"),
                )


def _tag_of(w: Write) -> str:
    return slot_tag(w.key)  # an index move's two sets share it (notify_core/redis/keys.py)


def _script_args(writes: Sequence[Write]) -> ScriptArgs:
    at = KeyTable()
    encoded = [_encode(w, at) for w in writes]
    return ScriptArgs(at.keys, [orjson.dumps(encoded)])


def _encode(w: Write, at: KeyTable) -> list[Any]:
    if isinstance(w, HashWrite):
        return ["h", at(w.key), w.ttl_s, [x for field in w.fields.items() for x in field]]
    if isinstance(w, IndexMove):
        return ["z", at(w.key), w.ttl_s, at(w.other), w.member, w.score, w.keep]
    return ["l", at(w.key), w.ttl_s, w.keep, w.entry.decode()]
