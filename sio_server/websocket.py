"""engine.io's aiohttp WebSocket wrapper with permessage-deflate made a setting.

engine.io builds `aiohttp.web.WebSocketResponse()` with aiohttp's default
`compress=True`; browsers always offer deflate, and it costs 2-3x CPU per message.
We swap in this wrapper through `eio._async['websocket']` (engine.io's own driver
table), which is why python-engineio is pinned below 5; tests/test_tuning.py fails
if that table or the wrapper's shape changes.
"""

from __future__ import annotations

from typing import Any

from aiohttp.web import WebSocketResponse
from engineio.async_drivers import aiohttp as eio_aiohttp


def websocket_class(compress: bool) -> type:
    class TunedWebSocket(eio_aiohttp.WebSocket):
        async def __call__(self, environ: dict[str, Any]) -> WebSocketResponse:
            request = environ["aiohttp.request"]
            self._sock = WebSocketResponse(
                max_msg_size=self.server.max_http_buffer_size, compress=compress
            )
            await self._sock.prepare(request)
            self.environ = environ
            await self.handler(self)
            return self._sock

    return TunedWebSocket


def install(eio_server: Any, compress: bool) -> None:
    """Use our WebSocket wrapper on this engine.io server only."""
    eio_server._async = {**eio_server._async, "websocket": websocket_class(compress)}
