"""Entry points the persistent job store refers to by name (`escalation.jobs:fire`).

APScheduler stores jobs as `module:function` plus picklable arguments, so the job
cannot carry the engine; the composition root installs it here at start.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

_engine: Any = None


def install(engine: Any) -> None:
    global _engine
    _engine = engine


async def fire(tenant: str, incident_id: str) -> None:
    if _engine is None:
        log.error("escalation job for %s/%s ran with no engine installed", tenant, incident_id)
        return
    await _engine.tick(tenant, incident_id)
