"""Test helpers: drive real Node socket.io-client processes and a real Kafka producer."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import shutil
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

NODE_DIR = Path(__file__).parent / "node"
CLIENT_JS = NODE_DIR / "client.mjs"
WS_CLIENT_JS = NODE_DIR / "ws_client.mjs"
TEST_SECRET = "test-secret-for-towerco-notify-0123456789abcdef"

Line = dict[str, Any]
# events that are not stored in the history (no id of it): the connection's own hello,
# and who is online / looking, sent when that changes
NOT_STORED = frozenset({"connection_established", "presence", "incident_viewers"})


async def serve_app(app: Any) -> tuple[Any, int]:
    """Serve an aiohttp `app` on a free loopback port: (its runner, to clean up; the port)."""
    from aiohttp import web

    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]


def new_tenant() -> str:
    return "t" + uuid.uuid4().hex[:10]


def node_bin() -> str:
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("node is required for the client-side tests")
    return node


class NodeProcess:
    """A Node script driven over stdin, reporting JSON lines on stdout."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[Line] = []
        self._cond = asyncio.Condition()
        self._req = itertools.count(1)
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def spawn(cls, script: Path, cfg: dict[str, Any]) -> Any:
        proc = await asyncio.create_subprocess_exec(
            node_bin(),
            str(script),
            json.dumps(cfg),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=sys.stderr,
            cwd=str(NODE_DIR),
        )
        return cls(proc)

    async def command(self, cmd: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(cmd) + "\n").encode())
        await self.proc.stdin.drain()

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        async for raw in self.proc.stdout:
            try:
                line = json.loads(raw)
            except ValueError:
                continue
            async with self._cond:
                self.lines.append(line)
                self._cond.notify_all()

    async def wait_for(
        self, pred: Callable[[Line], bool], timeout: float = 20.0, since: int = 0
    ) -> Line:
        """The first line (from the `since`-th on: `len(client.lines)` taken earlier skips
        what came before) that `pred` accepts."""

        async def _wait() -> Line:
            async with self._cond:
                while True:
                    for line in self.lines[since:]:
                        if pred(line):
                            return line
                    await self._cond.wait()

        return await asyncio.wait_for(_wait(), timeout)

    async def wait_count(
        self, pred: Callable[[Line], bool], n: int, timeout: float = 20.0
    ) -> list[Line]:
        async def _wait() -> list[Line]:
            async with self._cond:
                while True:
                    got = [line for line in self.lines if pred(line)]
                    if len(got) >= n:
                        return got
                    await self._cond.wait()

        return await asyncio.wait_for(_wait(), timeout)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.command({"close": True})
        try:
            await asyncio.wait_for(self.proc.wait(), 5)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


class NodeClient(NodeProcess):
    """One Node process holding `count` official socket.io-client connections."""

    @classmethod
    async def start(
        cls,
        url: str,
        token: str | None = None,
        transports: list[str] | None = None,
        auth: dict[str, Any] | None = None,
        query: dict[str, str] | None = None,
        count: int = 1,
        headers: dict[str, str] | None = None,
        tokens: list[str] | None = None,
    ) -> NodeClient:
        """`tokens`: one per connection (`count` of them), instead of `token` for all."""
        cfg: dict[str, Any] = {"url": url, "count": count, "headers": headers or {}}
        if tokens is not None:  # a file: a thousand tokens do not fit in argv
            import tempfile

            with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
                json.dump(tokens, fh)
            cfg["tokens_file"] = fh.name
        if token is not None:
            cfg["token"] = token
        if transports is not None:
            cfg["transports"] = transports
        if auth is not None:
            cfg["auth"] = auth
        if query is not None:
            cfg["query"] = query
        client: NodeClient = await cls.spawn(CLIENT_JS, cfg)
        return client

    async def connected(self, client: int = 0, timeout: float = 20.0) -> Line:
        line = await self.wait_for(
            lambda m: m.get("client") == client and m["kind"] in ("connect", "connect_error"),
            timeout,
        )
        if line["kind"] != "connect":
            raise AssertionError(f"connection failed: {line}")
        await self.wait_for(
            lambda m: (
                m.get("client") == client
                and m["kind"] == "event"
                and m["name"] == "connection_established"
            ),
            timeout,
        )
        return line

    async def emit(self, name: str, data: Any = None, client: int = 0, **kw: Any) -> Any:
        req = next(self._req)
        cmd: dict[str, Any] = {"req": req, "emit": name, "client": client, **kw}
        if data is not None:
            cmd["data"] = data
        await self.command(cmd)
        line = await self.wait_for(lambda m: m["kind"] == "ack" and m.get("req") == req)
        assert line["error"] is None, f"no ack for {name}: {line['error']}"
        return line["data"]

    def events(self, name: str | None = None, client: int | None = None) -> list[Any]:
        return [
            line["data"]
            for line in self.lines
            if line["kind"] == "event"
            and (name is None or line["name"] == name)
            and (client is None or line.get("client") == client)
        ]


class WsClient(NodeProcess):
    """One plain WebSocket (Node's `ws`): `frames()` are the JSON objects received."""

    @classmethod
    async def start(cls, url: str, headers: dict[str, str] | None = None) -> WsClient:
        client: WsClient = await cls.spawn(WS_CLIENT_JS, {"url": url, "headers": headers or {}})
        return client

    async def send(self, message: Any) -> None:
        text = message if isinstance(message, str) else json.dumps(message)
        await self.command({"send": text})

    async def frame(self, pred: Callable[[Any], bool], timeout: float = 20.0) -> Any:
        line = await self.wait_for(lambda m: m["kind"] == "frame" and pred(m["data"]), timeout)
        return line["data"]

    def frames(self, kind: str | None = None) -> list[Any]:
        return [
            line["data"]
            for line in self.lines
            if line["kind"] == "frame"
            and (kind is None or (line["data"] or {}).get("type") == kind)
        ]

    async def ask(self, message: dict[str, Any], answer: str, timeout: float = 20.0) -> Any:
        """Send a client event and wait for the frame of type `answer` after it."""
        seen = len(self.frames(answer))
        await self.send(message)
        got = await self.wait_count(
            lambda m: m["kind"] == "frame" and (m["data"] or {}).get("type") == answer,
            seen + 1,
            timeout,
        )
        return got[-1]["data"]


def envelope(
    tenant: str, payload: dict[str, Any], site: str | None = None, ts: str = "2026-11-25T10:00:00Z"
) -> dict[str, Any]:
    env: dict[str, Any] = {"tenant_id": tenant, "timestamp": ts, "payload": payload}
    if site is not None:
        env["site_id"] = site
    return env


def alert(
    tenant: str,
    incident_id: str,
    severity: str = "critical",
    site: str | None = None,
    title: str = "Mains power lost",
) -> dict[str, Any]:
    return envelope(
        tenant,
        {
            "incident_id": incident_id,
            "title": title,
            "description": "on battery",
            "severity": severity,
        },
        site,
    )


def python_bin() -> str:
    return sys.executable


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOTIFY_")}
    env.update(extra)
    return env


async def history_of(base_url: str, token: str, limit: int = 1000) -> list[dict[str, Any]]:
    """`GET /api/v1/notifications` as `token` sees it: the stored events, oldest first."""
    import aiohttp

    async with (
        aiohttp.ClientSession() as http,
        http.get(
            f"{base_url}/api/v1/notifications",
            params={"limit": str(limit)},
            headers={"Authorization": "Bearer " + token},
        ) as resp,
    ):
        body = await resp.json()
    return list(body["notifications"])
