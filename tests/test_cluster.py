"""Redis Cluster and Sentinel: the key layout puts what is used together in one slot and
spreads the tenants; a Sentinel URL finds the master. (The rest of the Redis-backed suite
runs on a cluster too: `./dev test` runs it again with TOWERCO_TEST_REDIS=cluster.)"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis.asyncio import Redis
from redis.crc import key_slot

from notify_core.history.store import RedisHistory
from notify_core.redis.factory import connect, parse_sentinel_url
from notify_core.redis.keys import RedisKeys, slot_tag
from notify_core.settings import SettingsError, load_settings
from notify_core.wire.events import IDENT_PATTERN
from tests import redis_cluster
from tests.redis_cluster import until_answers
from towerco_notify.embedded_broker import free_port

idents = st.from_regex(IDENT_PATTERN.replace("$", r"\Z"), fullmatch=True)


@given(tenant=idents, other=idents, ident=idents)
def test_every_key_of_a_tenant_is_in_its_slot_and_only_there(tenant, other, ident):
    keys = RedisKeys("towerco:")
    of_tenant = [
        keys.stream(tenant),
        keys.stream_meta(tenant),
        keys.dedupe(tenant, ident),
        keys.positions(tenant),
        keys.thing("incident", tenant, ident),
        keys.incident_index(tenant, True),
        keys.incident_index(tenant, False),
        keys.timeline(tenant, ident),
        keys.user_connections(tenant, ident),
        keys.tenant_connections(tenant),
        keys.presence(tenant, "viewers", ident),
        keys.push_subscriptions(tenant),
    ]
    slots = {key_slot(k.encode()) for k in of_tenant}
    assert slots == {key_slot(tenant.encode())}  # Redis' own rule agrees with slot_tag
    assert {slot_tag(k) for k in of_tenant} == {tenant}
    if key_slot(other.encode()) != key_slot(tenant.encode()):
        assert key_slot(keys.stream(other).encode()) not in slots


def test_a_prefix_with_braces_and_a_bad_sentinel_url_are_refused_by_name():
    with pytest.raises(SettingsError, match="NOTIFY_REDIS_PREFIX"):
        load_settings(redis_prefix="a{b}:")
    with pytest.raises(SettingsError, match=r"NOTIFY_REDIS_URL.*service"):
        load_settings(redis_url="redis+sentinel://127.0.0.1:26379")
    where = parse_sentinel_url("redis+sentinel://:pw@s1:26380,s2/notify/3")
    assert where.sentinels == [("s1", 26380), ("s2", 26379)]
    assert (where.service, where.db, where.password) == ("notify", 3, "pw")


@pytest.mark.skipif(not redis_cluster.CLUSTER, reason="runs on the cluster pass")
async def test_on_a_cluster_tenants_spread_over_the_masters_and_batches_keep_order(
    redis_url, redis_client
):
    """One batch of many tenants: each tenant's events land on its slot's master, in
    order, and more than one master holds some (the batch was split by slot)."""
    prefix = f"test-spread-{uuid.uuid4().hex[:6]}:"
    history = RedisHistory(redis_client, prefix)
    tenants = [f"t{n}" for n in range(12)]
    items = [
        ({"id": None, "tenant_id": t, "n": i, "type": "x"}, f"{t}-{i}")
        for i in range(5)
        for t in tenants
    ]
    ids = await history.append_many(items)
    assert all(ids)
    for t in tenants:
        assert [e["n"] for e in await history.read_after(t, None, 10)] == list(range(5))
    cluster = redis_client
    nodes = {cluster.get_node_from_key(history.stream_key(t)).name for t in tenants}  # type: ignore[attr-defined]
    assert len(nodes) > 1


@pytest.fixture
def sentinel(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """A master and one Sentinel watching it: the Sentinel URL and the master's port."""
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed")
    master_port, sentinel_port = free_port(), free_port()
    conf = tmp_path / "sentinel.conf"
    conf.write_text(
        f"port {sentinel_port}\nbind 127.0.0.1\nsentinel monitor notify 127.0.0.1 {master_port} 1\n"
    )
    procs = [
        subprocess.Popen([server, "--port", str(master_port), "--bind", "127.0.0.1",
                          "--save", "", "--dir", tempfile.gettempdir()]),
        subprocess.Popen([server, str(conf), "--sentinel"]),
    ]  # fmt: skip
    try:
        yield f"redis+sentinel://127.0.0.1:{sentinel_port}/notify/0", master_port
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=5)


async def test_a_sentinel_url_reaches_the_master_sentinel_names(sentinel):
    url, master_port = sentinel
    client = connect(url)
    try:
        await until_answers(client, "the master behind Sentinel", every_s=0.1)
        info = await client.info("server")
        assert int(info["tcp_port"]) == master_port
        history = RedisHistory(client, "sentinel-test:")
        stored = await history.append({"id": None, "tenant_id": "t", "type": "x"}, "k")
        assert stored is not None
        direct = Redis(host="127.0.0.1", port=master_port)
        assert await direct.xlen(history.stream_key("t")) == 1
        await direct.aclose()
    finally:
        await client.aclose()
