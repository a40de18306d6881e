"""The one retry policy: capped exponential backoff (tenacity's `wait_exponential`), a log
line and a `notify_retries_total{what}` sample per retry.

- `wait_s(attempt, first_s, cap_s)`: the wait after the `attempt`-th failure; what a
  durable retry (the receivers' outbox) schedules by.
- `Backoff` for what runs again and again: a background loop that reconnects (a Redis
  subscription, the history follower) or a step that must not be given up (a pipeline's
  state write while Redis is away: the offset waits). `await backoff.failed(exc)` logs,
  counts and sleeps the next wait; `backoff.ok()` after a success starts over.
- `until_done(what, step)`: run `step` until it does not raise one of `errors`;
  `until_done_blocking`, the same on a thread of its own (the escalation job store's).
The history append (`pipeline/publisher.py`) and webhooks use tenacity's `AsyncRetrying`
directly (with jitter, and a bounded number of attempts).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

from prometheus_client import Counter
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    wait_exponential,
)

T = TypeVar("T")

RETRIES = Counter(
    "notify_retries_total",
    "Retries after a failure, by what was retried (a reconnect, a state step)",
    ["what"],
)


def wait_s(attempt: int, first_s: float, cap_s: float) -> float:
    """first_s * 2^(attempt - 1), capped at cap_s (tenacity computes it); attempt >= 1."""
    state = RetryCallState(cast(Any, None), None, (), {})  # only attempt_number is read
    state.attempt_number = max(1, attempt)
    return float(wait_exponential(multiplier=first_s, min=first_s, max=cap_s)(state))


class Backoff:
    def __init__(
        self, what: str, log: logging.Logger, first_s: float = 0.1, cap_s: float = 5.0
    ) -> None:
        self.what, self.log = what, log
        self.first_s, self.cap_s = first_s, cap_s
        self.attempts = 0

    def next_wait(self) -> float:
        return wait_s(self.attempts, self.first_s, self.cap_s)

    async def failed(self, exc: BaseException) -> None:
        self.attempts += 1
        wait = self.next_wait()
        RETRIES.labels(self.what).inc()
        self.log.warning("%s failed (%s); retrying in %.2fs", self.what, exc, wait)
        await asyncio.sleep(wait)

    def ok(self) -> None:
        self.attempts = 0


async def until_done(
    what: str,
    step: Callable[[], Awaitable[T]],
    errors: tuple[type[BaseException], ...],
    log: logging.Logger,
    first_s: float = 0.05,
    cap_s: float = 5.0,
) -> T:
    """`step()` again and again while it raises one of `errors` (anything else raises)."""
    backoff = Backoff(what, log, first_s, cap_s)
    while True:
        try:
            return await step()
        except errors as exc:
            await backoff.failed(exc)


def until_done_blocking(
    what: str,
    step: Callable[[], T],
    errors: tuple[type[BaseException], ...],
    log: logging.Logger,
    give_up: Callable[[], bool],
    first_s: float = 0.1,
    cap_s: float = 5.0,
) -> T:
    """`until_done` for a worker thread: sleeps between attempts; stops retrying (the
    last error raises) once `give_up()` says so, e.g. while shutting down."""

    def before_sleep(state: RetryCallState) -> None:
        RETRIES.labels(what).inc()
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning("%s failed (%s); retrying in %.2fs", what, exc, wait)

    for attempt in Retrying(
        retry=retry_if_exception_type(errors),
        wait=wait_exponential(multiplier=first_s, min=first_s, max=cap_s),
        stop=lambda _state: give_up(),
        before_sleep=before_sleep,
        reraise=True,
    ):
        with attempt:
            return step()
    raise AssertionError("unreachable: Retrying returns or raises")  # pragma: no cover
