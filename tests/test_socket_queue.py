"""`SocketQueue`, engine.io's per-connection packet queue: what engine.io relies on of
asyncio.Queue (FIFO, a waiting `get` woken by `put`, `join` after `task_done`, a
`wait_for` timeout that loses nothing), and that an idle one holds no containers."""

from __future__ import annotations

import asyncio
import sys

import pytest

from sio_server.socketio.socket_queue import SocketQueue


async def test_packets_come_out_in_order_and_wake_a_waiting_get():
    q = SocketQueue()
    waiting = q.get()
    assert q.parked()  # the writer is parked: a direct write may go to the socket
    await q.put("a")
    q.put_nowait("b")
    assert not q.parked()  # woken, holding packets: a direct write would overtake them
    assert await waiting == "a"
    assert q.get_nowait() == "b"
    with pytest.raises(asyncio.QueueEmpty):
        q.get_nowait()
    assert q.qsize() == 0 and q.empty()


async def test_a_get_timed_out_by_wait_for_loses_no_packet():
    """engine.io's `poll` waits with `asyncio.wait_for(queue.get(), ping timeout)`."""
    q = SocketQueue()
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(q.get(), 0.01)
    assert not q.parked()
    q.put_nowait(1)
    assert await asyncio.wait_for(q.get(), 1) == 1


async def test_gets_that_gave_up_do_not_swallow_the_next_packet():
    q = SocketQueue()
    for _ in range(2):
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(q.get(), 0.01)
    waiting = asyncio.ensure_future(asyncio.wait_for(q.get(), 1))
    await asyncio.sleep(0)
    assert q.parked()
    q.put_nowait("only")
    assert await waiting == "only"
    assert q.qsize() == 0


async def test_a_wait_cancelled_after_the_handover_still_returns_the_packet():
    """`wait_for` whose timeout fires once the packet is handed over returns it."""
    q = SocketQueue()
    getter = q.get()
    q.put_nowait("handed")
    assert not getter.cancel()  # already resolved: the packet stays its result
    assert await asyncio.wait_for(getter, 0) == "handed"


async def test_join_waits_for_every_task_done():
    q = SocketQueue()
    await q.join()  # nothing put: returns at once
    q.put_nowait(1)
    q.put_nowait(2)
    joined = asyncio.create_task(q.join())
    q.get_nowait()
    q.task_done()
    await asyncio.sleep(0)
    assert not joined.done()
    q.get_nowait()
    q.task_done()
    await asyncio.wait_for(joined, 1)
    with pytest.raises(ValueError):
        q.task_done()


async def test_an_idle_queue_holds_no_container():
    q = SocketQueue()
    q.put_nowait("x")
    assert await q.get() == "x"
    waiting = q.get()
    q.put_nowait("y")
    assert await waiting == "y"
    assert q._items is None and q._getters is None
    asyncio_queue: asyncio.Queue[str] = asyncio.Queue()
    assert sys.getsizeof(q) < 100 < sys.getsizeof(asyncio_queue._queue)  # type: ignore[attr-defined]
