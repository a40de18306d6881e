"""What the pipeline tells about incidents (escalation listens; wired by the root)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable


class IncidentListener(Protocol):
    async def on_alert(
        self, tenant: str, incident_id: str, site: str | None, severity: str, title: str
    ) -> None: ...

    async def on_action(self, tenant: str, incident_id: str, status: str, by: str) -> None: ...


@runtime_checkable
class ReadsAhead(Protocol):
    """A listener that can read the state of a batch's alerted incidents in one call
    before it is told about them one by one, and drop it after the batch."""

    async def read_ahead(self, keys: list[tuple[str, str]]) -> None: ...

    def forget(self) -> None: ...
