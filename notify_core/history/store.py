"""Per-tenant ordered history of notifications: the source of every event id.

Two engines with one interface: `MemoryHistory` (the embedded default, a bounded
ring per tenant) and `RedisHistory` (a Redis stream per tenant, bounded by length).
`append` is idempotent, so a Kafka message delivered twice (at-least-once) is stored
and emitted once. The dedupe is one of two kinds:

- a key (text, stable across redeliveries and producer retries: a hash of the message),
  remembered for a day: alerts, actions, site status, escalations;
- a `SourcePosition` (topic, partition, offset), for the KPI updates: a message at or below
  the last position stored for its partition is a redelivery. One number per partition
  instead of a key per event: at 150 bytes a key for 24 hours, 10 000 sites sending every
  30 s would hold 4 GB of Redis in dedupe keys alone.
"""

from __future__ import annotations

import bisect
import secrets
import time
from collections import deque
from collections.abc import Sequence
from typing import Any, NamedTuple, Protocol

import orjson
from redis.asyncio import Redis

from notify_core.bounded import Bounded
from notify_core.history.resume import EMPTY, HistoryPosition
from notify_core.redis.keys import RedisKeys
from notify_core.redis.scripts import KeyTable, ScriptArgs, call_per_item
from notify_core.wire.ids import IdMinter, format_id, parse_id

DEDUPE_TTL_S = 24 * 3600
# A position this far behind the last one stored for its partition is not a redelivery
# (Kafka redelivers from the last committed offset, a few fetches back) but a topic that
# was recreated or a group reset to replay: stored, and the partition starts over from it.
REDELIVERY_WINDOW = 1_000_000
POSITIONS_TTL_S = 7 * 24 * 3600  # a partition not written for a week is forgotten


class SourcePosition(NamedTuple):
    """Where the message a notification comes from sits in Kafka (see the module doc).
    Every position of a partition must reach `append` in offset order, as Kafka delivers
    them: a lower one after a higher one is taken for a redelivery. A tuple: one is built
    per KPI sample."""

    topic: str
    partition: int
    offset: int

    @property
    def field(self) -> str:
        return f"{self.topic}/{self.partition}"


Dedupe = str | SourcePosition | None


def redelivered(last: int | None, offset: int) -> bool:
    return last is not None and last - REDELIVERY_WINDOW < offset <= last


class History(Protocol):
    # Events per round trip when a long batch is stored part by part, each part emitted
    # while the next is stored (`Publisher.publish_many`); 0: no round trip to overlap.
    store_part: int

    async def append(self, event: dict[str, Any], dedupe_key: Dedupe = None) -> str | None:
        """Store the event, set and return its id; None if it was stored already."""

    async def append_many(self, items: list[tuple[dict[str, Any], Dedupe]]) -> list[str | None]:
        """`append` each (event, dedupe key) in order, in one round trip where it has one."""

    async def read_after(self, tenant: str, after: str | None, limit: int) -> list[dict[str, Any]]:
        """Events of `tenant` with id > `after` (all when None), oldest first."""

    async def oldest_id(self, tenant: str) -> str | None:
        """The oldest id still held for `tenant`."""

    async def last_id(self, tenant: str) -> str | None:
        """The newest id of `tenant`."""

    async def read_before(
        self, tenant: str, before: str | None, limit: int
    ) -> list[dict[str, Any]]:
        """Events of `tenant` with id < `before` (the newest when None), newest first."""

    async def position(self, tenant: str) -> HistoryPosition:
        """Epoch, first id ever held, oldest and newest held, trimmed-through: what a
        resume decision (`notify_core.history.resume.decide`) needs, in one round trip."""


def new_epoch() -> str:
    """A short random string naming one life of a tenant history."""
    return secrets.token_urlsafe(6)


