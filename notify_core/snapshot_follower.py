"""A snapshot of shared state that every process follows: re-read within a second of a
change (the owner's `refresh()` compares a version counter first, so an idle second costs
one GET), kept as it was while Redis is away. Revocations and suppression use it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

log = logging.getLogger(__name__)

REFRESH_S = 1.0


class FollowedSnapshot:
    """Subclasses set `_redis` (None: memory only, nothing to follow) and `refresh()`."""

    _redis: Any
    _follow_task: asyncio.Task[None] | None = None
    what = "shared state"

    async def refresh(self) -> None:
        raise NotImplementedError

    async def start(self) -> None:
        await self.refresh()
        if self._redis is not None:
            self._follow_task = asyncio.create_task(self._follow(), name=f"follow {self.what}")

    async def stop(self) -> None:
        if self._follow_task is not None:
            self._follow_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._follow_task

    async def _follow(self) -> None:
        while True:
            await asyncio.sleep(REFRESH_S)
            try:
                await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis away: keep the last snapshot, try again
                log.warning("reading %s failed (%s); keeping the last one", self.what, exc)
