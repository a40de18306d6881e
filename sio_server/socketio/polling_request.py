"""A long-poll GET's head, read just far enough to know it is one (`parse_poll`), and the
few bits of its answer that do not change per request.

Anything unusual (another method, path or HTTP version, a body, an upgrade, percent-encoded
or repeated fields, control bytes, obsolete line folding) reads as "not a poll", so aiohttp
and engine.io see it and answer as they always have (`sio_server.socketio.polling`).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from email.utils import formatdate

# a longer head goes to aiohttp, which applies its limits (8190 bytes a line) and answers
MAX_HEAD_BYTES = 8190
# control bytes, or CR and LF other than as a line's end: aiohttp's parser refuses them,
# and an Origin echoed with a bare LF would split the answer
_FORBIDDEN = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]|\r(?!\n)|(?<!\r)\n")
_WANTED = frozenset((b"origin", b"host", b"connection", b"x-forwarded-proto"))
_REFUSED = frozenset((b"content-length", b"transfer-encoding", b"upgrade", b"expect"))


@dataclass(slots=True, frozen=True)
class PollRequest:
    """What a long-poll GET says that its answer depends on."""

    sid: str
    origin: str | None
    host: str | None
    scheme: str  # X-Forwarded-Proto, else http (as engine.io's aiohttp driver reads it)
    keep_alive: bool


def parse_poll(head: bytes, path: bytes = b"/socket.io/") -> PollRequest | None:
    """The long-poll a request head (up to, not including, the blank line) asks for, or
    None when it is anything else or anything unusual (aiohttp then answers it)."""
    if _FORBIDDEN.search(head):
        return None
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or parts[0] != b"GET" or parts[2] != b"HTTP/1.1":
        return None
    target, sep, query = parts[1].partition(b"?")
    if target != path or not sep or b"%" in query or b"+" in query or b"#" in query:
        return None
    sid = transport = None
    for pair in query.split(b"&"):
        key, _, value = pair.partition(b"=")
        if not value:  # parse_qs drops blank values
            continue
        if key == b"sid":
            sid = value if sid is None else sid
        elif key == b"transport":
            transport = value if transport is None else transport
        elif key == b"j":  # JSONP
            return None
    if not sid or transport not in (None, b"polling"):
        return None
    fields: dict[bytes, bytes] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or not name or name != name.strip() or line[:1] in (b" ", b"\t"):
            return None  # malformed, or obsolete line folding
        key = name.lower()
        if key in _REFUSED:
            return None
        if key in _WANTED:
            if key in fields:
                return None  # engine.io would join repeated values with a comma
            fields[key] = value.strip()
    try:
        tokens = {t.strip().lower() for t in fields.get(b"connection", b"").split(b",")}
        origin = fields.get(b"origin")
        host = fields.get(b"host")
        return PollRequest(
            sid=sid.decode("ascii"),
            origin=origin.decode("latin-1") if origin is not None else None,
            host=host.decode("latin-1") if host is not None else None,
            scheme=fields.get(b"x-forwarded-proto", b"http").decode("latin-1"),
            keep_alive=b"close" not in tokens and b"upgrade" not in tokens,
        )
    except UnicodeDecodeError:
        return None


class Clock:
    """The `Date` header, formatted once a second."""

    __slots__ = ("_at", "_value")

    def __init__(self) -> None:
        self._at = 0
        self._value = b""

    def date(self) -> bytes:
        now = int(time.time())
        if now != self._at:
            self._at, self._value = now, formatdate(now, usegmt=True).encode()
        return self._value


_POLL_PREFIX = b"GET /"


def could_be_poll(partial: bytes) -> bool:
    """A head still arriving: wait for the rest only if it may be a long-poll."""
    n = min(len(partial), len(_POLL_PREFIX))
    return partial[:n] == _POLL_PREFIX[:n]
