"""aiohttp's TCP site with a say in what each accepted connection first talks to.

`aiohttp.web.TCPSite.start` hands the runner's low-level `web.Server` (a protocol
factory, the documented low-level server API) to `loop.create_server`. This site does
the same with `wrap(server)` instead, so `sio_server.socketio.polling` can answer long-polls and
pass every other connection to aiohttp's own protocol (`transport.set_protocol`).
Everything else is TCPSite's: the runner registers it, `runner.addresses` reads it,
`runner.cleanup()` stops it, and aiohttp still drains the connections it was given.

It sets TCPSite's private fields (`_server`, `_bound_port`) and reads its constructor's
(`_host`, `_port`, `_backlog`, `_reuse_address`, `_reuse_port`), which is why aiohttp is
pinned below 4 and `tests/test_polling.py` checks this site end to end.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from aiohttp import web


class WrappedTCPSite(web.TCPSite):
    def __init__(
        self,
        runner: web.BaseRunner,
        host: str | None,
        port: int,
        wrap: Callable[[Callable[[], Any]], Callable[[], Any]],
        backlog: int = 128,
        reuse_address: bool | None = None,
    ) -> None:
        super().__init__(runner, host, port, backlog=backlog, reuse_address=reuse_address)
        self._wrap = wrap

    async def start(self) -> None:
        await web.BaseSite.start(self)  # registers the site with its runner
        server = self._runner.server
        assert server is not None
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._wrap(server),
            self._host,
            self._port,
            backlog=self._backlog,
            reuse_address=self._reuse_address,
            reuse_port=self._reuse_port,
        )
        sockets = self._server.sockets
        self._bound_port = sockets[0].getsockname()[1] if sockets else self._port
