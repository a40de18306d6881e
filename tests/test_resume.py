"""The resume decision (pure) and the history positions it reads (both engines).

`recovered: true` must mean every event after `last_id` is still held; the property test
builds histories from their own life story (began at some id, trimmed through some id, maybe
reset into a new epoch) and checks the decision against what a replay would really find.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from notify_core.history.resume import EMPTY, HistoryPosition, decide
from notify_core.history.store import MemoryHistory, RedisHistory
from notify_core.wire.ids import format_id
from tests import redis_cluster

ids = st.tuples(st.integers(0, 50), st.integers(0, 3))


@st.composite
def lives(draw: Any) -> tuple[HistoryPosition, set[tuple[int, int]], set[tuple[int, int]]]:
    """A history now, the ids an earlier life held (reset: a restart, a stream lost), and
    the ids this life trimmed away."""
    earlier: set[tuple[int, int]] = set()
    if draw(st.booleans()):
        earlier = set(draw(st.lists(ids, min_size=1, max_size=5)))
    held = sorted(set(draw(st.lists(ids, min_size=1, max_size=12))))
    base = max(earlier) if earlier else (0, 0)
    held = [h for h in held if h > base] or [(base[0] + 1, 0)]  # ids only grow
    trim = draw(st.integers(0, len(held) - 1))
    trimmed, kept = held[:trim], held[trim:]
    position = HistoryPosition(
        "epoch-now", held[0], kept[0], kept[-1], trimmed[-1] if trimmed else None
    )
    return position, earlier, set(trimmed)


@given(lives(), ids, st.sampled_from(["earlier", "current", "none"]))
def test_recovered_only_when_nothing_after_last_id_is_gone(life, last, epoch_kind) -> None:
    """A client told the current epoch lived only in this life: it missed what this life
    trimmed after `last`. One told an earlier epoch missed that life's end, gone for good.
    One that says no epoch may come from either: both count."""
    position, earlier, trimmed = life
    epoch = {"earlier": "epoch-old", "current": position.epoch, "none": None}[epoch_kind]
    gone = {
        "earlier": earlier | trimmed | {(10**6, 0)},  # that life went on, past any id
        "current": trimmed,
        "none": earlier | trimmed,
    }[epoch_kind]
    d = decide(format_id(last), epoch, position)
    if d.recovered:
        assert not any(g > last for g in gone), (position, earlier, last, epoch)
        assert d.reason is None
    else:
        assert d.reason
    assert d.after == last


def test_reasons_name_each_case() -> None:
    now = HistoryPosition("e1", (10, 0), (20, 0), (30, 0), (19, 0))
    assert decide("x", None, now).reason.startswith("invalid last_id")
    assert decide("25-0", 7, now).reason == "invalid epoch: must be a string"
    assert decide("25-0", "e0", now).reason.startswith("history was reset")
    assert decide("5-0", None, now).reason == "history began after last_id"
    assert decide("15-0", "e1", now).reason == "history no longer reaches back to last_id"
    assert decide("25-0", None, EMPTY).reason.startswith("history is empty")
    assert decide("25-0", "e1", now).recovered and decide("19-0", None, now).recovered


async def _fill(history: Any, tenant: str, n: int) -> list[str]:
    out = []
    for i in range(n):
        event = {"id": None, "type": "incident_alert", "tenant_id": tenant, "n": i}
        out.append(await history.append(event, uuid.uuid4().hex))
    return out


async def test_memory_history_epoch_is_per_process_life() -> None:
    a, b = MemoryHistory(), MemoryHistory()
    unbegun = await a.position("t")  # told before the first event: an epoch, no ids
    assert unbegun.epoch and unbegun.first_id is None and unbegun.last_id is None
    stored = await _fill(a, "t", 3)
    pos = await a.position("t")
    assert pos.epoch == unbegun.epoch  # the first append keeps it
    assert format_id(pos.first_id) == stored[0]
    assert format_id(pos.last_id) == stored[-1] and pos.trimmed_through is None
    await _fill(b, "t", 1)  # "the daemon restarted": the same tenant, a new life
    assert (await b.position("t")).epoch != pos.epoch


async def test_memory_history_keeps_its_first_id_when_trimmed() -> None:
    h = MemoryHistory(maxlen=10)
    stored = await _fill(h, "t", 25)
    pos = await h.position("t")
    assert format_id(pos.first_id) == stored[0] and format_id(pos.oldest_id) == stored[15]
    assert format_id(pos.trimmed_through) == stored[14]


async def test_read_before_is_newest_first_on_both_engines(redis_url) -> None:
    client = redis_cluster.client(redis_url)
    engines = [MemoryHistory(), RedisHistory(client, f"test-rb-{uuid.uuid4().hex[:6]}:")]
    try:
        for h in engines:
            stored = await _fill(h, "t", 8)
            newest = await h.read_before("t", None, 3)
            assert [e["id"] for e in newest] == stored[::-1][:3]
            page = await h.read_before("t", stored[4], 10)
            assert [e["id"] for e in page] == stored[:4][::-1]
    finally:
        await client.aclose()


async def test_redis_stream_lost_begins_a_new_epoch(redis_url) -> None:
    client = redis_cluster.client(redis_url)
    prefix = f"test-ep-{uuid.uuid4().hex[:6]}:"
    h = RedisHistory(client, prefix)
    try:
        stored = await _fill(h, "t", 3)
        pos = await h.position("t")
        assert pos.epoch and format_id(pos.first_id) == stored[0]
        await client.delete(h.stream_key("t"))  # lost: deleted, or a failover to an empty replica
        assert await h.position("t") == EMPTY
        again = await _fill(h, "t", 2)
        fresh = await h.position("t")
        assert fresh.epoch != pos.epoch and format_id(fresh.first_id) == again[0]
        # a stream written before epochs existed is given one, from what it holds
        await client.delete(f"{h.stream_key('t')}:meta")
        adopted = await h.position("t")
        assert adopted.epoch and adopted.epoch != fresh.epoch
        assert format_id(adopted.first_id) == again[0]
        assert await h.position("t") == adopted
    finally:
        async for key in client.scan_iter(match=f"{prefix}*"):
            await client.delete(key)
        await client.aclose()


@pytest.mark.parametrize("engine", ["memory", "redis"])
async def test_position_of_a_trimmed_redis_or_memory_history(redis_url, engine) -> None:
    client = redis_cluster.client(redis_url)
    prefix = f"test-tr-{uuid.uuid4().hex[:6]}:"
    h: Any = MemoryHistory(maxlen=10) if engine == "memory" else RedisHistory(client, prefix, 10)
    try:
        stored = await _fill(h, "t", 300)
        pos = await h.position("t")
        assert format_id(pos.first_id) == stored[0]
        assert pos.trimmed_through is not None and pos.oldest_id > pos.trimmed_through
        oldest = stored.index(format_id(pos.oldest_id))
        assert 0 < oldest <= 300 - 10
        assert not decide(stored[0], pos.epoch, pos).recovered
        assert not decide(stored[oldest - 2], pos.epoch, pos).recovered
        # the client saw the oldest one still held: everything after it is there
        assert decide(stored[oldest], pos.epoch, pos).recovered
        assert decide(stored[-2], pos.epoch, pos).recovered
    finally:
        async for key in client.scan_iter(match=f"{prefix}*"):
            await client.delete(key)
        await client.aclose()
