"""The one place Redis clients are made: a single server, a Redis Cluster or a Sentinel-
watched master, from `NOTIFY_REDIS_URL` and `NOTIFY_REDIS_CLUSTER`.

- `redis://` / `rediss://` / `unix://`: one server. A burst (1000 dashboards reconnecting
  after a restart) waits for a free connection instead of failing: redis-py's default
  pool raises past its limit.
- the same with `NOTIFY_REDIS_CLUSTER=true`: the URL names a seed node; redis-py's cluster
  client learns the others and follows slot moves. Keys used together share a hash tag
  (notify_core/redis/keys.py), scripts name their keys in KEYS.
- `redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/<service>[/<db>]`: the
  master Sentinel names for that service, found again after a failover (default port
  26379; the password is the master's).

The async client serves the daemon; the synchronous one only APScheduler's job store,
which runs on its own thread (escalation/scheduler.py).
"""

from __future__ import annotations

import argparse
import os
from typing import Any, NamedTuple, cast
from urllib.parse import unquote, urlsplit

import redis as redis_sync
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import ClusterNode, PipelineCommand, RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

SENTINEL_SCHEME = "redis+sentinel://"
SCHEMES = ("redis://", "rediss://", "unix://", SENTINEL_SCHEME)
SENTINEL_PORT = 26379
MAX_CONNECTIONS = 100  # a single server's pool: a burst waits for a free connection
# redis-py's cluster client has no waiting pool (past its limit a call fails), so its
# per-node limit is set for a reconnect storm of a thousand dashboards instead
CLUSTER_MAX_CONNECTIONS = 1000
TIMEOUTS: dict[str, Any] = {"socket_timeout": 5, "socket_connect_timeout": 5}


def _retry() -> dict[str, Any]:
    """A command that meets a dead pooled connection (Redis restarted since it was opened)
    reconnects and is sent again, up to 3 times within about a second, instead of failing
    at once: a pool built with `from_url` gives its connections no retry of their own (seen:
    handshakes refused for 15 s after a Redis restart, until every stale connection of the
    pool had failed once). What is sent twice is idempotent here: the scripts dedupe,
    the rest sets or adds."""
    return {
        "retry": Retry(ExponentialBackoff(cap=0.5, base=0.05), 3),
        "retry_on_error": [RedisConnectionError, RedisTimeoutError],
    }


class SentinelUrl(NamedTuple):
    sentinels: list[tuple[str, int]]
    service: str
    db: int
    username: str | None
    password: str | None


