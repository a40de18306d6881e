"""Times as every event, record and answer writes them: UTC ISO 8601 with a `Z`."""

from __future__ import annotations

from datetime import UTC, datetime


def iso(ts: datetime, timespec: str = "auto") -> str:
    """`timespec` as `datetime.isoformat`: `seconds` or `milliseconds` for a fixed width."""
    return ts.astimezone(UTC).isoformat(timespec=timespec).replace("+00:00", "Z")


def iso_s(seconds: float) -> str:
    """From unix seconds."""
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def iso_ms(ms: int) -> str:
    """From unix milliseconds."""
    return iso_s(ms / 1000)
