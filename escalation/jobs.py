"""Entry points the persistent job store refers to by name (`escalation.jobs:fire`).

APScheduler stores jobs as `module:function` plus picklable arguments, so a job cannot
carry its engine. It carries its deployment instead (the scheduler's key prefix, one per
job store), and `fire` looks the engine up by it: the composition root `install`s its
engine under its prefix at start and `uninstall`s it at stop, so two runtimes in one
process (tests, embedded use) never run each other's jobs. A job stored before the
prefix was an argument runs on the most recently installed engine.
"""

from __future__ import annotations

import logging
from typing import Any

from notify_core.obs.log_fields import about

log = logging.getLogger(__name__)

_engines: dict[str, Any] = {}  # deployment (key prefix) -> its engine, in install order


def install(engine: Any, deployment: str = "") -> None:
    _engines.pop(deployment, None)
    _engines[deployment] = engine


def uninstall(engine: Any, deployment: str = "") -> None:
    if _engines.get(deployment) is engine:
        del _engines[deployment]


def engine_for(deployment: str | None) -> Any:
    """The engine a job of `deployment` runs on (None: a job from before, the newest)."""
    if deployment is not None:
        return _engines.get(deployment)
    return next(reversed(_engines.values()), None)


async def fire(tenant: str, incident_id: str, deployment: str | None = None) -> None:
    engine = engine_for(deployment)
    if engine is None:
        log.error(
            "escalation job for %s/%s (deployment %r) ran with no engine installed",
            tenant,
            incident_id,
            deployment,
            extra=about(tenant, incident_id),
        )
        return
    await engine.tick(tenant, incident_id)
