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


def query_instant(value: str | None, field: str, default: datetime) -> datetime:
    """An instant given in a query (`?at=`, `?from=`): ISO-8601 with an offset or `Z`;
    `default` when absent. ValueError names the field and the value."""
    if value is None or value == "":
        return default
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{field}: not an ISO-8601 instant (got {value[:64]!r})") from None
    if parsed.tzinfo is None:
        raise ValueError(f"{field}: give an offset or Z (got {value[:64]!r})")
    return parsed.astimezone(UTC)