class MemoryHistory:
    """In-process history: a bounded ring per tenant, ids minted like Redis's."""

    store_part = 0

    def __init__(
        self, maxlen: int = 10_000, max_age_s: float | None = None, dedupe_size: int = 100_000
    ) -> None:
        self._maxlen = maxlen
        self._max_age_ms = int(max_age_s * 1000) if max_age_s else None
        self._trimmed: dict[str, tuple[int, int]] = {}
        self._rings: dict[str, deque[tuple[tuple[int, int], dict[str, Any]]]] = {}
        self._minters: dict[str, IdMinter] = {}
        self._seen: Bounded[str, None] = Bounded(dedupe_size)
        self._positions: dict[str, int] = {}
        # one epoch per tenant history and process: a restart begins a new history
        self._epochs: dict[str, str] = {}
        self._first: dict[str, tuple[int, int]] = {}

    async def append(self, event: dict[str, Any], dedupe_key: Dedupe = None) -> str | None:
        return self._append(event, dedupe_key)

    async def append_many(self, items: list[tuple[dict[str, Any], Dedupe]]) -> list[str | None]:
        now_ms = int(time.time() * 1000)  # one reading per call, as one Redis script call
        return [self._append(event, key, now_ms) for event, key in items]

    def _append(
        self, event: dict[str, Any], dedupe_key: Dedupe, now_ms: int | None = None
    ) -> str | None:
        tenant = event["tenant_id"]
        if isinstance(dedupe_key, SourcePosition):
            if redelivered(self._positions.get(dedupe_key.field), dedupe_key.offset):
                return None
            self._positions[dedupe_key.field] = dedupe_key.offset
        elif dedupe_key is not None:
            key = f"{tenant}\x00{dedupe_key}"
            if key in self._seen:
                return None
            self._seen.put(key, None)
        minter = self._minters.get(tenant)
        if minter is None:
            minter = self._minters[tenant] = IdMinter()
            self._epochs.setdefault(tenant, new_epoch())
        pos = minter.next(now_ms)
        ring = self._rings.setdefault(tenant, deque())
        if tenant not in self._first:
            self._first[tenant] = pos
        event["id"] = format_id(pos)
        ring.append((pos, event))
        while len(ring) > self._maxlen or (
            self._max_age_ms is not None and ring[0][0][0] < pos[0] - self._max_age_ms
        ):
            self._trimmed[tenant] = ring.popleft()[0]
        return event["id"]

    async def read_after(self, tenant: str, after: str | None, limit: int) -> list[dict[str, Any]]:
        ring = self._rings.get(tenant)
        if not ring:
            return []
        start = 0
        if after is not None:
            start = bisect.bisect_right(ring, parse_id(after), key=lambda item: item[0])
        return [ring[i][1] for i in range(start, min(len(ring), start + limit))]

    async def oldest_id(self, tenant: str) -> str | None:
        ring = self._rings.get(tenant)
        return format_id(ring[0][0]) if ring else None

    async def last_id(self, tenant: str) -> str | None:
        ring = self._rings.get(tenant)
        return format_id(ring[-1][0]) if ring else None

    async def read_before(
        self, tenant: str, before: str | None, limit: int
    ) -> list[dict[str, Any]]:
        ring = self._rings.get(tenant)
        if not ring:
            return []
        end = len(ring)
        if before is not None:
            end = bisect.bisect_left(ring, parse_id(before), key=lambda item: item[0])
        return [ring[i][1] for i in range(end - 1, max(-1, end - 1 - limit), -1)]

    async def position(self, tenant: str) -> HistoryPosition:
        # a history that has not begun gets its epoch now: the first append keeps it
        epoch = self._epochs.setdefault(tenant, new_epoch())
        ring = self._rings.get(tenant)
        return HistoryPosition(
            epoch,
            self._first.get(tenant),
            ring[0][0] if ring else None,
            ring[-1][0] if ring else None,
            self._trimmed.get(tenant),
        )


