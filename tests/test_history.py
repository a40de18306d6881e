"""Event ids and the two history engines (memory and real Redis), same behaviour."""

from __future__ import annotations

import itertools
import uuid

import pytest
import pytest_asyncio
from hypothesis import given
from hypothesis import strategies as st

from notify_core.history.store import (
    REDELIVERY_WINDOW,
    MemoryHistory,
    RedisHistory,
    SourcePosition,
)
from notify_core.redis.keys import RedisKeys
from notify_core.wire.ids import IdMinter, InvalidEventId, format_id, parse_id


@given(st.lists(st.integers(min_value=0, max_value=2**45), min_size=1, max_size=200))
def test_minted_ids_strictly_increase_even_when_the_clock_steps_back(clock):
    minter = IdMinter()
    ids = [minter.next(ms) for ms in clock]
    assert all(a < b for a, b in itertools.pairwise(ids))
    assert all(parse_id(format_id(i)) == i for i in ids)


def test_ids_compare_numerically_part_by_part():
    assert parse_id("1700000000000-10") > parse_id("1700000000000-9")
    assert parse_id("1700000000001-0") > parse_id("1700000000000-99")


@pytest.mark.parametrize("bad", ["", "abc", "1-", "-1", "1-2-3", "1.5-0", None, 17, "1 -0"])
def test_invalid_ids_are_refused_clearly(bad):
    with pytest.raises(InvalidEventId, match="1700000000000-0"):
        parse_id(bad)


@pytest_asyncio.fixture(params=["memory", "redis"])
async def history(request, redis_client):
    if request.param == "memory":
        yield MemoryHistory(maxlen=50)
    else:
        prefix = f"testhist-{uuid.uuid4().hex[:8]}:"
        history = RedisHistory(redis_client, prefix, maxlen=50)
        history.test_prefix = prefix  # type: ignore[attr-defined]
        yield history
        async for key in redis_client.scan_iter(match=f"{prefix}*"):
            await redis_client.delete(key)


def ev(tenant: str, n: int) -> dict:
    return {"id": None, "type": "incident_alert", "tenant_id": tenant, "n": n}


async def test_append_read_after_and_dedupe(history):
    ids = [await history.append(ev("a", i), dedupe_key=f"k{i}") for i in range(5)]
    assert all(ids) and ids == sorted(ids, key=parse_id)
    assert await history.append(ev("a", 99), dedupe_key="k2") is None  # redelivery
    await history.append(ev("b", 0), dedupe_key="k0")  # same key, other tenant: stored
    everything = await history.read_after("a", None, 100)
    assert [e["n"] for e in everything] == [0, 1, 2, 3, 4]
    assert [e["id"] for e in everything] == ids
    after = await history.read_after("a", ids[1], 2)
    assert [e["n"] for e in after] == [2, 3]
    assert await history.read_after("a", ids[-1], 10) == []
    assert await history.last_id("a") == ids[-1]
    assert await history.oldest_id("a") == ids[0]
    assert [e["n"] for e in await history.read_after("b", None, 10)] == [0]
    assert await history.read_after("nobody", None, 10) == []


async def test_history_is_bounded(history):
    for i in range(200):
        await history.append(ev("c", i))
    kept = await history.read_after("c", None, 1000)
    assert 50 <= len(kept) <= 150  # Redis trims approximately (MAXLEN ~)
    assert kept[-1]["n"] == 199
    assert parse_id(await history.oldest_id("c")) > parse_id("0-1")


async def test_append_many_stores_in_order_and_drops_redeliveries(history):
    first = await history.append_many([(ev("m", i), f"k{i}") for i in range(4)])
    assert all(first) and first == sorted(first, key=parse_id)
    # a redelivered fetch: the first two again (dropped), then two new ones, one of them
    # also twice within the batch
    again = await history.append_many(
        [(ev("m", 0), "k0"), (ev("m", 1), "k1"), (ev("m", 4), "k4"), (ev("m", 4), "k4")]
    )
    assert again[:2] == [None, None] and again[3] is None
    assert again[2] is not None and parse_id(again[2]) > parse_id(first[-1])
    stored = await history.read_after("m", None, 100)
    assert [e["n"] for e in stored] == [0, 1, 2, 3, 4]
    assert [e["id"] for e in stored] == [*first, again[2]]


async def test_a_batch_larger_than_one_script_call_keeps_order_and_dedupe(history, monkeypatch):
    """Redis stores a batch as several script calls (`EVENTS_PER_CALL` each) in one round
    trip: order and redelivery checks hold across the calls' borders."""
    import notify_core.history.store

    monkeypatch.setattr(notify_core.history.store, "EVENTS_PER_CALL", 3)
    items = [(ev("x", i), f"k{i}") for i in range(8)]
    items.insert(
        4, (ev("x", 2), "k2")
    )  # a redelivery in the second call of one stored in the first
    items.append((ev("y", 0), "k0"))  # another tenant's stream in the same batch
    ids = await history.append_many(items)
    assert ids[4] is None and all(i is not None for n, i in enumerate(ids) if n != 4)
    stored = await history.read_after("x", None, 100)
    assert [e["n"] for e in stored] == list(range(8))
    assert [e["id"] for e in stored] == [i for i in ids[:-1] if i is not None]
    assert [e["n"] for e in await history.read_after("y", None, 10)] == [0]
    assert await history.append_many(items[:5]) == [None] * 5


