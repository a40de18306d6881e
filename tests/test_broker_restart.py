"""A broker restart on durable storage: tansu on S3 (moto's `moto_server` as the S3
endpoint) is stopped and started again mid-stream, and every alert produced before,
during and after the restart reaches the history once, in order."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from notify_core.wire.events import TOPIC_ALERTS
from sio_server.admission.auth import mint_token
from tests.conftest import daemon_settings
from tests.helpers import TEST_SECRET, alert, history_of, new_tenant
from towerco_notify.embedded_broker import EmbeddedBroker, free_port
from towerco_notify.runtime import Runtime

BUCKET = "tansu"


def _moto_server() -> str | None:
    here = Path(sys.executable).with_name("moto_server")
    return str(here) if here.exists() else shutil.which("moto_server")


@pytest.fixture
def s3_env() -> Iterator[dict[str, str]]:
    """A local S3 (moto) with the broker's bucket; the environment tansu reads it from."""
    binary = _moto_server()
    if binary is None:
        pytest.skip("moto_server is not installed (the test extra moto[server])")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):  # the broker's bucket, once moto listens
            try:
                urllib.request.urlopen(urllib.request.Request(f"{endpoint}/{BUCKET}", method="PUT"))
                break
            except OSError:
                pass
            proc.poll()
            if proc.returncode is not None:
                raise AssertionError(f"moto_server exited {proc.returncode}")
            time.sleep(0.1)
        yield {
            **os.environ,
            "AWS_ENDPOINT": endpoint,
            "AWS_ALLOW_HTTP": "true",
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def test_nothing_produced_before_or_during_a_broker_restart_is_lost(s3_env, redis_url):
    port = free_port()

    def broker() -> EmbeddedBroker:
        return EmbeddedBroker(port=port, storage=f"s3://{BUCKET}/", env=s3_env)

    first = broker()
    await first.start()
    settings = daemon_settings(first.bootstrap, redis_url, kafka_offset_reset="earliest")
    runtime = Runtime(settings, mode="run")
    await runtime.start()
    await runtime.wait_ready(60)
    producer = AIOKafkaProducer(
        bootstrap_servers=first.bootstrap, acks="all", request_timeout_ms=60_000
    )
    await producer.start()
    tenant, total = new_tenant(), 30
    restarted: EmbeddedBroker | None = None
    try:

        async def send(i: int) -> None:
            value = orjson.dumps(alert(tenant, f"B-{i:03d}", "major"))
            await producer.send_and_wait(TOPIC_ALERTS, value, key=tenant.encode())

        for i in range(10):  # before
            await send(i)
        await first.stop()

        async def in_order(numbers: range) -> None:
            for i in numbers:  # one at a time: tansu misreports multi-record batches' ends
                await send(i)

        during = asyncio.create_task(in_order(range(10, 20)))  # sent while it is down
        await asyncio.sleep(1.0)
        restarted = broker()
        await restarted.start()
        await during
        for i in range(20, total):  # after
            await send(i)

        token = mint_token(TEST_SECRET, tenant, "u", ["operator"], None, 3600)

        async def history() -> list[str]:
            events = await history_of(f"http://127.0.0.1:{runtime.http_port}", token)
            return [e["incident"]["incident_id"] for e in events]

        names: list[str] = []
        for _ in range(300):
            names = await history()
            if len(names) >= total:
                break
            await asyncio.sleep(0.2)
        assert names == [f"B-{i:03d}" for i in range(total)], "none lost, none twice, in order"
    finally:
        await producer.stop()
        await runtime.stop()
        if restarted is not None:
            await restarted.stop()
        await first.stop()
