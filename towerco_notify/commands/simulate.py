"""A realistic event generator: tenants x sites, KPI series with occasional breaches,
incidents of every severity, status flaps. The generator is pure (seeded RNG, clock
passed in); `produce` sends its output to Kafka at a steady rate with progress.
"""

from __future__ import annotations

import asyncio
import math
import random
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import orjson
from aiokafka import AIOKafkaProducer

from notify_core.clock import iso_s
from notify_core.wire.events import TOPIC_ALERTS, TOPIC_KPIS, TOPIC_SITES

SEVERITIES = ("critical", "major", "minor", "warning", "info")
SEVERITY_WEIGHTS = (1, 3, 6, 8, 4)
ADR010_SEVERITIES = ("high", "medium", "low", "HIGH", None)
VENDORS = ("Ericsson", "Huawei", "Nokia", "ZTE")
INCIDENT_TITLES = (
    "Rectifier module failure",
    "Mains power lost, on battery",
    "Cabinet door open",
    "High shelter temperature",
    "Microwave link down",
    "Fuel level low",
    "Tower light failure",
    "Battery discharge alarm",
    "Fibre backhaul degraded",
)
# name: (baseline, daily swing, noise, breach value)
KPIS = {
    "availability_pct": (99.9, 0.05, 0.02, 93.0),
    "rssi_dbm": (-72.0, 3.0, 1.0, -101.0),
    "packet_loss_pct": (0.2, 0.1, 0.05, 6.5),
    "temperature_c": (31.0, 6.0, 0.5, 58.0),
    "battery_voltage_v": (53.5, 0.3, 0.1, 44.0),
}


@dataclass
class Generator:
    tenants: list[str]
    sites_per_tenant: int
    seed: int = 7
    rng: random.Random = field(init=False)
    _incident_seq: int = 0
    _status: dict[tuple[str, str], str] = field(default_factory=dict)
    # sustained faults (site -> KPI in breach until a time), so `for:` rules really fire
    _faults: dict[tuple[str, str], tuple[str, float]] = field(default_factory=dict)
    fault_chance: float = 0.005
    # the share of messages in ADR-010's own words (high/medium/low or no severity, a
    # KPI sample's vendor label and threshold_breach flag), as its producers send them
    adr010_share: float = 0.25

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def site_ids(self, tenant: str) -> list[str]:
        return [f"{tenant}-site-{i:04d}" for i in range(1, self.sites_per_tenant + 1)]

    def next(self, now: float) -> tuple[str, dict[str, object]]:
        """One (topic, envelope) pair: mostly KPIs, some status changes and incidents."""
        tenant = self.rng.choice(self.tenants)
        site = self.rng.choice(self.site_ids(tenant))
        ts = iso_s(now)
        roll = self.rng.random()
        if roll < 0.80:
            payload: dict[str, object] = {}
            fault = self._faults.get((tenant, site))
            if fault is not None and now >= fault[1]:
                del self._faults[(tenant, site)]  # recovered: back to normal
                fault = None
            if fault is None and self.rng.random() < self.fault_chance:
                fault = (self.rng.choice(sorted(KPIS)), now + self.rng.uniform(60, 180))
                self._faults[(tenant, site)] = fault
            names = {n for n, _ in self.rng.sample(sorted(KPIS.items()), 3)}
            if fault is not None:
                names.add(fault[0])
            for name in sorted(names):
                base, swing, noise, breach = KPIS[name]
                value = base + swing * math.sin(now / 3600.0) + self.rng.gauss(0, noise)
                if fault is not None and fault[0] == name:
                    value = breach + self.rng.gauss(0, abs(noise))
                payload[name] = round(value, 3)
            if self.rng.random() < self.adr010_share:
                payload["vendor"] = self.rng.choice(VENDORS)
                payload["threshold_breach"] = fault is not None
            return TOPIC_KPIS, {
                "tenant_id": tenant,
                "site_id": site,
                "timestamp": ts,
                "payload": payload,
            }
        if roll < 0.90:
            key = (tenant, site)
            current = self._status.get(key, "up")
            choices = {
                "up": ("degraded", "down", "maintenance"),
                "degraded": ("up", "down"),
                "down": ("up", "degraded"),
                "maintenance": ("up",),
            }[current]
            new = self.rng.choice(choices)
            self._status[key] = new
            return TOPIC_SITES, {
                "tenant_id": tenant,
                "site_id": site,
                "timestamp": ts,
                "payload": {"status": new, "previous": current},
            }
        self._incident_seq += 1
        severity: str | None = self.rng.choices(SEVERITIES, SEVERITY_WEIGHTS)[0]
        if self.rng.random() < self.adr010_share:
            severity = self.rng.choice(ADR010_SEVERITIES)
        title = self.rng.choice(INCIDENT_TITLES)
        incident: dict[str, object] = {
            "incident_id": f"INC-{int(now)}-{self._incident_seq}",
            "title": title,
            "description": f"{title} at {site}",
        }
        if severity is not None:  # ADR-010's bridge may leave it out (default: medium)
            incident["severity"] = severity
        return TOPIC_ALERTS, {
            "tenant_id": tenant,
            "site_id": site,
            "timestamp": ts,
            "payload": incident,
        }

    def stream(self, clock: Iterator[float]) -> Iterator[tuple[str, dict[str, object]]]:
        for now in clock:
            yield self.next(now)


async def produce(
    bootstrap: str,
    gen: Generator,
    rate: float,
    duration: float | None,
    progress_every_s: float = 5.0,
    quiet: bool = False,
) -> int:
    """Send events at `rate`/s for `duration` seconds (None: until cancelled)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks=1, linger_ms=5)
    await producer.start()
    sent, started = 0, time.monotonic()
    last_report = started
    try:
        while duration is None or time.monotonic() - started < duration:
            due = started + sent / rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            topic, envelope = gen.next(time.time())
            await producer.send(
                topic, orjson.dumps(envelope), key=str(envelope["site_id"]).encode()
            )
            sent += 1
            now = time.monotonic()
            if not quiet and now - last_report >= progress_every_s:
                last_report = now
                print(
                    f"simulate: {sent} events sent ({sent / (now - started):.1f}/s)",
                    file=sys.stderr,
                    flush=True,
                )
        await producer.flush()
    finally:
        await producer.stop()
    if not quiet:
        print(
            f"simulate: done, {sent} events in {time.monotonic() - started:.1f}s",
            file=sys.stderr,
            flush=True,
        )
    return sent
