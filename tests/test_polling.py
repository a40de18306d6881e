"""The lean long-polling path (`sio_server.socketio.polling`): official clients get everything in
order with it on and off, and the requests it takes are answered as engine.io would,
while anything unusual still reaches aiohttp and engine.io (attacks included)."""

from __future__ import annotations

import asyncio
import contextlib
import urllib.parse
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import REGISTRY

from notify_core.wire.rooms import rooms_for
from sio_server.admission.auth import mint_token
from sio_server.app import SocketServer
from sio_server.socketio.polling_request import parse_poll
from tests.helpers import TEST_SECRET, NodeClient, new_tenant
from tests.test_fanout import alert_event, ids_of, serve


def lean_count(path: str = "lean") -> float:
    return REGISTRY.get_sample_value("notify_polling_requests_total", {"path": path}) or 0.0


async def close_all(things: list[Any]) -> None:
    for thing in reversed(things):
        with contextlib.suppress(Exception):
            if isinstance(thing, NodeClient):
                await thing.close()
            elif isinstance(thing, asyncio.StreamWriter):
                thing.close()
            else:
                await thing.stop()


@pytest.fixture
async def owned() -> AsyncIterator[list[Any]]:
    things: list[Any] = []
    yield things
    await close_all(things)


async def polling_session(owned: list[Any], **options: Any) -> tuple[SocketServer, str, str]:
    """A server (owned) and one engine.io session of a new tenant on it: (server, tenant,
    sid)."""
    server = await serve(**options)
    owned.append(server)
    tenant = new_tenant()
    token = mint_token(TEST_SECRET, tenant, "u1", ["operator"])
    origin = options.get("origins") or []
    headers = {"Origin": origin[0]} if origin else None
    return server, tenant, await handshake(server.port, token, headers=headers)


@pytest.mark.parametrize("lean", [True, False])
async def test_polling_clients_get_every_event_in_order_with_the_lean_path_on_and_off(lean, owned):
    server = await serve(lean_polling=lean)
    owned.append(server)
    tenant = new_tenant()
    token = mint_token(TEST_SECRET, tenant, "u1", ["operator"])
    client = await NodeClient.start(
        f"http://127.0.0.1:{server.port}", token, transports=["polling"], count=3
    )
    owned.append(client)
    for i in range(3):
        await client.connected(i)
    before = lean_count()
    total = 150
    for n in range(total):
        await emit_one(server, tenant, n)
        if n % 10 == 0:
            await asyncio.sleep(0.01)  # some polls carry one event, some many
    last = alert_event(tenant, total - 1)["id"]
    for i in range(3):
        await client.wait_for(
            lambda m, i=i: (
                m.get("client") == i and m["kind"] == "event" and m["data"].get("id") == last
            )
        )
        assert ids_of(client, i) == [alert_event(tenant, n)["id"] for n in range(total)]
    if lean:
        assert lean_count() - before >= 3, "the polls should have been answered on the lean path"
    else:
        assert lean_count() == before


# raw HTTP below: what a browser, a proxy or an attacker may send


async def handshake(port: int, token: str, headers: dict[str, str] | None = None) -> str:
    """engine.io OPEN and socket.io CONNECT over polling; returns the engine.io sid, with
    the CONNECT answer and the welcome event already taken."""
    base = f"http://127.0.0.1:{port}/socket.io/?EIO=4&transport=polling"
    async with aiohttp.ClientSession(headers=headers) as http:
        async with http.get(base) as resp:
            body = await resp.text()
        assert body.startswith("0"), body
        sid = orjson.loads(body[1:])["sid"]
        async with http.post(
            f"{base}&sid={sid}", data="40" + orjson.dumps({"token": token}).decode()
        ) as resp:
            assert resp.status == 200
        got = ""
        while "connection_established" not in got:
            async with http.get(f"{base}&sid={sid}") as resp:
                got += await resp.text()
    return str(sid)


def poll_request(sid: str, *, close: bool = False, extra: str = "") -> bytes:
    return (
        f"GET /socket.io/?EIO=4&transport=polling&t=x1&sid={sid} HTTP/1.1\r\n"
        f"Host: 127.0.0.1\r\nAccept: */*\r\n{extra}"
        + ("Connection: close\r\n" if close else "")
        + "\r\n"
    ).encode()


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    body = await asyncio.wait_for(reader.readexactly(int(headers.get("content-length", "0"))), 10)
    return status, headers, body


