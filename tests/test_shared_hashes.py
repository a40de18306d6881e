"""The memory/Redis twin of the small shared hashes (`notify_core.redis.shared_hashes`):
the same calls give the same answers on both, so a store written against it (heartbeats,
people) behaves alike on `towerco-notify run` and on Redis (and a Redis Cluster: the
cluster pass runs this module too)."""

from __future__ import annotations

import uuid

from notify_core.redis.keys import RedisKeys
from notify_core.redis.shared_hashes import MemoryHashes, RedisHashes, SharedHashes


async def test_in_memory():
    await answers_alike(MemoryHashes(), RedisKeys(f"test-hashes-{uuid.uuid4().hex[:8]}:"))


async def test_on_redis(redis_client):
    keys = RedisKeys(f"test-hashes-{uuid.uuid4().hex[:8]}:")
    try:
        await answers_alike(RedisHashes(redis_client), keys)
    finally:
        async for key in redis_client.scan_iter(match=f"{keys.prefix}*"):
            await redis_client.delete(key)


async def answers_alike(hashes: SharedHashes, keys: RedisKeys) -> None:
    a, b = keys.tenant("people", "t1"), keys.tenant("people", "t2")

    assert await hashes.get(a, "x") is None and await hashes.fields(a) == {}
    await hashes.put(a, "x", b"1")
    await hashes.put(a, "y", b"2")
    await hashes.put(b, "x", b"other tenant")
    assert await hashes.get(a, "x") == b"1"
    assert await hashes.fields(a) == {"x": b"1", "y": b"2"}

    # set only when absent: the second claim loses, the value stays the first
    assert await hashes.put_new(a, "open", b"100") is True
    assert await hashes.put_new(a, "open", b"200") is False
    assert await hashes.get(a, "open") == b"100"

    # keep the larger: a ping that arrives late does not move the time back
    await hashes.raise_to(a, "ping", 50)
    await hashes.raise_to(a, "ping", 40)
    assert await hashes.get(a, "ping") == b"50"
    await hashes.raise_to(a, "ping", 60)
    assert await hashes.get(a, "ping") == b"60"

    # removal says whether it was there (who resolved first)
    assert await hashes.remove(a, "open") is True
    assert await hashes.remove(a, "open") is False

    found = [k async for k in hashes.keys(keys.prefix + "people:")]
    assert sorted(found) == sorted([a, b])

    counter = keys.tenant("people-throttle", "t1", "u1:sms:1")
    assert [await hashes.count(counter, 60) for _ in range(3)] == [1, 2, 3]
