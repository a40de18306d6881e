"""Named readiness checks; `/readyz` is 200 only when all pass."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable

from notify_core.obs import metrics

Check = Callable[[], bool | Awaitable[bool]]


class Readiness:
    def __init__(self) -> None:
        self._checks: dict[str, Check] = {}

    def add(self, name: str, check: Check) -> None:
        self._checks[name] = check

    async def status(self, timeout_s: float = 2.0) -> tuple[bool, dict[str, bool]]:
        results: dict[str, bool] = {}
        for name, check in self._checks.items():
            try:
                value = check()
                if inspect.isawaitable(value):
                    value = await asyncio.wait_for(value, timeout_s)
                results[name] = bool(value)
            except asyncio.CancelledError:
                raise
            except Exception:
                results[name] = False
        ok = bool(results) and all(results.values())
        metrics.READY.set(1 if ok else 0)
        return ok, results