async def open_raw(
    port: int, owned: list[Any]
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    owned.append(writer)
    return reader, writer


async def emit_one(server: SocketServer, tenant: str, n: int) -> str:
    event = alert_event(tenant, n)
    await server.emit(event, rooms_for(event))
    return str(event["id"])


async def test_keep_alive_polls_share_one_connection_and_wait_for_the_next_event(owned):
    server, tenant, sid = await polling_session(owned)
    reader, writer = await open_raw(server.port, owned)
    before = lean_count()
    for n in range(3):
        writer.write(poll_request(sid))
        await asyncio.sleep(0.05)  # the poll waits: nothing is queued yet
        event_id = await emit_one(server, tenant, n)
        status, headers, body = await read_response(reader)
        assert status == 200 and headers["content-type"] == "text/plain; charset=UTF-8"
        assert "connection" not in headers  # kept alive
        assert body.startswith(b"42[") and event_id.encode() in body
    assert lean_count() - before == 3


async def test_a_poll_whose_connection_drops_leaves_its_event_for_the_next_poll(owned):
    """engine.io over aiohttp would hand the event to the dead request; here it waits."""
    server, tenant, sid = await polling_session(owned)
    _, writer = await open_raw(server.port, owned)
    writer.write(poll_request(sid))
    await asyncio.sleep(0.1)
    writer.close()  # the browser tab's request is gone while it waits
    await asyncio.sleep(0.1)
    event_id = await emit_one(server, tenant, 1)
    reader, writer = await open_raw(server.port, owned)
    writer.write(poll_request(sid, close=True))
    status, headers, body = await read_response(reader)
    assert status == 200 and headers["connection"] == "close"
    assert event_id.encode() in body


async def test_an_unknown_session_and_a_refused_origin_still_get_engineio_answers(owned):
    server, tenant, sid = await polling_session(owned, origins=["https://noc.example"])
    handed = lean_count("aiohttp")
    refused = REGISTRY.get_sample_value("notify_origin_refused_total", {"transport": "socketio"})

    # attack: a made-up session id, and a page of another origin riding a real one
    reader, writer = await open_raw(server.port, owned)
    writer.write(poll_request("not-a-session", close=True))
    status, _, body = await read_response(reader)
    assert status == 400 and b"Invalid session" in body
    reader, writer = await open_raw(server.port, owned)
    writer.write(poll_request(sid, close=True, extra="Origin: https://evil.example\r\n"))
    status, headers, _ = await read_response(reader)
    assert status == 400 and "access-control-allow-origin" not in headers
    assert lean_count("aiohttp") - handed == 2
    after = REGISTRY.get_sample_value("notify_origin_refused_total", {"transport": "socketio"})
    assert (after or 0) - (refused or 0) == 1

    # the listed origin, same session: answered on the lean path, with its CORS headers
    reader, writer = await open_raw(server.port, owned)
    writer.write(poll_request(sid, close=True, extra="Origin: https://noc.example\r\n"))
    await asyncio.sleep(0.05)
    event_id = await emit_one(server, tenant, 2)
    status, headers, body = await read_response(reader)
    assert status == 200 and event_id.encode() in body
    assert headers["access-control-allow-origin"] == "https://noc.example"
    assert headers["access-control-allow-credentials"] == "true"


async def test_malformed_split_and_oversized_requests(owned):
    server, tenant, sid = await polling_session(owned)

    # a header line without a colon, and a head larger than any poll: aiohttp refuses them
    reader, writer = await open_raw(server.port, owned)
    writer.write(poll_request(sid, extra="this is not a header\r\n"))
    status, _, _ = await read_response(reader)
    assert status == 400
    reader, writer = await open_raw(server.port, owned)
    writer.write(poll_request(sid, extra=f"X-Pad: {'a' * 20_000}\r\n"))
    status, _, _ = await read_response(reader)
    assert status in (400, 431)

    # attack: an Origin with a bare LF, allowed by a Host carrying the same, would be
    # echoed into the answer's headers; it goes to aiohttp, which refuses it
    reader, writer = await open_raw(server.port, owned)
    writer.write(
        f"GET /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\n"
        "Host: 127.0.0.1\nSet-Cookie: owned=1\r\n"
        "Origin: http://127.0.0.1\nSet-Cookie: owned=1\r\nConnection: close\r\n\r\n".encode()
    )
    status, headers, _ = await read_response(reader)
    assert status == 400 and "set-cookie" not in headers

    # a body on a GET (request smuggling's raw material) is not taken on the lean path
    handed = lean_count("aiohttp")
    reader, writer = await open_raw(server.port, owned)
    writer.write(poll_request(sid, close=True, extra="Content-Length: 0\r\n"))
    await asyncio.sleep(0.05)
    await emit_one(server, tenant, 3)
    status, _, body = await read_response(reader)
    assert status == 200 and b"42[" in body
    assert lean_count("aiohttp") - handed == 1

    # the same poll one byte at a time is still a poll, answered on the lean path
    before = lean_count()
    reader, writer = await open_raw(server.port, owned)
    for byte in poll_request(sid, close=True):
        writer.write(bytes([byte]))
        await writer.drain()
    await asyncio.sleep(0.05)
    event_id = await emit_one(server, tenant, 4)
    status, _, body = await read_response(reader)
    assert status == 200 and event_id.encode() in body
    assert lean_count() - before == 1


async def test_an_idle_keep_alive_connection_is_closed(owned):
    server, tenant, sid = await polling_session(owned, http_keepalive_s=1.0)
    idle_reader, _ = await open_raw(server.port, owned)  # connects and never sends
    reader, writer = await open_raw(server.port, owned)
    writer.write(poll_request(sid))
    await asyncio.sleep(0.05)
    await emit_one(server, tenant, 1)
    status, _, _ = await read_response(reader)
    assert status == 200  # answered, then idle
    assert await asyncio.wait_for(reader.read(), 5) == b""  # closed by the server
    assert await asyncio.wait_for(idle_reader.read(), 5) == b""


async def test_the_site_reports_its_port_and_stops_listening(owned):
    server = await serve()
    port = server.port
    assert port
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    status, _, _ = await read_response(reader)
    assert status == 200  # handed to aiohttp
    writer.close()
    await server.stop()
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)


