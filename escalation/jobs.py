"""Entry points the persistent job store refers to by name (`escalation.jobs:fire`).

APScheduler stores jobs as `module:function` plus picklable arguments, so the job
cannot carry the engine; the composition root installs it here at start.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

_engines: list[Any] = []  # the newest runtime's engine is the one jobs run on


def install(engine: Any) -> None:
    _engines.append(engine)


def uninstall(engine: Any) -> None:
    """On stop: a runtime started and stopped later in the same process (tests, embedded
    use) hands the jobs back to the one still running."""
    if engine in _engines:
        _engines.remove(engine)


async def fire(tenant: str, incident_id: str) -> None:
    _engine = _engines[-1] if _engines else None
    if _engine is None:
        log.error("escalation job for %s/%s ran with no engine installed", tenant, incident_id)
        return
    await _engine.tick(tenant, incident_id)
