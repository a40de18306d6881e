"""Redis pub/sub `system_notifications` -> `system_notification` to the tenant room.

Every pipeline process subscribes; the history's dedupe key (a hash of the message)
makes sure one message is stored and emitted once however many processes hear it.
Survives bad messages (counted, logged) and lost connections (capped backoff).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from redis.asyncio import Redis

from notify_core.lifecycle import Background
from notify_core.obs import metrics
from notify_core.redis import factory as redis_factory
from notify_core.retry import Backoff
from pipeline.envelope import BadInput
from pipeline.handlers import dedupe_key, system_notice_event
from pipeline.publisher import Publisher

log = logging.getLogger(__name__)


class SystemChannelBridge:
    def __init__(self, redis: Redis, channel: str, publisher: Publisher) -> None:
        self._redis = redis
        self._channel = channel
        self._publisher = publisher
        self._background = Background("system-channel-bridge", self._run)
        self.subscribed = False

    async def start(self) -> None:
        await self._background.start()

    async def stop(self) -> None:
        await self._background.stop()

    async def handle(self, raw: bytes) -> str | None:
        try:
            event = system_notice_event(raw)
        except BadInput as exc:
            metrics.DEAD_LETTERS.labels("redis").inc()
            log.warning("bad message on %s: %s (raw %r)", self._channel, exc.reason, raw[:200])
            return None
        return await self._publisher.publish(event, dedupe_key(self._channel, raw))

    async def _run(self) -> None:
        backoff = Backoff(f"Redis channel {self._channel}", log)
        while True:
            pubsub: Any = None
            try:
                pubsub = await redis_factory.pubsub(self._redis, ignore_subscribe_messages=True)
                await pubsub.subscribe(self._channel)
                self.subscribed = True
                backoff.ok()
                log.info("subscribed to Redis channel %s", self._channel)
                async for message in pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    data = message["data"]
                    try:
                        await self.handle(data if isinstance(data, bytes) else str(data).encode())
                    except asyncio.CancelledError:
                        raise
                    except Exception:
                        log.exception("system notification failed")
                error: Exception = ConnectionError("subscription ended")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                error = exc
            finally:
                self.subscribed = False
                if pubsub is not None:
                    with contextlib.suppress(Exception):
                        await pubsub.aclose()
            await backoff.failed(error)
