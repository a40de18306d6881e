"""What the pipeline tells about incidents (escalation listens; wired by the root)."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable


class IncidentListener(Protocol):
    async def on_alert(
        self, tenant: str, incident_id: str, site: str | None, severity: str, title: str
    ) -> None: ...

    async def on_action(
        self,
        tenant: str,
        incident_id: str,
        status: str,
        by: str,
        kind: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        """`status` after the action; `kind` its timeline entry (default: the status);
        `details` what it changed (note, comment, assignee, until)."""


@runtime_checkable
class BatchListener(Protocol):
    """A listener told about a batch at a time: it reads the state of the batch's alerted
    incidents in one call before it is told about them one by one, holds the timers it
    sets until the batch's state writes are sent, and drops what it read after."""

    async def read_ahead(self, keys: list[tuple[str, str]]) -> None: ...

    def hold_timers(self) -> None: ...

    async def release_timers(self) -> None: ...

    def forget(self) -> None: ...