def parse_sentinel_url(url: str) -> SentinelUrl:
    """Raises ValueError naming what is wrong with the URL."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    hosts: list[tuple[str, int]] = []
    for hostport in netloc.split(","):
        host, sep, port = hostport.rpartition(":")
        if not sep:
            host, port = hostport, str(SENTINEL_PORT)
        if not host or not port.isdigit():
            raise ValueError(f"{url!r}: {hostport!r} is not host[:port]")
        hosts.append((host, int(port)))
    path = [p for p in parts.path.split("/") if p]
    if not path or len(path) > 2 or (len(path) == 2 and not path[1].isdigit()):
        raise ValueError(f"{url!r}: the path must be /<service>[/<db>]")
    userinfo = parts.netloc.rpartition("@")[0]
    user, _, password = userinfo.partition(":")
    return SentinelUrl(
        hosts,
        path[0],
        int(path[1]) if len(path) == 2 else 0,
        unquote(user) or None,
        unquote(password) or None,
    )


def connect(url: str, cluster: bool = False) -> Redis:
    """The daemon's async client. A cluster client offers the same commands; its type is
    told as `Redis` so the stores need not know (notify_core/redis/scripts.py and
    sio_server/follower.py are the two places that group keys by slot on a cluster)."""
    if url.startswith(SENTINEL_SCHEME):
        where = parse_sentinel_url(url)
        sentinel = Sentinel(where.sentinels, **TIMEOUTS)
        return sentinel.master_for(
            where.service,
            redis_class=Redis,
            db=where.db,
            username=where.username,
            password=where.password,
            health_check_interval=30,
            **TIMEOUTS,
            **_retry(),
        )
    if cluster:
        # `initialize` before concurrent use; no health_check_interval (with it, calls
        # running concurrently were seen sent on a connection not yet made)
        client = RedisCluster.from_url(url, max_connections=CLUSTER_MAX_CONNECTIONS, **TIMEOUTS)
        return cast(Redis, client)
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=MAX_CONNECTIONS,
        timeout=10,
        health_check_interval=30,
        **TIMEOUTS,
        **_retry(),
    )
    return Redis.from_pool(pool)


async def initialize(client: Redis) -> None:
    """Learn a cluster's slots before any concurrent use. redis-py 8's async cluster
    client lets calls that race its lazy first initialisation go to the seed node: they
    come back MOVED, the client rebuilds its node table and closes the connections other
    calls are waiting on, and those are retried (a script that ran is then run again).
    Nothing to do for a single server or Sentinel."""
    if isinstance(client, RedisCluster):
        await client.initialize()


class _TransactionalCluster(redis_sync.RedisCluster):
    """APScheduler's job store opens `pipeline()` and calls `multi()`: on a cluster that
    needs a transactional pipeline (its two keys share the `{apscheduler}` slot)."""

    def pipeline(self, transaction: Any = True, shard_hint: Any = None) -> Any:
        return super().pipeline(transaction=transaction, shard_hint=shard_hint)


def connect_sync(url: str, cluster: bool = False, timeout_s: float = 2) -> redis_sync.Redis:
    """A synchronous client for APScheduler's job store (short timeouts: its thread must
    not hang on a dead Redis)."""
    timeouts: dict[str, Any] = {"socket_timeout": timeout_s, "socket_connect_timeout": timeout_s}
    if url.startswith(SENTINEL_SCHEME):
        where = parse_sentinel_url(url)
        sentinel = redis_sync.Sentinel(where.sentinels, **timeouts)
        return sentinel.master_for(
            where.service,
            db=where.db,
            username=where.username,
            password=where.password,
            **timeouts,
        )
    if cluster:
        return cast(redis_sync.Redis, _TransactionalCluster.from_url(url, **timeouts))
    return redis_sync.Redis.from_url(url, **timeouts)


def add_arguments(parser: argparse.ArgumentParser, what: str) -> None:
    """`--redis-url`, `--redis-cluster` and `--redis-prefix` of a command-line tool, with
    the daemon's variables as defaults (so a tool reads what the daemon writes)."""
    parser.add_argument(
        "--redis-url", default=os.environ.get("NOTIFY_REDIS_URL"), help=f"{what} [NOTIFY_REDIS_URL]"
    )
    parser.add_argument(
        "--redis-cluster",
        action="store_true",
        default=os.environ.get("NOTIFY_REDIS_CLUSTER", "").lower() in ("1", "true", "yes"),
        help="the URL names a seed node of a Redis Cluster [NOTIFY_REDIS_CLUSTER]",
    )
    parser.add_argument("--redis-prefix", default=os.environ.get("NOTIFY_REDIS_PREFIX", "towerco:"))


async def pubsub(client: Redis, **kwargs: Any) -> Any:
    """A PubSub for classic channels. On a cluster, on a plain connection to one node
    (its first known primary): Redis Cluster delivers a PUBLISH on any node to the
    subscribers of every node, and redis-py's cluster PubSub was seen failing to pick a
    node while the client rebuilt its slot table. Closing the PubSub closes that
    connection."""
    if isinstance(client, RedisCluster):
        await client.initialize()  # a no-op once it knows its nodes
        node = client.get_default_node()
        args = {k: v for k, v in node.connection_kwargs.items() if k in _NODE_ARGS}
        return Redis(**args).pubsub(**kwargs)
    return client.pubsub(**kwargs)


_NODE_ARGS = frozenset(
    {"host", "port", "username", "password", "ssl", "socket_timeout", "socket_connect_timeout"}
)


async def on_one_connection(client: Any, *commands: tuple[Any, ...]) -> list[Any]:
    """Run `commands` in order on one connection and return their replies (what `WAIT`
    needs: it waits for the writes of its own connection). `client` is a Redis client or
    a Redis Cluster's node; on a node this uses redis-py's `ClusterNode.execute_pipeline`
    with its `PipelineCommand` (the cluster client's own pipeline would route the keyless
    WAIT to any node)."""
    if isinstance(client, ClusterNode):
        batch = [PipelineCommand(i, *args) for i, args in enumerate(commands)]
        await client.execute_pipeline(batch)
        for cmd in batch:
            if isinstance(cmd.result, Exception):
                raise cmd.result
        return [cmd.result for cmd in batch]
    async with client.pipeline(transaction=False) as pipe:
        for args in commands:
            pipe.execute_command(*args)
        return list(await pipe.execute())
