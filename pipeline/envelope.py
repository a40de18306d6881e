"""Decode and validate one Kafka message: bytes in, typed input or a BadInput reason out.

Pure: no I/O. The reason names the field path and the value at fault; it travels
with the raw message to the dead-letter topic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError

from notify_core.wire.events import (
    TOPIC_ACTIONS,
    TOPIC_ALERTS,
    TOPIC_KPIS,
    TOPIC_SITES,
    ActionPayload,
    Envelope,
    IncidentPayload,
    KpiMessage,
    KpiPayload,
    SiteStatusPayload,
    describe_error,
)

MAX_MESSAGE_BYTES = 256 * 1024


class BadInput(ValueError):
    """The message cannot become a notification; `reason` says why, precisely."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Decoded:
    topic: str
    envelope: Envelope
    payload: BaseModel


_PAYLOADS: dict[str, type[BaseModel]] = {
    TOPIC_ALERTS: IncidentPayload,
    TOPIC_SITES: SiteStatusPayload,
    TOPIC_ACTIONS: ActionPayload,
}
_NEEDS_SITE = {TOPIC_KPIS, TOPIC_SITES}


def decode(topic: str, raw: bytes | None) -> Decoded:
    if raw is None:
        raise BadInput("empty message (null value)")
    if len(raw) > MAX_MESSAGE_BYTES:
        raise BadInput(f"message of {len(raw)} bytes exceeds {MAX_MESSAGE_BYTES}")
    try:
        data: Any = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadInput(f"not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise BadInput(f"envelope must be a JSON object, got {type(data).__name__}")
    try:
        env = Envelope.model_validate(data)
    except ValidationError as exc:
        raise BadInput(f"envelope: {describe_error(exc)}") from None
    if topic in _NEEDS_SITE and not env.site_id:
        raise BadInput(f"site_id: required on {topic} (got {data.get('site_id')!r})")
    try:
        if topic == TOPIC_KPIS:
            payload: BaseModel = KpiPayload.model_validate({"values": env.payload})
        else:
            payload = _PAYLOADS[topic].model_validate(env.payload)
    except ValidationError as exc:
        raise BadInput(f"payload: {describe_error(exc, 'payload.')}") from None
    return Decoded(topic, env, payload)


def decode_kpi(raw: bytes | None) -> KpiMessage:
    """A KPI message in one validation pass over its bytes (the pipeline's hot path).

    What the fast model refuses is decoded again by `decode`, so a bad message gets the
    same reason, naming the field and value, as on any other topic.
    """
    if raw is not None and len(raw) <= MAX_MESSAGE_BYTES:
        try:
            return KpiMessage.model_validate_json(raw)
        except ValidationError:
            pass
    d = decode(TOPIC_KPIS, raw)  # raises BadInput with the precise reason
    assert isinstance(d.payload, KpiPayload)
    # only reached if the fast model is stricter than the slow path somewhere
    return KpiMessage.model_construct(
        tenant_id=d.envelope.tenant_id,
        site_id=d.envelope.site_id,
        timestamp=d.envelope.timestamp,
        payload=dict(d.payload.values),
    )
