"""Typed, validated daemon settings from `NOTIFY_*` variables and `--flag` twins.

Every setting has one environment variable (`NOTIFY_<FIELD>`) and one command-line
flag (`--<field-with-dashes>`); a flag wins over the variable. Validation happens
once, at start, and every error names the variable, the flag and the bad value.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from notify_core.redact import mask_password
from notify_core.redis.factory import SCHEMES, SENTINEL_SCHEME, parse_sentinel_url
from notify_core.redis.keys import RedisKeys

ENV_PREFIX = "NOTIFY_"


class SettingsError(ValueError):
    """Settings failed validation; the message names every bad variable and value."""


def _split_csv(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """Everything the daemon can be told; see the README's settings table."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    kafka_bootstrap: Annotated[list[str] | None, NoDecode] = Field(
        default=None,
        description="host:port[,host:port] of Kafka; unset: `run` starts the embedded broker",
    )
    redis_url: str | None = Field(
        default=None,
        description="redis://host:port/db, or redis+sentinel://host:port[,...]/service[/db];"
        " unset: in-process memory engine",
    )
    redis_cluster: bool = Field(
        default=False, description="the Redis URL names a seed node of a Redis Cluster"
    )
    redis_min_replicas: int = Field(
        default=0,
        ge=0,
        le=16,
        description="Redis replicas that must confirm a batch's writes (WAIT) before its Kafka"
        " offsets are committed; 0: the master's answer is enough",
    )
    redis_replica_timeout_ms: int = Field(
        default=1000,
        ge=1,
        le=60_000,
        description="how long a batch waits for those replicas before it is written again",
    )
    redis_prefix: str = Field(
        default="towerco:", description="prefix of every Redis key and internal channel"
    )
    system_channel: str = Field(
        default="system_notifications", description="Redis pub/sub channel of system notices"
    )
    jwt_secret: SecretStr | None = Field(
        default=None, description="HS256 secret, at least 32 bytes (`run`: random dev secret)"
    )
    jwt_public_key_file: Path | None = Field(
        default=None, description="PEM public key file; when set, RS256 tokens are accepted too"
    )
    jwt_audience: str | None = Field(
        default=None, description="when set, a token's `aud` must contain it"
    )
    jwt_issuer: str | None = Field(default=None, description="when set, a token's `iss` must be it")
    oidc_issuer: str | None = Field(
        default=None, description="the dashboard signs in here (OIDC code flow with PKCE)"
    )
    oidc_client_id: str | None = Field(default=None, description="the dashboard's OIDC client")
    oidc_scopes: str = Field(default="openid profile", description="scopes the dashboard asks")
    jwt_jwks_url: str | None = Field(
        default=None,
        description="an identity provider's JWKS: RS256/ES256 keys by `kid`, refreshed on rotation",
    )
    jwt_tenant_claim: str = Field(
        default="tenant_id", description="dotted path of the tenant id in the token's claims"
    )
    jwt_roles_claim: str = Field(
        default="roles",
        description="dotted path of the roles list (e.g. realm_access.roles); from a path"
        " other than `roles`, roles this daemon does not know are ignored",
    )
    max_connections_per_user: int = Field(
        default=20, ge=1, description="live connections of one user, across server processes"
    )
    max_connections_per_tenant: int = Field(
        default=10_000, ge=1, description="live connections of one tenant, across processes"
    )
    http_rate: str = Field(
        default="20/s", pattern=r"^\d+(\.\d+)?(/s)?$", description="HTTP API requests per token"
    )
    http_burst: int = Field(default=40, ge=1, description="HTTP API burst per token")
    auth_failures_per_min: int = Field(
        default=30, ge=1, description="refused handshakes from one address before it is blocked"
    )
    auth_block_s: float = Field(default=300, ge=1, description="how long a blocked address waits")
    webhook_secret: SecretStr | None = Field(
        default=None,
        description="HMAC-SHA256 key for webhook signatures (default: derived from the JWT secret)",
    )
    smtp_url: SecretStr | None = Field(
        default=None,
        description="email receiver: smtp://[user:pass@]host:port (STARTTLS when offered) "
        "or smtps:// (TLS)",
    )
    smtp_from: str = Field(default="towerco-notify@localhost", description="email From:")
    twilio_url: str = Field(
        default="https://api.twilio.com",
        description="SMS and voice: a Twilio-compatible REST API",
    )
    twilio_account_sid: str | None = Field(default=None, description="Twilio account SID")
    twilio_auth_token: SecretStr | None = Field(default=None, description="Twilio auth token")
    twilio_auth_token_file: Path | None = Field(
        default=None, description="a file holding the Twilio auth token (instead of the token)"
    )
    twilio_from: str | None = Field(default=None, description="the E.164 number pages come from")
    slack_api_url: str = Field(
        default="https://slack.com/api", description="Slack Web API (direct messages)"
    )
    slack_signing_secret: SecretStr | None = Field(
        default=None, description="Slack app signing secret: buttons in Slack pages act"
    )
    pagerduty_webhook_secret: SecretStr | None = Field(
        default=None, description="PagerDuty V3 webhook secret: its acks and resolves act here"
    )
    slack_bot_token: SecretStr | None = Field(
        default=None, description="Slack bot token (xoxb-...) for direct messages to people"
    )
    pagerduty_url: str = Field(
        default="https://events.pagerduty.com/v2/enqueue",
        description="PagerDuty Events API v2 endpoint",
    )
    vapid_private_key: SecretStr | None = Field(
        default=None,
        description="Web Push VAPID private key: a PEM file or its base64url raw key "
        "(default: generated once, kept in Redis)",
    )
    vapid_subject: str = Field(
        default="mailto:noc@localhost",
        pattern=r"^(mailto:[^@\s]+@[A-Za-z0-9.\-]+|https://\S+)$",
        description="Web Push VAPID `sub` claim: mailto:address or an https URL",
    )
    public_url: str | None = Field(
        default=None,
        description="the dashboard's address in pages (links); default http://host:port",
    )
    receiver_attempts: int = Field(
        default=8, ge=1, le=50, description="delivery attempts per receiver page"
    )
    receiver_max_backoff_s: float = Field(
        default=300, gt=0, description="longest wait between two delivery attempts"
    )
    presence_lease_s: float = Field(
        default=30.0,
        ge=1,
        le=600,
        description="a dead server's users leave presence within this long (renewed every third)",
    )
    ingest_timeout_s: float = Field(
        default=10.0,
        gt=0,
        le=300,
        description="inbound integrations: how long an answer waits for the broker's acks"
        " before it is 503 (the sender retries)",
    )
    handoff_check_s: float = Field(
        default=30.0,
        gt=0,
        le=600,
        description="how often who is on call is compared with before (handoff notices)",
    )
    action_link_ttl: float = Field(
        default=86400.0,
        gt=0,
        le=30 * 86400,
        description="how long an acknowledge/resolve link in a page works (24h; 30m, 2h, 3d"
        " or seconds); a link also stops working once used or the incident resolved",
    )
    snooze_minute_s: float = Field(
        default=60.0,
        gt=0,
        le=60,
        description="seconds in one minute of a snooze (60; tests and demos shorten it)",
    )
    http_host: str = Field(default="127.0.0.1", description="address the HTTP server binds")
    http_port: int = Field(default=8080, ge=0, le=65535, description="port (0: pick a free one)")
    config_dir: Path = Field(default=Path("config"), description="thresholds/escalation files")
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="comma-separated origins allowed to connect"
    )
    ws_compression: bool = Field(
        default=False, description="permessage-deflate on WebSockets (costs 2-3x CPU)"
    )
    pipeline_batch: bool = Field(
        default=True,
        description="hand each Kafka fetch to the handler as one batch, skipping Faust's"
        " per-event stream machinery (off: one Faust agent per topic)",
    )
    kpi_coalesce: bool = Field(
        default=False,
        description="within one fetch, fold KPI samples that change no alert state into one"
        " kpi_update per site (latest value per KPI); transitions are never folded",
    )
    direct_writes: bool = Field(
        default=True,
        description="write each event as one pre-built WebSocket frame straight to the sockets"
        " (off: python-socketio's per-recipient tasks and queues)",
    )
    lean_polling: bool = Field(
        default=True,
        description="answer Socket.IO long-poll GETs before aiohttp's request machinery (off:"
        " every request through aiohttp and engine.io)",
    )
    http_keepalive_s: float = Field(
        default=75.0,
        gt=0,
        le=3600,
        description="an idle keep-alive HTTP connection is closed after this long",
    )
    emit_coalesce_ms: float = Field(
        default=2.0,
        ge=0,
        le=50,
        description="under load, events emitted within this window after a write share the"
        " next write per socket (0: write at the end of each loop iteration)",
    )
    client_buffer_bytes: int = Field(
        default=4 * 1024 * 1024,
        ge=64 * 1024,
        description="unsent bytes a WebSocket client may lag behind before it is cut off"
        " (it resumes from history)",
    )
    client_queue_packets: int = Field(
        default=10_000,
        ge=100,
        description="packets queued for a polling client before it is cut off",
    )
    ack_tracking_pairs: int = Field(
        default=200_000,
        ge=1000,
        description="(alert, user) delivery confirmations kept per server process; the"
        " oldest alerts are forgotten first",
    )
    app_id: str = Field(default="towerco-notify", description="Kafka consumer group id")
    kafka_offset_reset: str = Field(
        default="earliest",
        pattern="^(earliest|latest)$",
        description="where a new consumer group starts: earliest (lose nothing) or latest",
    )
    tansu_compat: bool = Field(
        default=False,
        description="work around tansu quirks (on for the embedded broker): single-record "
        "producer batches, as tansu reports a partition's end offset as the last batch's "
        "base offset + 1 and Faust's table recovery would stop short",
    )
    topic_partitions: int = Field(default=4, ge=1, le=1024, description="partitions per topic")
    topic_replication: int = Field(
        default=1, ge=1, le=16, description="replication factor of the topics the daemon creates"
    )
    kafka_acks: str = Field(
        default="all",
        pattern="^(all|1|0)$",
        description="producer acks: all (an answered action survives a leader failover), 1, 0",
    )
    fetch_wait_ms: int = Field(
        default=20, ge=1, le=5000, description="Kafka fetch wait: latency vs. broker load"
    )
    session_timeout_s: float = Field(
        default=6.0, gt=0.5, le=300, description="Kafka group session timeout (seconds)"
    )
    history_maxlen: int = Field(
        default=10_000, ge=10, description="events kept per tenant in history"
    )
    history_max_age_s: float = Field(
        default=7 * 24 * 3600, ge=0, description="seconds of history kept per tenant (0: no limit)"
    )
    uvloop: bool = Field(default=True, description="run on uvloop (faster socket I/O and timers)")
    gc_freeze: bool = Field(
        default=True, description="freeze start-up objects and raise GC thresholds"
    )
    gc_threshold: int = Field(
        default=50_000,
        ge=700,
        description="with gc_freeze: container objects allocated (net of frees) before a"
        " young-generation collection",
    )
    log_level: str = Field(default="INFO", description="DEBUG, INFO, WARNING or ERROR")
    log_format: str = Field(
        default="text",
        pattern="^(text|json)$",
        description="text, or json: one object per line (at, level, logger, message, and"
        " tenant_id / incident_id when the line is about one)",
    )

    @field_validator("action_link_ttl", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        from notify_core.thresholds.rules import parse_duration

        return parse_duration(value) if isinstance(value, str) else value

    @field_validator("kafka_bootstrap", "cors_origins", mode="before")
    @classmethod
    def _csv(cls, value: Any) -> Any:
        return _split_csv(value)

    @field_validator("kafka_bootstrap")
    @classmethod
    def _hosts(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        if not value:
            return None
        for hostport in value:
            host, sep, port = hostport.rpartition(":")
            if not sep or not host or not port.isdigit():
                raise ValueError(f"{hostport!r} is not host:port")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        if value and not value.startswith(SCHEMES):
            raise ValueError("must start with " + ", ".join(SCHEMES))
        if value and value.startswith(SENTINEL_SCHEME):
            parse_sentinel_url(value)
        return value or None

    @field_validator("redis_prefix")
    @classmethod
    def _prefix_braces(cls, value: str) -> str:
        RedisKeys(value)  # raises ValueError on braces (the keys' hash tags use them)
        return value

    @field_validator("jwt_secret")
    @classmethod
    def _secret_len(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().encode()) < 32:
            raise ValueError("must be at least 32 bytes for HS256")
        return value

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
        return level

    @property
    def producer_acks(self) -> int | str:
        """`kafka_acks` as aiokafka takes it ("all" or an int)."""
        return "all" if self.kafka_acks == "all" else int(self.kafka_acks)

    @property
    def has_verification_key(self) -> bool:
        """A key every process shares: a secret, a public key file or a JWKS."""
        return bool(self.jwt_secret or self.jwt_public_key_file or self.jwt_jwks_url)

    @property
    def http_rate_per_s(self) -> float:
        return float(self.http_rate.removesuffix("/s"))

    @property
    def kafka_bootstrap_str(self) -> str | None:
        return ",".join(self.kafka_bootstrap) if self.kafka_bootstrap else None


def env_name(field: str) -> str:
    return f"{ENV_PREFIX}{field.upper()}"


def flag_name(field: str) -> str:
    return "--" + field.replace("_", "-")


def load_settings(**overrides: Any) -> Settings:
    """Build settings from the environment plus explicit overrides (CLI flags).

    Raises SettingsError naming each bad variable/flag and its value.
    """
    clean = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**clean)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            field = str(err["loc"][0]) if err["loc"] else "?"
            value = err.get("input")
            if field in (
                "jwt_secret",
                "webhook_secret",
                "smtp_url",
                "vapid_private_key",
                "twilio_auth_token",
                "slack_bot_token",
                "slack_signing_secret",
                "pagerduty_webhook_secret",
            ):
                value = "<hidden>"
            elif field == "redis_url" and isinstance(value, str):
                value = mask_password(value)
            lines.append(f"{env_name(field)} / {flag_name(field)} = {value!r}: {err['msg']}")
        raise SettingsError("invalid settings:\n  " + "\n  ".join(lines)) from None