async def test_kpi_updates_are_deduped_by_kafka_position_without_a_key_per_event(
    history, redis_client, monkeypatch
):
    """A KPI update's dedupe is its message's position: at or below the last position
    stored for its partition it is a redelivery (also across the script calls of one
    batch); partitions are independent; far behind the last one (a recreated topic, a
    group reset to replay) it is stored and the partition starts over from there. No
    dedupe key per event is kept in Redis."""
    import notify_core.history.store

    monkeypatch.setattr(notify_core.history.store, "EVENTS_PER_CALL", 2)

    def at(partition: int, offset: int) -> SourcePosition:
        return SourcePosition("towerco.kpis.updates", partition, offset)

    base = 3 * REDELIVERY_WINDOW  # a topic that has seen some traffic
    first = await history.append_many([(ev("k", n), at(0, base + n)) for n in range(5)])
    assert all(first)
    # a redelivered fetch: 102-104 again, then 105-106 new; and partition 1's first
    again = await history.append_many(
        [(ev("k", n), at(0, base + n)) for n in range(2, 7)] + [(ev("k", 50), at(1, 3))]
    )
    assert again[:3] == [None, None, None] and all(again[3:])
    assert await history.append(ev("k", 51), at(1, 2)) is None  # behind partition 1's last
    assert await history.append(ev("k", 7), at(0, base + 7)) is not None
    # the topic recreated: its offsets start at 0 again, far behind; not a redelivery
    assert await history.append(ev("k", 8), at(0, 0)) is not None
    assert await history.append(ev("k", 9), at(0, 1)) is not None
    assert await history.append(ev("k", 10), at(0, 1)) is None
    stored = [e["n"] for e in await history.read_after("k", None, 100)]
    assert stored == [0, 1, 2, 3, 4, 5, 6, 50, 7, 8, 9]
    if isinstance(history, RedisHistory):
        prefix = history.test_prefix  # type: ignore[attr-defined]
        assert [k async for k in redis_client.scan_iter(match=f"{prefix}dedupe:*")] == []
        positions = RedisKeys(prefix).positions("k")
        assert await redis_client.hgetall(positions) == {
            b"towerco.kpis.updates/0": b"1",
            b"towerco.kpis.updates/1": b"3",
        }
        assert await redis_client.ttl(positions) > 0


async def test_a_long_batch_is_published_part_by_part_in_order(redis_client, monkeypatch):
    """On Redis a long batch is stored in parts, each emitted while the next is stored:
    every event is emitted only once it is stored, all in id order, duplicates not at
    all; snapshots follow. A part that cannot be stored fails the call after the parts
    before it went out, and publishing again emits only what was not stored."""
    from notify_core.state.snapshots import RedisSnapshots
    from pipeline.publisher import Publisher

    monkeypatch.setattr(RedisHistory, "store_part", 4)
    prefix = f"testparts-{uuid.uuid4().hex[:8]}:"
    history = RedisHistory(redis_client, prefix, maxlen=1000)
    emitted: list[str] = []

    async def emit(event: dict, rooms: list[str]) -> None:
        stored = [e["id"] for e in await history.read_after(event["tenant_id"], None, 1000)]
        assert event["id"] in stored, "emitted before it was stored"
        emitted.append(event["id"])

    publisher = Publisher(history, emit, snapshots=RedisSnapshots(redis_client, prefix))

    def kpi(n: int) -> dict:
        return {
            "id": None,
            "type": "kpi_update",
            "tenant_id": "p",
            "timestamp": "2026-11-25T10:00:00Z",
            "site_id": f"s{n % 3}",
            "kpi_data": {"v": n},
        }

    try:
        items = [(kpi(n), f"k{n}", None) for n in range(11)]
        items.insert(6, (kpi(2), "k2", None))  # a duplicate, in the second part
        ids = await publisher.publish_many(items)
        assert ids[6] is None and all(i for n, i in enumerate(ids) if n != 6)
        assert emitted == [i for i in ids if i] == sorted(emitted, key=parse_id)
        snapshots = await publisher._snapshots.get("p", ["s0", "s1", "s2"])  # type: ignore[union-attr]
        assert {s: v["kpi_data"]["v"] for s, v in snapshots.items()} == {"s0": 9, "s1": 10, "s2": 8}

        # the third part of the next batch cannot be stored
        real = history.append_many
        calls = 0

        async def fails_third(batch):  # type: ignore[no-untyped-def]
            nonlocal calls
            calls += 1
            if calls == 3:
                raise RuntimeError("refused")
            return await real(batch)

        monkeypatch.setattr(history, "append_many", fails_third)
        emitted.clear()
        more = [(kpi(n), f"k{n}", None) for n in range(11, 23)]
        with pytest.raises(RuntimeError, match="refused"):
            await publisher.publish_many(more)
        assert len(emitted) == 8  # the first two parts went out
        again = await publisher.publish_many(more)
        assert again[:8] == [None] * 8 and all(again[8:])
        assert len(emitted) == 12
        assert [e["id"] for e in await history.read_after("p", None, 100)] == [
            i for i in [*ids, *emitted] if i
        ]
    finally:
        async for key in redis_client.scan_iter(match=f"{prefix}*"):
            await redis_client.delete(key)
