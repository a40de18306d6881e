"""Event ids: a tenant-history position `<milliseconds>-<sequence>`, like a Redis stream id.

Ids are strictly increasing per tenant and compared numerically part by part, so
"1700000000000-10" comes after "1700000000000-9".
"""

from __future__ import annotations

import re
import time

# `<ms>-<seq>`, each part within a Redis stream id's 64 bits (19 digits always are)
ID_PATTERN = r"^(\d{1,19})-(\d{1,19})$"
_ID_RE = re.compile(ID_PATTERN.replace("$", r"\Z"))

ZERO = (0, 0)


class InvalidEventId(ValueError):
    """A client or caller gave something that is not `<ms>-<seq>`."""


def parse_id(value: object) -> tuple[int, int]:
    """Parse `<ms>-<seq>` into a comparable tuple; raise InvalidEventId otherwise."""
    if not isinstance(value, str):
        raise InvalidEventId(f"event id must be a string like '1700000000000-0', got {value!r}")
    match = _ID_RE.match(value)
    if match is None:
        raise InvalidEventId(f"event id must look like '1700000000000-0', got {value[:64]!r}")
    return int(match.group(1)), int(match.group(2))


def format_id(parts: tuple[int, int]) -> str:
    return f"{parts[0]}-{parts[1]}"


class IdMinter:
    """Mints strictly increasing ids for one tenant, as Redis XADD `*` does.

    The clock is passed in so that a clock step backwards still yields a larger id.
    """

    __slots__ = ("_last",)

    def __init__(self, last: tuple[int, int] = ZERO) -> None:
        self._last = last

    def next(self, now_ms: int | None = None) -> tuple[int, int]:
        ms = int(time.time() * 1000) if now_ms is None else now_ms
        last_ms, last_seq = self._last
        self._last = (ms, 0) if ms > last_ms else (last_ms, last_seq + 1)
        return self._last
