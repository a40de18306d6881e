"""The operator config in force: one holder for every reloadable file, swapped whole.

The composition root keeps one `InForce` of the whole config directory
(`towerco_notify.config_files.ConfigSet`). A reload validates every file first
(`load_config`), then `swap`s the set in one assignment, so no part ever sees half a
reload; a refused reload keeps what is in force and records why (`last_error`, shown by
`GET /api/v1/thresholds` and the audit trail). Parts never hold a file's value: they are
handed a view, `holder.view(pick)`, and read it when they need it (the pipeline per
message, suppression per decision), so nothing is mutated in place on reload. A part
built outside the daemon (a CLI, a bench, a test) is handed `fixed(value)`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")
V = TypeVar("V")


class InForce(Generic[T]):
    """A value in force: read `current`, replaced whole by `swap`, kept on `refuse`."""

    def __init__(self, value: T) -> None:
        self.current = value
        self.generation = 0  # valid reloads so far
        self.last_error: str | None = None  # why the last reload was refused, until one is not

    def swap(self, value: T) -> None:
        """Put a validated value in force (everything that can fail was built before)."""
        self.current = value
        self.generation += 1
        self.last_error = None

    def refuse(self, error: str) -> None:
        """A reload was refused: what is in force stays; `error` says why."""
        self.last_error = error

    def view(self, pick: Callable[[T], V]) -> View[V]:
        """A part's window on one file of what is in force (`pick` of the current value)."""
        return View(self, pick)


class View(Generic[V]):
    """One file of what is in force, read when needed: `current` (or call the view), and
    the holder's `generation` and `last_error`."""

    __slots__ = ("_holder", "_pick")

    def __init__(self, holder: InForce[Any], pick: Callable[[Any], V]) -> None:
        self._holder = holder
        self._pick = pick

    @property
    def current(self) -> V:
        return self._pick(self._holder.current)

    def __call__(self) -> V:
        return self._pick(self._holder.current)

    @property
    def generation(self) -> int:
        return self._holder.generation

    @property
    def last_error(self) -> str | None:
        return self._holder.last_error


def _itself(value: V) -> V:
    return value


def fixed(value: V) -> View[V]:
    """A value that no reload changes (a CLI run, a bench, a test), as a `View`."""
    return InForce(value).view(_itself)
