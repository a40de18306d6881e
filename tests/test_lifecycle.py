"""The one lifecycle (`notify_core.lifecycle`): parts start in order, a failed start stops
what started (in reverse) and raises, stop is reverse and bounded per part; a background
task survives until stopped and is awaited when it is."""

from __future__ import annotations

import asyncio

import pytest

from notify_core.lifecycle import Background, Lifecycle, Part, nothing, plain


def recorded(log: list[str], name: str, fail: bool = False, hang: bool = False) -> Part:
    async def start() -> None:
        if fail:
            raise RuntimeError(f"{name} cannot start")
        log.append(f"start {name}")

    async def stop() -> None:
        if hang:
            await asyncio.Event().wait()
        log.append(f"stop {name}")

    return Part(name, start, stop, stop_timeout_s=0.2)


async def test_parts_start_in_order_and_stop_in_reverse():
    log: list[str] = []
    life = Lifecycle()
    await life.start([recorded(log, "redis"), recorded(log, "http"), recorded(log, "faust")])
    assert life.started == ["redis", "http", "faust"]
    await life.stop()
    assert log == [
        "start redis",
        "start http",
        "start faust",
        "stop faust",
        "stop http",
        "stop redis",
    ]
    assert life.started == []


async def test_a_failed_start_stops_what_started_and_raises():
    """Nothing keeps running half-built: the parts before the failure are stopped in
    reverse, the one after it never starts."""
    log: list[str] = []
    life = Lifecycle()
    with pytest.raises(RuntimeError, match="http cannot start"):
        await life.start(
            [
                recorded(log, "redis"),
                recorded(log, "audit"),
                recorded(log, "http", fail=True),
                recorded(log, "faust"),
            ]
        )
    assert log == ["start redis", "start audit", "stop audit", "stop redis"]
    assert life.started == []


async def test_a_part_that_hangs_on_stop_does_not_keep_the_others_running():
    log: list[str] = []
    life = Lifecycle()
    await life.start([recorded(log, "redis"), recorded(log, "stuck", hang=True)])
    await life.stop()  # the stuck part's bound is 0.2 s
    assert log == ["start redis", "start stuck", "stop redis"]


async def test_a_background_task_runs_until_stopped_and_is_awaited():
    ticks: list[int] = []
    ended, three = asyncio.Event(), asyncio.Event()

    async def loop() -> None:
        try:
            while True:
                ticks.append(len(ticks))
                if len(ticks) == 3:
                    three.set()
                await asyncio.sleep(0.01)
        finally:
            ended.set()

    task = Background("ticker", loop)
    assert not task.running
    await task.start()
    await task.start()  # a second start is the same task
    await asyncio.wait_for(three.wait(), 5)
    assert task.running
    await task.stop()
    assert ended.is_set() and not task.running
    seen = len(ticks)
    await asyncio.sleep(0.05)
    assert len(ticks) == seen  # nothing runs after stop
    await task.stop()  # a second stop is harmless


async def test_a_background_task_that_failed_is_logged_on_stop_not_raised(caplog):
    async def broken() -> None:
        raise ValueError("bad state")

    task = Background("broken", broken)
    await task.start()
    await asyncio.sleep(0)
    await task.stop()
    assert "broken ended with an error" in caplog.text


async def test_plain_functions_and_nothing_as_steps():
    calls: list[str] = []
    life = Lifecycle()
    await life.start([Part("flush", nothing, plain(lambda: calls.append("flushed")))])
    assert calls == []
    await life.stop()
    assert calls == ["flushed"]


async def test_a_repeating_task_survives_a_failing_round_and_waits_when_asked(caplog):
    """`Background.every`: a round that raises is logged and the next one comes; with
    `wait_first` nothing runs before one interval has passed."""
    rounds: list[int] = []
    third = asyncio.Event()

    async def work() -> None:
        rounds.append(len(rounds))
        if len(rounds) == 2:
            raise ConnectionError("Redis away")
        if len(rounds) == 3:
            third.set()

    task = Background.every("watching", 0.01, work)
    await task.start()
    await asyncio.wait_for(third.wait(), 5)  # the failed second round did not end it
    await task.stop()
    assert "watching failed; trying again next round" in caplog.text

    later: list[int] = []

    async def mark() -> None:
        later.append(1)

    delayed = Background.every("delayed", 3600, mark, wait_first=True)
    await delayed.start()
    await asyncio.sleep(0.05)
    await delayed.stop()
    assert later == []  # an hour's wait first: not run yet
    prompt = Background.every("prompt", 3600, mark)
    await prompt.start()
    await asyncio.sleep(0.05)
    await prompt.stop()
    assert later == [1]  # the positive twin: without wait_first the first round is now
