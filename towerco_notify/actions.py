"""Incident actions taken on the server (socket or HTTP) go to `towerco.incidents.actions`.

The pipeline then applies them like any other producer's action, so every process
sees the same ordered stream of state changes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from notify_core.wire.events import TOPIC_ACTIONS, now_iso
from sio_server.admission.auth import Principal


class ActionProducer:
    """The server's producer: incident actions taken by its users, and the records of
    inbound integrations (`send_records`). `bootstrap` is asked at start: the embedded
    broker's port is known only then."""

    def __init__(self, bootstrap: Callable[[], str], acks: int | str = "all") -> None:
        self._bootstrap = bootstrap
        self._acks = acks
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        # tansu has no idempotent producer; at-least-once + dedupe downstream.
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap(),
            acks=self._acks,  # all by default: an action answered 202 survives a failover
            enable_idempotence=False,
            linger_ms=0,
        )
        await self._producer.start()

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()

    async def __call__(
        self,
        principal: Principal,
        incident_id: str,
        action: str,
        extra: dict[str, Any] | None = None,
    ) -> None:
        """`extra`: the action's note and minutes, checked by the caller."""
        payload = {
            "incident_id": incident_id,
            "action": action,
            "user_id": principal.user_id,
            "via": "server",  # audited where it was taken (socket, ws, http)
        }
        envelope = {
            "tenant_id": principal.tenant_id,
            "timestamp": now_iso(),
            "payload": {**payload, **(extra or {})},
        }
        key = f"{principal.tenant_id}/{incident_id}".encode()
        assert self._producer is not None, "ActionProducer not started"
        await self._producer.send_and_wait(TOPIC_ACTIONS, orjson.dumps(envelope), key=key)

    async def send_records(self, records: list[tuple[str, bytes, bytes]]) -> None:
        """Produce (topic, key, value) records and return once the broker acknowledged
        every one (with the producer's `acks`); raises when one was not."""
        assert self._producer is not None, "ActionProducer not started"
        sent = [await self._producer.send(topic, value, key=key) for topic, key, value in records]
        await asyncio.gather(*sent)
