"""Prometheus metrics shared by every component (one registry per process)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS_CONSUMED = Counter(
    "notify_events_consumed_total", "Kafka messages consumed, by topic", ["topic"]
)
NOTIFICATIONS = Counter(
    "notify_notifications_total", "Notifications stored and emitted, by type", ["type"]
)
DUPLICATES = Counter(
    "notify_duplicates_total", "Redelivered events dropped by the history dedupe", ["type"]
)
DEAD_LETTERS = Counter(
    "notify_dead_letters_total", "Rejected input messages, by source", ["source"]
)
CLIENT_ERRORS = Counter(
    "notify_client_errors_total", "Client events answered with an error", ["event", "reason"]
)
AUTH_FAILURES = Counter(
    "notify_auth_failures_total", "Refused connections and HTTP calls", ["channel", "reason"]
)
HTTP_REQUESTS = Counter("notify_http_requests_total", "HTTP API requests", ["route", "status"])
KAFKA_TO_EMIT = Histogram(
    "notify_kafka_to_emit_seconds",
    "From the Kafka record timestamp to the Socket.IO emit",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
STALE_ALERTS = Counter(
    "notify_stale_alerts_total",
    "Incident alerts raised no later than their incident's resolution (a late or"
    " redelivered copy), dropped instead of reopening it",
)
STORE_RETRIES = Counter(
    "notify_store_retries_total", "Retries of the history append (at-least-once)"
)
STATE_WRITE_ERRORS = Counter(
    "notify_state_write_errors_total",
    "Batched state writes (incident, escalation, timeline, snapshot, timer) Redis refused"
    " or that could not be sent (logged and dropped; the rest of the batch applied)",
)
ESCALATION_LEADER = Gauge(
    "notify_escalation_leader", "1 while this process runs the escalation scheduler"
)
CONSUMER_LAG = Gauge(
    "notify_kafka_consumer_lag",
    "Records on the broker past the last one this worker handled, per input partition",
    ["topic", "partition"],
)
READY = Gauge("notify_ready", "1 when every readiness check passes")
CONFIG_RELOADS = Counter(
    "notify_config_reloads_total", "Config reloads, by result (ok, invalid)", ["result"]
)
THRESHOLD_TRANSITIONS = Counter(
    "notify_threshold_transitions_total", "Threshold state transitions, by level", ["level"]
)
PIPELINE_BATCH_MESSAGES = Histogram(
    "notify_pipeline_batch_messages",
    "Kafka messages per fetch handled as one batch (NOTIFY_PIPELINE_BATCH)",
    buckets=(1, 10, 100, 500, 1000, 2500, 5000, 10000),
)
PIPELINE_BATCH_SECONDS = Histogram(
    "notify_pipeline_batch_seconds",
    "Time to handle one batch: validate, evaluate, store, emit, follow-ups",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
KPI_COALESCED = Counter(
    "notify_kpi_samples_coalesced_total",
    "Quiet KPI samples folded into a later kpi_update of the same site in the same batch",
)
DELIVERIES = Counter(
    "notify_deliveries_total",
    "Events handed to a connection, by path: direct (one pre-built WebSocket frame written"
    " to the socket), queued (engine.io's queue: polling, upgrades, backlog) or held"
    " (connection being recovered)",
    ["path"],
)
POLLING_REQUESTS = Counter(
    "notify_polling_requests_total",
    "HTTP requests at the listening socket's first look, by who answered: lean (a long-poll"
    " GET answered by sio_server.socketio.polling) or aiohttp (everything else: handshakes, POSTs,"
    " upgrades, the HTTP API)",
    ["path"],
)
SOCKET_WRITES = Counter(
    "notify_socket_writes_total",
    "Writes to WebSocket transports on the direct path (events emitted in the same loop"
    " iteration share one write per socket)",
)
AUDIT_RECORDS = Counter(
    "notify_audit_records_total",
    "Audit records written, by action and result",
    ["action", "result"],
)
AUDIT_FAILURES = Counter(
    "notify_audit_failures_total", "Audit records that could not be written (Kafka refused)"
)
CONNECTION_LIMITED = Counter(
    "notify_connections_limited_total",
    "Connections refused for the per-user or per-tenant limit",
    ["limit"],
)
HTTP_RATE_LIMITED = Counter(
    "notify_http_rate_limited_total", "HTTP API requests answered 429 (per-token rate)"
)
ADDRESSES_BLOCKED = Counter(
    "notify_addresses_blocked_total", "Addresses blocked after repeated refused handshakes"
)
SUPPRESSED = Counter(
    "notify_suppressed_total",
    "Incidents delivered quietly and pages held back, by reason",
    ["by"],
)
ORIGIN_REFUSED = Counter(
    "notify_origin_refused_total",
    "Browser connections refused for their Origin (not the daemon's own, not listed)",
    ["transport"],
)
SLOW_CLIENTS = Counter(
    "notify_slow_client_disconnects_total",
    "Connections cut off because they stopped reading (unsent bytes or queued packets over"
    " the bound); they resume from history",
    ["reason"],
)
ACK_DELIVERED = Counter(
    "notify_ack_required_delivered_total",
    "Alerts requiring acknowledgment delivered to a user (first delivery per user)",
)
ACK_CONFIRMED = Counter(
    "notify_ack_required_confirmed_total", "Of those, confirmed by the client (`received`)"
)
ACK_CONFIRM_SECONDS = Histogram(
    "notify_ack_confirm_seconds",
    "From delivery to the client's `received` confirmation",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
RECOVERIES = Counter("notify_recoveries_total", "Recoveries from last_id, by result", ["result"])
REPLAYED = Counter("notify_replayed_events_total", "Events sent by recovery")
WEBHOOKS = Counter("notify_webhooks_total", "Webhook deliveries, by result", ["result"])
REPLICA_CONFIRMATIONS = Counter(
    "notify_redis_replica_confirmations_total",
    "Batches whose Redis writes replicas confirmed before the Kafka offsets were committed"
    " (NOTIFY_REDIS_MIN_REPLICAS), by result: ok, timeout (the batch is written again)",
    ["result"],
)
REPLICA_WAIT_SECONDS = Histogram(
    "notify_redis_replica_wait_seconds",
    "Time a batch waited for its Redis replicas (WAIT)",
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
INGEST = Counter(
    "notify_ingest_total",
    "Alerts from inbound integrations (ok: produced; unchanged: a repeat, skipped;"
    " refused: bad key; invalid, too_large: bad body; unavailable: the broker did not ack)",
    ["integration", "result"],
)
ESCALATIONS = Counter("notify_escalations_total", "Escalation levels notified")
CHATOPS = Counter(
    "notify_chatops_requests_total",
    "Slack interactions and PagerDuty webhooks, by source and result: ok, refused (bad"
    " signature), invalid, unknown_user, repeat, refused_action",
    ["source", "result"],
)
ACTION_LINKS = Counter(
    "notify_action_links_total",
    "Action links used (POST /a/{token}), by result: ok, refused, gone (used, expired or"
    " resolved), unknown",
    ["result"],
)
HEARTBEAT_PINGS = Counter(
    "notify_heartbeat_pings_total",
    "Heartbeat pings over HTTP, by result: ok, refused (bad key or unknown heartbeat)",
    ["result"],
)
HEARTBEAT_CHANGES = Counter(
    "notify_heartbeat_changes_total",
    "Heartbeat incidents opened (a source went quiet) and resolved (it pinged again)",
    ["change"],
)
NOBODY_ON_CALL = Counter(
    "notify_oncall_nobody_total",
    "Levels whose schedule (or site_oncall) found nobody on call when they fired",
)
RECEIVER_DELIVERIES = Counter(
    "notify_receiver_deliveries_total",
    "Receiver delivery attempts (email, slack, teams, pagerduty, webpush, webhook), by result:"
    " ok, failed (retried later), gave_up",
    ["type", "result"],
)
ESCALATION_DELAY = Histogram(
    "notify_escalation_delay_seconds",
    "From a level's due time to its delivery",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
