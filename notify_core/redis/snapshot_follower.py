"""A snapshot of shared state that every process follows: re-read within a second of a
change (the owner's `refresh()` compares a version counter first, so an idle second costs
one GET), kept as it was while Redis is away. Revocations and suppression use it."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from notify_core.lifecycle import Background

log = logging.getLogger(__name__)

REFRESH_S = 1.0
UNCHANGED: Any = object()


class FollowedSnapshot:
    """Subclasses set `_redis` (None: memory only, nothing to follow), `_hash` and
    `_version_key`, and implement `refresh()` (starting with `_changed()`)."""

    _redis: Any
    _hash: str
    _version_key: str
    _version: Any = None
    _follower: Background | None = None
    what = "shared state"

    async def refresh(self) -> None:
        raise NotImplementedError

    async def _changed(self) -> Any:
        """The store's version when it changed since the last read, else UNCHANGED. The
        caller notes it (`_version`) once it has read the store: a failed read is retried."""
        version = await self._redis.get(self._version_key)
        if version == self._version and self._version is not None:
            return UNCHANGED
        return version

    async def _write(self, field: str, value: bytes) -> None:
        """Set one field of the shared hash and bump the version everyone follows."""
        pipe = self._redis.pipeline(transaction=True)
        pipe.hset(self._hash, field, value)
        pipe.incr(self._version_key)
        await pipe.execute()

    async def start(self) -> None:
        await self.refresh()
        if self._redis is not None:
            self._follower = Background(f"follow {self.what}", self._follow)
            await self._follower.start()

    async def stop(self) -> None:
        if self._follower is not None:
            await self._follower.stop()

    async def _follow(self) -> None:
        while True:
            await asyncio.sleep(REFRESH_S)
            try:
                await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis away: keep the last snapshot, try again
                log.warning("reading %s failed (%s); keeping the last one", self.what, exc)
