"""What a page says: its fields, and the one small template per receiver type.

Templates are `string.Template` (`$title`, `${site}`...): no code runs from a config
file. A policy may override any of them (`templates:` in `escalation.yaml`); unknown
placeholders are refused when the file is loaded.
"""

from __future__ import annotations

from string import Template
from typing import Any

FIELDS = (
    "tenant",
    "incident_id",
    "title",
    "site",
    "severity",
    "level",
    "cycle",
    "policy",
    "link",
    "ack_link",
    "resolve_link",
    "count",
    "incidents",
)

DEFAULTS: dict[str, str] = {
    "email_subject": "[$severity] $title at $site (level $level)",
    "email": (
        "$title\n\n"
        "Site:      $site\n"
        "Severity:  $severity\n"
        "Level:     $level (policy $policy, cycle $cycle)\n"
        "Incidents: $incidents\n\n"
        "Acknowledge: $ack_link\n"
        "Resolve:     $resolve_link\n"
        "Open it on the dashboard: $link\n"
    ),
    "slack": (
        "*[$severity] $title* at site $site: escalation level $level. <$link|Open> · "
        "<$ack_link|Acknowledge> · <$resolve_link|Resolve>"
    ),
    "teams": "[$severity] $title at site $site: escalation level $level",
    "webpush": "$title at $site (level $level)",
}
TEMPLATE_KEYS = tuple(DEFAULTS)


def template_problem(key: str, text: str) -> str | None:
    """Why a template override cannot be used, or None."""
    if key not in DEFAULTS:
        return f"unknown template; expected one of {', '.join(TEMPLATE_KEYS)}"
    try:
        names = Template(text).get_identifiers()
    except ValueError as exc:
        return f"invalid template: {exc}"
    if not Template(text).is_valid():
        return "invalid template: a lone $ (write $$ for a dollar sign)"
    unknown = sorted(set(names) - set(FIELDS))
    if unknown:
        return f"unknown placeholder {unknown[0]!r}; known: {', '.join(FIELDS)}"
    return None


def page_fields(
    event: dict[str, Any],
    severity: str,
    link: str,
    actions: dict[str, str] | None = None,
) -> dict[str, str]:
    """The placeholders of a page, from its `escalation` event; `actions`: the action
    links of this recipient (`acknowledge`, `resolve`), else the dashboard link."""
    actions = actions or {}
    incidents = event.get("incidents") or [event["incident_id"]]
    return {
        "tenant": event["tenant_id"],
        "incident_id": event["incident_id"],
        "title": (event.get("incident") or {}).get("title") or event["incident_id"],
        "site": event.get("site_id") or "-",
        "severity": severity or "critical",
        "level": str(event["level"]),
        "cycle": str(event.get("cycle", 1)),
        "policy": event.get("policy", ""),
        "link": link,
        "ack_link": actions.get("acknowledge", link),
        "resolve_link": actions.get("resolve", link),
        "count": str(len(incidents)),
        "incidents": ", ".join(incidents),
    }


def render(key: str, fields: dict[str, str], overrides: dict[str, str] | None = None) -> str:
    text = (overrides or {}).get(key) or DEFAULTS[key]
    return Template(text).safe_substitute(fields)
