"""Recovery never claims what it cannot prove: a client that missed events, then finds its
history reset (the embedded daemon restarted, the tenant's Redis stream lost, Redis
restarted without persistence) is told `recovered: false`, never a false `true`.

Each test has its positive twin: the same resume against a history that was not reset is
`recovered: true` with exactly the missed events.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from notify_core.history.store import History, MemoryHistory, RedisHistory
from notify_core.obs.readiness import Readiness
from pipeline.publisher import Publisher
from sio_server.admission.auth import Authenticator
from sio_server.app import SocketServer
from tests import redis_cluster
from tests.helpers import TEST_SECRET, NodeClient, new_tenant
from tests.redis_cluster import until_answers
from towerco_notify.embedded_broker import free_port


class Daemon:
    """The Socket.IO server and publish path over one history (no Kafka needed here)."""

    def __init__(self, history: History) -> None:
        self.history = history
        self.server = SocketServer(
            Authenticator(TEST_SECRET), history, Readiness(), "127.0.0.1", 0, []
        )
        self.publisher = Publisher(history, self.server.emit)
        self._n = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"

    async def alert(self, tenant: str, incident: str) -> str:
        self._n += 1
        event: dict[str, Any] = {
            "id": None,
            "type": "incident_alert",
            "tenant_id": tenant,
            "timestamp": "2026-11-25T10:00:00Z",
            "priority": "critical",
            "incident": {"incident_id": incident},
            "requires_acknowledgment": True,
        }
        event_id = await self.publisher.publish(event, uuid.uuid4().hex)
        assert event_id
        return event_id


async def _watch(daemon: Daemon, tenant: str, token: str) -> tuple[str, str]:
    """Connect to a history that has begun, receive one alert, leave: the client's
    (last_id, epoch), as the client module keeps them."""
    await daemon.alert(tenant, "I-before")
    client = await NodeClient.start(daemon.url, token, ["websocket"])
    try:
        hello = (await client.wait_for(lambda m: m.get("name") == "connection_established"))["data"]
        last_id = await daemon.alert(tenant, "I-seen")
        await client.wait_for(lambda m: m.get("name") == "incident_alert")
        assert isinstance(hello["epoch"], str) and hello["epoch"]
        return last_id, hello["epoch"]
    finally:
        await client.close()


async def _resume(daemon: Daemon, token: str, last_id: str, epoch: str | None) -> dict[str, Any]:
    auth: dict[str, Any] = {"token": token, "last_id": last_id}
    if epoch is not None:
        auth["epoch"] = epoch
    client = await NodeClient.start(daemon.url, auth=auth, transports=["websocket"])
    try:
        done = (await client.wait_for(lambda m: m.get("name") == "sync_complete"))["data"]
        done["incidents"] = [e["incident"]["incident_id"] for e in client.events("incident_alert")]
        return done
    finally:
        await client.close()


async def _started(history: History) -> Daemon:
    d = Daemon(history)
    await d.server.start()
    return d


async def test_embedded_restart_between_disconnect_and_resume(token) -> None:
    tenant = new_tenant()
    before = await _started(MemoryHistory())
    try:
        last_id, epoch = await _watch(before, tenant, token(tenant))
        for n in range(3):
            await before.alert(tenant, f"I-missed-{n}")  # stored, then lost with the process
        done = await _resume(before, token(tenant), last_id, epoch)  # the twin: no restart
        assert done["recovered"] is True and done["incidents"] == [
            f"I-missed-{n}" for n in range(3)
        ]
    finally:
        await before.server.stop()
    after = await _started(MemoryHistory())  # the restarted daemon: its memory starts empty
    try:
        for n in range(2):
            await after.alert(tenant, f"I-new-{n}")
        for told in (epoch, None):  # with the epoch it was told, and without (older clients)
            done = await _resume(after, token(tenant), last_id, told)
            assert done["recovered"] is False, done
            assert done["reason"] in (
                "history was reset: its epoch is not the one the client was told",
                "history began after last_id",
            )
            assert done["epoch"] != epoch
            assert done["incidents"] == ["I-new-0", "I-new-1"], "what it holds still comes"
    finally:
        await after.server.stop()


async def test_redis_stream_lost_between_disconnect_and_resume(redis_url, token) -> None:
    tenant, prefix = new_tenant(), f"test-epoch-{uuid.uuid4().hex[:6]}:"
    client = redis_cluster.client(redis_url)
    daemon = await _started(RedisHistory(client, prefix))
    try:
        last_id, epoch = await _watch(daemon, tenant, token(tenant))
        for n in range(3):
            await daemon.alert(tenant, f"I-missed-{n}")
        done = await _resume(daemon, token(tenant), last_id, epoch)
        assert done["recovered"] is True and done["incidents"] == [
            f"I-missed-{n}" for n in range(3)
        ]
        assert done["epoch"] == epoch
        await client.delete(f"{prefix}history:{{{tenant}}}")  # lost
        done = await _resume(daemon, token(tenant), last_id, epoch)
        assert done["recovered"] is False and done["reason"].startswith("history is empty")
        await daemon.alert(tenant, "I-new")
        done = await _resume(daemon, token(tenant), last_id, epoch)
        assert done["recovered"] is False and done["reason"].startswith("history was reset")
        assert done["incidents"] == ["I-new"] and done["epoch"] not in (None, epoch)
    finally:
        await daemon.server.stop()
        async for key in client.scan_iter(match=f"{prefix}*"):
            await client.delete(key)
        await client.aclose()


class ScratchRedis:
    """A Redis of this test's own, without persistence, to restart."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="towerco-redis-")
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            "redis-server",
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            self.dir,
            stdout=asyncio.subprocess.DEVNULL,
        )
        probe = Redis(port=self.port)
        try:
            await until_answers(probe, f"redis-server on port {self.port}")
        finally:
            await probe.aclose()

    async def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            await self.proc.wait()
            self.proc = None


