"""A real Prometheus Alertmanager (Debian's `prometheus-alertmanager`) for the tests: one
webhook receiver pointing at the daemon, alerts posted to its own API (`/api/v2/alerts`)
as Prometheus would, grouping and repeat times short enough for a test."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from towerco_notify.embedded_broker import free_port

BINARY = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")

CONFIG = """\
route:
  receiver: towerco
  group_by: [alertname, site_id]
  group_wait: 200ms
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: towerco
    webhook_configs:
      - url: {url}
        send_resolved: true
        http_config:
          authorization: {{type: Bearer, credentials: {key}}}
"""


def iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


class Alertmanager:
    def __init__(self, webhook_url: str, key: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self._dir = Path(tempfile.mkdtemp(prefix="towerco-am-"))
        (self._dir / "am.yml").write_text(CONFIG.format(url=webhook_url, key=key))
        self._proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        if BINARY is None:
            pytest.skip("no prometheus-alertmanager (apt-get install prometheus-alertmanager)")
        log = (self._dir / "am.log").open("wb")
        self._proc = await asyncio.create_subprocess_exec(
            BINARY,
            f"--config.file={self._dir / 'am.yml'}",
            f"--storage.path={self._dir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--cluster.listen-address=",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=log,
        )
        log.close()  # the child has its own descriptor
        async with aiohttp.ClientSession() as http:
            for _ in range(200):
                try:
                    async with http.get(f"{self.base}/-/ready") as resp:
                        if resp.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)
        raise RuntimeError("alertmanager did not start: " + self.log())

    def log(self) -> str:
        return (self._dir / "am.log").read_text()[-3000:]

    async def post(self, alerts: list[dict[str, Any]]) -> None:
        """As Prometheus does: POST /api/v2/alerts."""
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{self.base}/api/v2/alerts", json=alerts) as resp:
                assert resp.status == 200, await resp.text()

    async def fire(self, labels: dict[str, str], annotations: dict[str, str]) -> None:
        now = datetime.now(UTC)
        await self.post(
            [
                {
                    "labels": labels,
                    "annotations": annotations,
                    "startsAt": iso(now),
                    "endsAt": iso(now + timedelta(hours=1)),
                }
            ]
        )

    async def resolve(self, labels: dict[str, str]) -> None:
        ended = datetime.now(UTC) - timedelta(seconds=1)
        await self.post(
            [
                {
                    "labels": labels,
                    "startsAt": iso(ended - timedelta(minutes=1)),
                    "endsAt": iso(ended),
                }
            ]
        )

    async def fingerprint(self, labels: dict[str, str]) -> str:
        """Alertmanager's own fingerprint of the alert with these labels."""
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{self.base}/api/v2/alerts") as resp:
                alerts = await resp.json()
        for alert in alerts:
            if alert["labels"] == labels:
                return str(alert["fingerprint"])
        raise AssertionError(f"alertmanager has no alert {labels}")

    async def stop(self) -> None:
        if self._proc is not None and self._proc.returncode is None:
            self._proc.terminate()
            await self._proc.wait()
        shutil.rmtree(self._dir, ignore_errors=True)
