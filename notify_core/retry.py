"""The one retry policy: capped exponential backoff (tenacity's `wait_exponential`), a log
line and a `notify_retries_total{what}` sample per retry.

- `Backoff` for what runs again and again: a background loop that reconnects (a Redis
  subscription, the history follower) or a step that must not be given up (a pipeline's
  state write while Redis is away: the offset waits). `await backoff.failed(exc)` logs,
  counts and sleeps the next wait; `backoff.ok()` after a success starts over.
- `until_done(what, step)`: run `step` until it does not raise one of `errors`.
The history append (`pipeline/publisher.py`) and webhooks use tenacity's `AsyncRetrying`
directly, with the same waits.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

from prometheus_client import Counter
from tenacity import RetryCallState, wait_exponential

T = TypeVar("T")

RETRIES = Counter(
    "notify_retries_total",
    "Retries after a failure, by what was retried (a reconnect, a state step)",
    ["what"],
)


class Backoff:
    def __init__(
        self, what: str, log: logging.Logger, first_s: float = 0.1, cap_s: float = 5.0
    ) -> None:
        self.what, self.log = what, log
        self._wait = wait_exponential(multiplier=first_s, min=first_s, max=cap_s)
        self.attempts = 0

    def next_wait(self) -> float:
        """first_s * 2^(attempts - 1), capped (tenacity computes it)."""
        state = RetryCallState(cast(Any, None), None, (), {})  # only attempt_number is read
        state.attempt_number = max(1, self.attempts)
        return float(self._wait(state))

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
