"""Create the contract's topics with explicit partition counts (tansu would pick 4)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

log = logging.getLogger(__name__)


async def ensure_topics(
    bootstrap: str,
    names: Iterable[str],
    partitions: int,
    timeout_s: float = 30.0,
    replication: int = 1,
) -> list[str]:
    """Create missing topics; returns those created. Retries until `timeout_s`."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
        try:
            await admin.start()
            existing = set(await admin.list_topics())
            missing = [n for n in names if n not in existing]
            if missing:
                try:
                    await admin.create_topics(
                        [
                            NewTopic(n, num_partitions=partitions, replication_factor=replication)
                            for n in missing
                        ]
                    )
                except TopicAlreadyExistsError:
                    pass
                log.info("created topics %s with %d partitions", missing, partitions)
            return missing
        except KafkaError as exc:
            if asyncio.get_running_loop().time() > deadline:
                raise RuntimeError(f"Kafka at {bootstrap} unreachable: {exc}") from exc
            await asyncio.sleep(0.5)
        finally:
            await admin.close()
