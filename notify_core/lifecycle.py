"""The one lifecycle: parts started in order and stopped in reverse, and the background task
a part runs.

A `Part` is a name with an async start and stop (aiohttp's `cleanup_ctx` in list form).
`Lifecycle.start` starts parts one after another; when one fails, those already started
are stopped in reverse and the error is raised, so nothing keeps running half-built.
`stop` takes them down in reverse, each within its own bound: a part that hangs is
logged and left behind, the rest still stop. The composition root owns one `Lifecycle`;
the HTTP server contributes its parts to it (`SocketServer.parts`).

`Background` is the task a part keeps running (a watch, a sweep, a worker): started once,
cancelled and awaited on stop, so every loop ends the same way.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Part:
    """One thing with a lifecycle; `stop` is bounded by `stop_timeout_s`."""

    name: str
    start: Callable[[], Awaitable[Any]]
    stop: Callable[[], Awaitable[Any]]
    stop_timeout_s: float = 10.0


async def nothing() -> None:
    """A start or stop with nothing to do."""


def plain(fn: Callable[[], Any]) -> Callable[[], Awaitable[None]]:
    """A plain function as a start or stop."""

    async def run() -> None:
        fn()

    return run


class Lifecycle:
    """Starts parts in order (rolling back on failure), stops what started in reverse."""

    def __init__(self) -> None:
        self._started: list[Part] = []

    @property
    def started(self) -> list[str]:
        """The names of the parts running now, in start order."""
        return [part.name for part in self._started]

    async def start(self, parts: Iterable[Part]) -> None:
        for part in parts:
            log.debug("starting %s", part.name)
            try:
                await part.start()
            except BaseException:
                log.error("failed to start %s; stopping what started", part.name)
                await self.stop()
                raise
            self._started.append(part)

    async def stop(self) -> None:
        while self._started:
            part = self._started.pop()
            try:
                await asyncio.wait_for(part.stop(), part.stop_timeout_s)
            except TimeoutError:
                log.warning("%s did not stop within %.0fs", part.name, part.stop_timeout_s)
            except Exception:
                log.exception("error while stopping %s", part.name)


class Background:
    """One named background task: `start` runs `run()`, `stop` cancels it and waits for it
    to end. `run` is expected to loop, log and survive its own errors, and let
    `CancelledError` through."""

    def __init__(self, name: str, run: Callable[[], Coroutine[Any, Any, None]]) -> None:
        self.name = name
        self._run = run
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def every(
        cls,
        name: str,
        interval_s: float,
        work: Callable[[], Awaitable[object]],
        *,
        wait_first: bool = False,
        failed: str = "failed; trying again next round",
    ) -> Background:
        """`work()` every `interval_s` (after it, never overlapping); an error is logged
        with `name` and `failed` and the next round goes on (Redis or the broker away is
        not a reason to stop watching). `wait_first`: the first round after one interval."""

        async def loop() -> None:
            if wait_first:
                await asyncio.sleep(interval_s)
            while True:
                try:
                    await work()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("%s %s", name, failed)
                await asyncio.sleep(interval_s)

        return cls(name, loop)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("%s ended with an error", self.name)