# For each event: check its dedupe (a key claimed with SET NX, or a position against the
# last one stored for its partition and tenant; either seen: a redelivery, dropped),
# append it to its tenant stream (a stream that did not exist begins a history: its meta
# hash gets the epoch ARGV[7] and the first id, in the same atomic call); then record the
# partitions' new positions and trim each stream written by age. Every key is in KEYS
# (a Redis Cluster routes the call by them; one call's keys share a tenant's slot there):
# the events, one JSON list in ARGV[5], name them by index: [stream, body length, 'k',
# dedupe key], [stream, body length, 'p', partition field, offset, positions hash] or
# [stream, body length]; a stream's meta hash is the key after it. ARGV: maxlen, dedupe
# TTL, max age (ms), redelivery window, the events, their bodies end to end, the epoch,
# positions TTL. One call (atomic) per chunk of events: redis-py spends more packing each
# argument and reading each reply than Redis spends on the append. The bodies stay out of
# the JSON list so that they are not escaped here and unescaped by cjson there.
_APPEND_LUA = """
local maxlen, ttl, age = ARGV[1], ARGV[2], tonumber(ARGV[3])
local window, pttl = tonumber(ARGV[4]), ARGV[8]
local bodies, at, epoch = ARGV[6], 1, ARGV[7]
local ids, last, pos, moved, known = {}, {}, {}, {}, {}
for i, e in ipairs(cjson.decode(ARGV[5])) do
  local s, mode = e[1], e[3]
  local stream = KEYS[s]
  local body = string.sub(bodies, at, at + e[2] - 1)
  at = at + e[2]
  local fresh = true
  if mode == 'k' then
    fresh = redis.call('SET', KEYS[e[4]], 1, 'NX', 'EX', ttl)
  elseif mode == 'p' then
    local pkey, offset = KEYS[e[6]], e[5]
    local slot = pkey .. ' ' .. e[4]
    local seen = pos[slot]
    if seen == nil then
      seen = tonumber(redis.call('HGET', pkey, e[4])) or false
      pos[slot] = seen
    end
    if seen and offset <= seen and offset > seen - window then
      fresh = false
    else
      pos[slot], moved[slot] = offset, {pkey, e[4]}
    end
  end
  local id = false
  if fresh then
    local begins = false
    if known[s] == nil then
      begins = redis.call('EXISTS', stream) == 0
      known[s] = true
    end
    id = redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*', 'e', body)
    last[stream] = id
    if begins then
      local meta = KEYS[s + 1]
      local told = redis.call('HEXISTS', meta, 'epoch') == 1
      if told and redis.call('HEXISTS', meta, 'first') == 0 then
        redis.call('HSET', meta, 'first', id)  -- its epoch was told before its first event
      else
        redis.call('DEL', meta)
        redis.call('HSET', meta, 'epoch', epoch, 'first', id)
      end
    end
  end
  ids[i] = id
end
for slot, where in pairs(moved) do
  redis.call('HSET', where[1], where[2], string.format('%d', pos[slot]))
  redis.call('EXPIRE', where[1], pttl)
end
if age ~= 0 then  -- by age, once per stream: ids grow, so the newest bounds them all
  for stream, id in pairs(last) do
    local ms = tonumber(string.match(id, '^(%d+)'))
    redis.call('XTRIM', stream, 'MINID', '~', tostring(ms - age))
  end
end
return ids
"""
EVENTS_PER_CALL = 500


