"""Reload the operator config on file change (watchfiles) and on request (SIGHUP, which
the process owner - the CLI - routes here): every file of `config_files.FILES` together.

Everything that can fail is built before anything is swapped (Alertmanager's reloader):
an invalid file is refused, every rule, policy and window in force stays, the error is
logged with file, line and field, and `notify_config_reloads_total{result="invalid"}` rises.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

from watchfiles import awatch

from notify_core.config_yaml import ConfigInvalid
from notify_core.lifecycle import Background
from notify_core.obs import metrics
from towerco_notify.config_files import WATCHED, ConfigSet, load_config

log = logging.getLogger(__name__)


class ConfigReloader:
    def __init__(
        self,
        config_dir: Path,
        swap: Callable[[ConfigSet], None],
        refused: Callable[[str], None] | None = None,
        watch: bool = True,
        tell: Callable[[str, str | None], None] | None = None,
    ) -> None:
        """`swap(config)`: put a validated set in force; `refused(error)`: a reload was
        refused (what is in force stays); `tell(result, reason)`: each reload for the
        audit trail (`config_reload`)."""
        self._tell = tell
        self.config_dir = config_dir
        self._swap = swap
        self._refused = refused
        self._watch = watch
        self._background = Background("config-watch", self._run)
        self._stop = asyncio.Event()

    def reload(self, why: str) -> bool:
        try:
            config = load_config(self.config_dir)
        except ConfigInvalid as exc:
            if self._refused is not None:
                self._refused(str(exc))
            metrics.CONFIG_RELOADS.labels("invalid").inc()
            log.error("config reload (%s) refused, what is in force stays:\n%s", why, exc)
            if self._tell is not None:
                self._tell("refused", str(exc.problems[0]) if exc.problems else why)
            return False
        self._swap(config)
        metrics.CONFIG_RELOADS.labels("ok").inc()
        if self._tell is not None:
            self._tell("ok", None)
        log.info(
            "config reloaded (%s): %d policies, %d windows, %d integrations",
            why,
            len(config.policies),
            len(config.suppression.windows),
            len(config.integrations),
        )
        return True

    async def start(self) -> None:
        if self._watch and self.config_dir.is_dir():
            await self._background.start()

    async def _run(self) -> None:
        targets = {(self.config_dir / name).resolve() for name in WATCHED}
        while not self._stop.is_set():
            try:
                async for changes in awatch(
                    self.config_dir.resolve(), stop_event=self._stop, debounce=200, step=50
                ):
                    if any(path_matches(p, targets) for _, p in changes):
                        self.reload("file changed")
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("config watcher failed; retrying in 5s")
                await asyncio.sleep(5)

    async def stop(self) -> None:
        self._stop.set()
        await self._background.stop()


def path_matches(changed: str, targets: set[Path]) -> bool:
    """Is `changed` (a path watchfiles reported) one of the config files?"""
    return Path(changed).resolve() in targets
