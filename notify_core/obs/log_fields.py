"""The ids a log line is about, as fields: `log.warning(..., extra=about(tenant, incident))`.

With `NOTIFY_LOG_FORMAT=json` they become the line's `tenant_id`, `incident_id` and
`site_id` (towerco_notify/cli.py `JsonLogFormatter`), so a log pipeline can filter one
tenant's or one incident's trouble without parsing messages. Absent ids are left out.
"""

from __future__ import annotations


def about(
    tenant_id: str | None = None, incident_id: str | None = None, site_id: str | None = None
) -> dict[str, str]:
    fields = {"tenant_id": tenant_id, "incident_id": incident_id, "site_id": site_id}
    return {name: value for name, value in fields.items() if value is not None}