class RedisHistory:
    """History in Redis streams `{prefix}history:{{tenant}}` (notify_core/redis/keys.py);
    ids are the stream ids."""

    store_part = EVENTS_PER_CALL  # one script call: no pipeline (whose SCRIPT EXISTS costs a turn)

    def __init__(
        self, redis: Redis, prefix: str, maxlen: int = 10_000, max_age_s: float | None = None
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._maxlen = maxlen
        self._max_age_ms = int(max_age_s * 1000) if max_age_s else 0
        self._keys = RedisKeys(prefix)
        self._append = redis.register_script(_APPEND_LUA)
        self._mint = redis.register_script(_MINT_LUA)

    def stream_key(self, tenant: str) -> str:
        return self._keys.stream(tenant)

    async def append(self, event: dict[str, Any], dedupe_key: Dedupe = None) -> str | None:
        return (await self.append_many([(event, dedupe_key)]))[0]

    async def append_many(self, items: list[tuple[dict[str, Any], Dedupe]]) -> list[str | None]:
        """One round trip for a batch (one script call per chunk of events). Each call is
        atomic; a retry after a lost reply finds the stored ones by their dedupe."""
        raws = await call_per_item(
            self._redis, self._append, items, EVENTS_PER_CALL, self._append_args, _tenant_of
        )
        return [_set_id(event, raw) for (event, _), raw in zip(items, raws, strict=True)]

    def _append_args(self, items: Sequence[tuple[dict[str, Any], Dedupe]]) -> ScriptArgs:
        keys, at = self._keys, KeyTable()
        events: list[tuple[Any, ...]] = []
        bodies: list[bytes] = []
        streams: dict[str, int] = {}
        for event, dedupe in items:
            tenant = event["tenant_id"]
            stream = streams.get(tenant)
            if stream is None:  # the stream, then its meta hash: the script's convention
                stream = streams[tenant] = at(keys.stream(tenant))
                at(keys.stream_meta(tenant))
            body = _body(event)
            bodies.append(body)
            if isinstance(dedupe, SourcePosition):
                where = at(keys.positions(tenant))
                events.append((stream, len(body), "p", dedupe.field, dedupe.offset, where))
            elif dedupe:
                events.append((stream, len(body), "k", at(keys.dedupe(tenant, dedupe))))
            else:
                events.append((stream, len(body)))
        return ScriptArgs(
            at.keys,
            [
                self._maxlen,
                DEDUPE_TTL_S,
                self._max_age_ms,
                REDELIVERY_WINDOW,
                orjson.dumps(events),
                b"".join(bodies),
                new_epoch(),
                POSITIONS_TTL_S,
            ],
        )

    async def read_after(self, tenant: str, after: str | None, limit: int) -> list[dict[str, Any]]:
        start = "-" if after is None else f"({format_id(parse_id(after))}"
        rows: Any = await self._redis.xrange(
            self.stream_key(tenant), min=start, max="+", count=limit
        )
        return [decode_entry(row_id, fields) for row_id, fields in rows]

    async def oldest_id(self, tenant: str) -> str | None:
        rows: Any = await self._redis.xrange(self.stream_key(tenant), count=1)
        return _text(rows[0][0]) if rows else None

    async def last_id(self, tenant: str) -> str | None:
        rows: Any = await self._redis.xrevrange(self.stream_key(tenant), count=1)
        return _text(rows[0][0]) if rows else None

    async def read_before(
        self, tenant: str, before: str | None, limit: int
    ) -> list[dict[str, Any]]:
        end = "+" if before is None else f"({format_id(parse_id(before))}"
        rows: Any = await self._redis.xrevrange(
            self.stream_key(tenant), max=end, min="-", count=limit
        )
        return [decode_entry(row_id, fields) for row_id, fields in rows]

    async def position(self, tenant: str) -> HistoryPosition:
        """The stream's meta hash and XINFO in one pipeline. A stream that exists without
        a meta hash (written before epochs existed) gets one now, its first id the oldest
        it holds: nothing older can be proved."""
        stream = self.stream_key(tenant)
        meta_key = self._keys.stream_meta(tenant)
        pipe = self._redis.pipeline(transaction=False)
        pipe.hmget(meta_key, "epoch", "first")
        pipe.xinfo_stream(stream)
        meta, info = await pipe.execute(raise_on_error=False)
        if isinstance(info, Exception):  # no such stream: a history that has not begun
            return await self._unbegun(tenant, stream, meta_key)
        epoch, first = (_text(v) if v is not None else None for v in meta)
        oldest, newest = _entry_id(info, "first-entry"), _entry_id(info, "last-entry")
        if epoch is None:
            if await self._redis.hsetnx(meta_key, "epoch", new_epoch()):
                await self._redis.hset(meta_key, "first", oldest or "0-0")
            epoch = _text(await self._redis.hget(meta_key, "epoch") or b"")
            first = _text(await self._redis.hget(meta_key, "first") or b"0-0")
        oldest_pos = parse_id(oldest) if oldest else None
        return HistoryPosition(
            epoch,
            parse_id(first) if first else None,
            oldest_pos,
            parse_id(newest) if newest else None,
            _removed_through(info, oldest_pos),
        )

    async def _unbegun(self, tenant: str, stream: str, meta_key: str) -> HistoryPosition:
        """A tenant with no stream: its history's epoch minted now (kept by the first
        append), so a client connected before the first event is told the epoch it will
        resume in. A stream that was lost (its meta hash remembers a first id) has none
        until the next append begins a new history."""
        raw = await self._mint(keys=[stream, meta_key], args=[new_epoch()])
        if raw is None:  # the first append came in between: the history has begun
            return await self.position(tenant)
        if not raw:
            return EMPTY
        return HistoryPosition(_text(raw), None, None, None, None)


_MINT_LUA = """
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
if redis.call('HEXISTS', KEYS[2], 'first') == 1 then return '' end
redis.call('HSETNX', KEYS[2], 'epoch', ARGV[1])
return redis.call('HGET', KEYS[2], 'epoch')
"""

_NO_ID = b'{"id":null,'


def _tenant_of(item: tuple[dict[str, Any], Dedupe]) -> str:
    return str(item[0]["tenant_id"])


def _body(event: dict[str, Any]) -> bytes:
    """The stored JSON of an event: all of it but the `id` (the stream entry's id is it)."""
    raw = orjson.dumps(event)
    if raw.startswith(_NO_ID):  # as events are built: `"id": None` first
        return b"{" + raw[len(_NO_ID) :]
    return orjson.dumps({k: v for k, v in event.items() if k != "id"})


def _set_id(event: dict[str, Any], raw: Any) -> str | None:
    if raw is None:
        return None
    event["id"] = raw.decode() if isinstance(raw, bytes) else str(raw)
    return str(event["id"])


def _trimmed(info: Any) -> str | None:
    """XINFO STREAM's `max-deleted-entry-id` (Redis 7), None when nothing was deleted."""
    raw = info.get("max-deleted-entry-id") or info.get(b"max-deleted-entry-id")
    text = _text(raw) if raw is not None else "0-0"
    return None if text == "0-0" else text


def _removed_through(info: Any, oldest: tuple[int, int] | None) -> tuple[int, int] | None:
    """The newest id that may have been removed from a stream (Redis 7's XINFO STREAM).

    Trimming (MAXLEN/MINID) does not move `max-deleted-entry-id`, only XDEL does; but it
    always takes the oldest entries, and `entries-added` above `length` says some went.
    Then everything below the oldest entry held may be gone: the bound is the id just
    below it (a client at or past that bound missed nothing that was removed)."""
    deleted = _trimmed(info)
    bound = parse_id(deleted) if deleted else None
    added, length = _field(info, "entries-added"), _field(info, "length")
    if added is not None and length is not None and int(added) > int(length):
        below = _just_below(oldest) if oldest is not None else (2**64 - 1, 2**64 - 1)
        bound = below if bound is None else max(bound, below)
    return bound


def _just_below(pos: tuple[int, int]) -> tuple[int, int]:
    ms, seq = pos
    return (ms, seq - 1) if seq else (ms - 1, 2**64 - 1)


def _field(info: Any, name: str) -> Any:
    value = info.get(name)
    return info.get(name.encode()) if value is None else value


def _entry_id(info: Any, field: str) -> str | None:
    entry = info.get(field) or info.get(field.encode())
    return _text(entry[0]) if entry else None


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def decode_entry(row_id: bytes | str, fields: dict[Any, Any]) -> dict[str, Any]:
    raw: Any = fields.get(b"e") or fields.get("e")
    event: dict[str, Any] = orjson.loads(raw)
    event["id"] = _text(row_id)
    return event