_SID = st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1
)


@given(sid=_SID, t=_SID, order=st.permutations(["EIO=4", "transport=polling", "sid", "t"]))
def test_parse_poll_reads_the_session_as_parse_qs_does(sid, t, order):
    values = {"sid": f"sid={sid}", "t": f"t={t}"}
    query = "&".join(values.get(k, k) for k in order)
    head = f"GET /socket.io/?{query} HTTP/1.1\r\nHost: h\r\nOrigin: https://a.example".encode()
    request = parse_poll(head)
    assert request is not None
    assert request.sid == urllib.parse.parse_qs(query)["sid"][0]
    assert request.origin == "https://a.example" and request.host == "h"
    assert request.keep_alive


@given(st.binary(max_size=400))
def test_parse_poll_takes_nothing_it_is_not_sure_of(junk):
    request = parse_poll(junk)
    if request is not None:  # only a GET of the engine.io path, with a session, on 1.1
        assert junk.startswith(b"GET /socket.io/?") and b" HTTP/1.1" in junk
        assert request.sid


@pytest.mark.parametrize(
    "head",
    [
        b"POST /socket.io/?EIO=4&transport=polling&sid=abc HTTP/1.1\r\nHost: h",
        b"GET /socket.io/?EIO=4&transport=polling&sid=abc HTTP/1.0\r\nHost: h",
        b"GET /socket.io/?EIO=4&transport=websocket&sid=abc HTTP/1.1\r\nHost: h",
        b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: h",
        b"GET /socket.io/?EIO=4&transport=polling&sid=abc&j=1 HTTP/1.1\r\nHost: h",
        b"GET /socket.io/?EIO=4&transport=polling&sid=a%62c HTTP/1.1\r\nHost: h",
        b"GET /other/?sid=abc HTTP/1.1\r\nHost: h",
        b"GET /socket.io/?sid=abc HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade",
        b"GET /socket.io/?sid=abc HTTP/1.1\r\nTransfer-Encoding: chunked",
        b"GET /socket.io/?sid=abc HTTP/1.1\r\nOrigin: a\r\nOrigin: b",
        b"GET /socket.io/?sid=abc HTTP/1.1\r\nHost : h",
        b"GET /socket.io/?sid=abc HTTP/1.1\r\nX-A: 1\r\n folded",
        b"GET /socket.io/?sid=abc HTTP/1.1\r\nOrigin: http://h\nSet-Cookie: a=b\r\nHost: h",
        b"GET /socket.io/?sid=abc HTTP/1.1\r\nHost: h\rX: 1",
        b"GET /socket.io/?sid=abc HTTP/1.1\r\nHost: h\x00",
    ],
)
def test_parse_poll_hands_unusual_requests_to_aiohttp(head):
    assert parse_poll(head) is None


def test_parse_poll_reads_connection_close():
    head = b"GET /socket.io/?sid=abc HTTP/1.1\r\nConnection: close"
    request = parse_poll(head)
    assert request is not None and not request.keep_alive and request.scheme == "http"


async def _poll_then_hand_over(owned: list[Any]) -> tuple[bytes, int]:
    server, tenant, sid = await polling_session(owned)
    reader, writer = await open_raw(server.port, owned)
    writer.write(poll_request(sid))
    await asyncio.sleep(0.05)
    await emit_one(server, tenant, 1)
    _, _, body = await read_response(reader)
    # the same connection, now for aiohttp: the transport changes protocol mid-stream
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    status, _, _ = await read_response(reader)
    return body, status


def test_the_hand_over_works_on_uvloop_the_daemons_loop():
    """The daemon runs on uvloop (its transports are not asyncio's classes)."""
    uvloop = pytest.importorskip("uvloop")

    async def scenario() -> tuple[bytes, int]:
        owned: list[Any] = []
        try:
            return await _poll_then_hand_over(owned)
        finally:
            await close_all(owned)

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        body, status = runner.run(scenario())
    assert body.startswith(b"42[") and status == 200


async def test_the_hand_over_works_on_asyncios_loop(owned):
    body, status = await _poll_then_hand_over(owned)
    assert body.startswith(b"42[") and status == 200
