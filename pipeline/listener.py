"""What the pipeline tells about incidents (escalation listens; wired by the root)."""

from __future__ import annotations

from typing import Protocol


class IncidentListener(Protocol):
    async def on_alert(
        self, tenant: str, incident_id: str, site: str | None, severity: str, title: str
    ) -> None: ...

    async def on_action(self, tenant: str, incident_id: str, status: str, by: str) -> None: ...
