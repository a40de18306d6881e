"""How the server's transports are tuned, in one typed object built from the settings
(`TransportOptions.from_settings`): what a test or a bench changes is one field, and the
server's constructor takes its collaborators, not a dozen numbers. Defaults are the
settings' defaults."""

from __future__ import annotations

from dataclasses import dataclass

from notify_core.settings import Settings


@dataclass(frozen=True, slots=True)
class TransportOptions:
    sockets: bool = True  # False in `pipeline` mode: HTTP only (health, metrics, the API)
    ws_compression: bool = False  # permessage-deflate (2-3x CPU)
    direct_writes: bool = True  # the fan-out writes idle WebSockets itself
    emit_coalesce_ms: float = 2.0  # socket writes gathered under load
    client_buffer_bytes: int = 4 * 1024 * 1024  # unsent bytes before a slow client is cut
    client_queue_packets: int = 10_000  # queued packets (polling) before it is cut
    ack_tracking_pairs: int = 200_000  # (alert, user) delivery confirmations held
    presence_lease_s: float = 30.0
    lean_polling: bool = True  # the waiting long-poll GET answered before aiohttp
    http_keepalive_s: float = 75.0

    @classmethod
    def from_settings(cls, s: Settings, sockets: bool = True) -> TransportOptions:
        return cls(
            sockets=sockets,
            ws_compression=s.ws_compression,
            direct_writes=s.direct_writes,
            emit_coalesce_ms=s.emit_coalesce_ms,
            client_buffer_bytes=s.client_buffer_bytes,
            client_queue_packets=s.client_queue_packets,
            ack_tracking_pairs=s.ack_tracking_pairs,
            presence_lease_s=s.presence_lease_s,
            lean_polling=s.lean_polling,
            http_keepalive_s=s.http_keepalive_s,
        )


DEFAULT_OPTIONS = TransportOptions()
