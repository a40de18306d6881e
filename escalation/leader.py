"""One active scheduler across processes: a Redis lock with a TTL, renewed while held.

A standby tries every `ttl/3`; when the holder dies its lock expires and a standby
takes over within `ttl` (+ one try). Renewal and release check the token, so a
process never extends or frees a lock it lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable

from redis.asyncio import Redis

from notify_core.lifecycle import Background

log = logging.getLogger(__name__)

_RENEW = (
    "if redis.call('GET', KEYS[1]) == ARGV[1] then "
    "return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end"
)
_RELEASE = (
    "if redis.call('GET', KEYS[1]) == ARGV[1] then "
    "return redis.call('DEL', KEYS[1]) else return 0 end"
)


class LeaderLock:
    def __init__(
        self,
        redis: Redis,
        key: str,
        on_gain: Callable[[], None],
        on_loss: Callable[[], None],
        ttl_s: float = 5.0,
    ) -> None:
        self._redis = redis
        self.key = key
        self._token = secrets.token_hex(8)
        self._ttl_ms = int(ttl_s * 1000)
        self._on_gain, self._on_loss = on_gain, on_loss
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)
        self._background = Background("leader-lock", self._run)
        self.leader = False

    async def start(self) -> None:
        await self._background.start()

    async def _run(self) -> None:
        while True:
            try:
                if self.leader:
                    if not await self._renew(keys=[self.key], args=[self._token, self._ttl_ms]):
                        self.leader = False
                        log.warning("lost the escalation leader lock")
                        self._on_loss()
                elif await self._redis.set(self.key, self._token, nx=True, px=self._ttl_ms):
                    self.leader = True
                    log.info("acquired the escalation leader lock")
                    self._on_gain()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("leader lock check failed (%s)", exc)
                if self.leader:
                    self.leader = False
                    self._on_loss()
            await asyncio.sleep(self._ttl_ms / 3000)

    async def stop(self) -> None:
        await self._background.stop()
        if self.leader:
            with contextlib.suppress(Exception):
                await self._release(keys=[self.key], args=[self._token])
            self.leader = False
            self._on_loss()
