"""Reload the operator config on file change (watchfiles) and on request (SIGHUP,
which the process owner - the CLI - routes here).

An invalid file is refused: the rules in force stay, the error is logged with file,
line, rule and field, and `notify_config_reloads_total{result="invalid"}` rises.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from watchfiles import awatch

from notify_core import metrics
from notify_core.rules import RulesHolder

log = logging.getLogger(__name__)


class ConfigReloader:
    def __init__(self, holder: RulesHolder, watch: bool = True) -> None:
        self.holder = holder
        self._watch = watch
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    def reload(self, why: str) -> bool:
        ok = self.holder.reload()
        if ok:
            metrics.CONFIG_RELOADS.labels("ok").inc()
            log.info("thresholds reloaded (%s): generation %d", why, self.holder.generation)
        else:
            metrics.CONFIG_RELOADS.labels("invalid").inc()
            log.error(
                "thresholds reload (%s) refused, previous rules stay in force:\n%s",
                why,
                self.holder.last_error,
            )
        return ok

    async def start(self) -> None:
        if self._watch and self.holder.path.parent.is_dir():
            self._task = asyncio.create_task(self._run(), name="config-watch")

    async def _run(self) -> None:
        target = self.holder.path.resolve()
        while not self._stop.is_set():
            try:
                async for changes in awatch(
                    target.parent, stop_event=self._stop, debounce=200, step=50
                ):
                    if any(path_matches(p, target) for _, p in changes):
                        self.reload("file changed")
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("config watcher failed; retrying in 5s")
                await asyncio.sleep(5)

    async def stop(self) -> None:
        self._stop.set()
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def path_matches(changed: str, target: object) -> bool:
    from pathlib import Path

    return Path(changed).resolve() == target
