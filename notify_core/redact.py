"""What may leave the process of a secret-bearing value: one place for every output.

A webhook URL's path and query often *are* the secret (Slack, Teams, signed endpoints):
events, timelines, API answers and log lines carry only `scheme://host[:port]`. A Redis
URL's password is masked wherever it is printed.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def url_origin(url: str) -> str:
    """`scheme://host[:port]` of `url` (no user, path, query or fragment)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "<invalid url>"
    if ":" in host:  # IPv6
        host = f"[{host}]"
    return f"{parts.scheme}://{host}" + (f":{port}" if port else "")


def mask_password(url: str) -> str:
    """`url` with its password (if any) replaced by `***`."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        user = parts.username or ""
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<invalid url>"
    netloc = f"{user}:***@{host}{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
