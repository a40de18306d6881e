"""engine.io's aiohttp WebSocket wrapper: compression made a setting, and connections
registered for the direct emit path (`sio_server.socketio.fanout`); and its per-connection packet
queue, a lighter one (`sio_server.socketio.socket_queue`).

engine.io builds `aiohttp.web.WebSocketResponse()` with aiohttp's default
`compress=True`; browsers always offer deflate, and it costs 2-3x CPU per message.
We swap in this wrapper through `eio._async['websocket']` (engine.io's own driver
table), which is why python-engineio is pinned below 5; tests/test_tuning.py fails
if that table or the wrapper's shape changes.

While engine.io's handler runs, an uncompressed connection is listed in `direct`
(engine.io sid -> transport), so the fan-out can write pre-built frames to it.
"""

from __future__ import annotations

from typing import Any

from aiohttp.web import WebSocketResponse
from engineio.async_drivers import aiohttp as eio_aiohttp

from sio_server.socketio.fanout import DirectSocket
from sio_server.socketio.socket_queue import SocketQueue


def websocket_class(compress: bool, direct: dict[str, DirectSocket] | None = None) -> type:
    class TunedWebSocket(eio_aiohttp.WebSocket):
        async def __call__(self, environ: dict[str, Any]) -> WebSocketResponse:
            request = environ["aiohttp.request"]
            self._sock = WebSocketResponse(
                max_msg_size=self.server.max_http_buffer_size, compress=compress
            )
            await self._sock.prepare(request)
            self.environ = environ
            socket = getattr(self.handler, "__self__", None)  # engine.io's AsyncSocket
            sid: str = getattr(socket, "sid", "")
            entry = None
            if direct is not None and sid and request.transport and not self._sock.compress:
                entry = direct[sid] = DirectSocket(socket, request.transport)
            try:
                await self.handler(self)
            finally:
                if entry is not None and direct is not None and direct.get(sid) is entry:
                    del direct[sid]
            return self._sock

    return TunedWebSocket


def install(eio_server: Any, compress: bool, direct: dict[str, DirectSocket] | None = None) -> None:
    """Use our WebSocket wrapper and packet queue on this engine.io server only."""
    eio_server._async = {**eio_server._async, "websocket": websocket_class(compress, direct)}
    # engine.io's AsyncServer makes each connection's queue with `create_queue()`
    eio_server.create_queue = SocketQueue