@pytest.fixture
async def scratch_redis() -> AsyncIterator[ScratchRedis]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    r = ScratchRedis()
    await r.start()
    yield r
    await r.stop()
    shutil.rmtree(r.dir, ignore_errors=True)


async def test_redis_restarted_without_persistence(scratch_redis, token) -> None:
    tenant = new_tenant()
    client = Redis(port=scratch_redis.port)
    daemon = await _started(RedisHistory(client, "t:"))
    try:
        last_id, epoch = await _watch(daemon, tenant, token(tenant))
        for n in range(3):
            await daemon.alert(tenant, f"I-missed-{n}")
        await scratch_redis.stop()  # SIGKILL: with no persistence, everything is gone
        await scratch_redis.start()
        await daemon.alert(tenant, "I-after-restart")
        done = await _resume(daemon, token(tenant), last_id, epoch)
        assert done["recovered"] is False and done["reason"].startswith("history was reset")
        assert done["incidents"] == ["I-after-restart"]
    finally:
        await daemon.server.stop()
        await client.aclose()


@pytest.mark.parametrize("engine", ["memory", "redis"])
async def test_epoch_told_before_the_first_event_is_the_one_it_resumes_in(
    engine, redis_url, token
) -> None:
    """A client that connects to a tenant before its first event is told the history's
    epoch (not null), and that epoch is kept by the first append: resuming with it
    recovers what it missed. Without the epoch, nothing proves it missed nothing."""
    tenant, prefix = new_tenant(), f"test-epoch-{uuid.uuid4().hex[:6]}:"
    client = redis_cluster.client(redis_url)
    history: History = MemoryHistory() if engine == "memory" else RedisHistory(client, prefix)
    daemon = await _started(history)
    try:
        node = await NodeClient.start(daemon.url, token(tenant), ["websocket"])
        try:
            hello = (await node.wait_for(lambda m: m.get("name") == "connection_established"))[
                "data"
            ]
            epoch = hello["epoch"]
            assert isinstance(epoch, str) and epoch, hello
            first = await daemon.alert(tenant, "I-first")
            await node.wait_for(lambda m: m.get("name") == "incident_alert")
        finally:
            await node.close()
        for n in range(2):
            await daemon.alert(tenant, f"I-missed-{n}")
        done = await _resume(daemon, token(tenant), first, epoch)
        assert done["recovered"] is True, done
        assert done["epoch"] == epoch
        assert done["incidents"] == ["I-missed-0", "I-missed-1"]
        # a second tenant that never had an event: a last_id without the epoch proves nothing
        other = new_tenant()
        done = await _resume(daemon, token(other), first, None)
        assert done["recovered"] is False and done["reason"].startswith("history is empty")
    finally:
        await daemon.server.stop()
        async for key in client.scan_iter(match=f"{prefix}*"):
            await client.delete(key)
        await client.aclose()
