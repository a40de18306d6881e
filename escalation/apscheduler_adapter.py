"""The one module that reaches into APScheduler 3's private API (pinned `<4`).

APScheduler's Redis job store is synchronous, and `AsyncIOScheduler` calls it on the event
loop: a slow or paused Redis would stall every socket of the process. Here the job-store
work runs on one I/O thread instead:

- `OffLoopScheduler.wakeup` runs `_process_jobs` (private: reads due jobs, updates or
  removes them in the store) on the I/O thread, then sets the next timer back on the loop
  (`_start_timer`, private);
- `LoopExecutor._do_submit_job` (private) hands a due coroutine job to the loop with
  `run_coroutine_threadsafe`, since it is now called from that thread.

tests/test_escalation.py checks the behaviour from outside (a job added from the loop runs
on the loop; the loop keeps answering while the store is paused).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import sys
import threading
from typing import Any

from apscheduler.executors.asyncio import AsyncIOExecutor
from apscheduler.executors.base import run_coroutine_job
from apscheduler.schedulers.asyncio import AsyncIOScheduler

log = logging.getLogger(__name__)


class LoopExecutor(AsyncIOExecutor):
    """Runs coroutine jobs on the scheduler's loop, whichever thread submits them."""

    def _do_submit_job(self, job: Any, run_times: Any) -> None:
        def done(f: concurrent.futures.Future[Any]) -> None:
            self._pending_futures.discard(f)
            try:
                events = f.result()
            except BaseException:
                self._run_job_error(job.id, *sys.exc_info()[1:])
            else:
                self._run_job_success(job.id, events)

        coro = run_coroutine_job(job, job._jobstore_alias, run_times, self._logger.name)
        f = asyncio.run_coroutine_threadsafe(coro, self._eventloop)
        f.add_done_callback(done)
        self._pending_futures.add(f)


class OffLoopScheduler(AsyncIOScheduler):
    """An AsyncIOScheduler whose job-store reads and writes happen on `io` (one thread,
    so they stay in order); wake-ups asked for many times before the thread gets to them
    (one per `add_job`) scan the store once."""

    def __init__(self, io: concurrent.futures.ThreadPoolExecutor, **options: Any) -> None:
        self._io = io
        self._wakeup_queued = False
        # one scan of the store at a time: wake-ups during a scan ask for one more after it
        # (a burst of add_job must not queue a scan each on the job-store thread)
        self._scan = threading.Lock()
        self._scanning = False
        self._again = False
        super().__init__(**options)

    def _create_default_executor(self) -> LoopExecutor:
        return LoopExecutor()

    def wakeup(self) -> None:  # may be called from any thread
        loop = self._eventloop
        if self._wakeup_queued or loop is None or loop.is_closed():
            return
        self._wakeup_queued = True
        loop.call_soon_threadsafe(self._wake_now)

    def _wake_now(self) -> None:
        self._wakeup_queued = False
        if self._eventloop is None or not self.running:
            return
        self._stop_timer()
        with self._scan:
            if self._scanning:
                self._again = True
                return
            self._scanning = True
        self._io.submit(self._process_off_loop)

    def _process_off_loop(self) -> None:
        while True:
            try:
                wait_seconds = self._process_jobs()
            except Exception:
                log.exception("processing due escalation jobs failed; trying again in 1 s")
                wait_seconds = 1.0
            with self._scan:
                if not self._again:
                    self._scanning = False
                    break
                self._again = False
        loop = self._eventloop
        if loop is not None and not loop.is_closed() and self.running:
            loop.call_soon_threadsafe(self._start_timer, wait_seconds)
