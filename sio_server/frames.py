"""WebSocket framing as the server writes it (RFC 6455, server to client: unmasked,
uncompressed), shared by the Socket.IO fan-out's direct writes and the plain WebSocket."""

from __future__ import annotations

import struct


def text_frame(payload: bytes) -> bytes:
    """A final, unmasked WebSocket text frame carrying `payload` (server to client)."""
    n = len(payload)
    if n < 126:
        header = struct.pack("!BB", 0x81, n)
    elif n < 65536:
        header = struct.pack("!BBH", 0x81, 126, n)
    else:
        header = struct.pack("!BBQ", 0x81, 127, n)
    return header + payload
