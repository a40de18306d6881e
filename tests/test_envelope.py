"""Envelope validation: every rejection names the field and the value."""

from __future__ import annotations

import json

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from notify_core.wire.events import TOPIC_ACTIONS, TOPIC_ALERTS, TOPIC_KPIS, TOPIC_SITES
from pipeline.envelope import MAX_MESSAGE_BYTES, BadInput, decode

TS = "2026-11-25T10:00:00Z"


def raw(obj: object) -> bytes:
    return orjson.dumps(obj)


def test_valid_alert_decodes():
    d = decode(
        TOPIC_ALERTS,
        raw(
            {
                "tenant_id": "t1",
                "site_id": "s1",
                "timestamp": TS,
                "payload": {"incident_id": "I-1", "title": "x", "severity": "critical"},
            }
        ),
    )
    assert d.envelope.tenant_id == "t1" and d.payload.severity == "critical"  # type: ignore[attr-defined]
    assert d.envelope.timestamp.tzinfo is not None


def test_naive_timestamp_is_taken_as_utc():
    d = decode(
        TOPIC_SITES,
        raw(
            {
                "tenant_id": "t",
                "site_id": "s",
                "timestamp": "2026-11-25T10:00:00",
                "payload": {"status": "up"},
            }
        ),
    )
    assert d.envelope.timestamp.utcoffset().total_seconds() == 0  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "topic, message, expected",
    [
        (TOPIC_ALERTS, b"", "not valid JSON"),
        (TOPIC_ALERTS, b"null", "envelope must be a JSON object, got NoneType"),
        (TOPIC_ALERTS, b'"text"', "got str"),
        (TOPIC_ALERTS, raw({"timestamp": TS, "payload": {}}), "tenant_id: Field required"),
        (
            TOPIC_ALERTS,
            raw({"tenant_id": 7, "timestamp": TS, "payload": {}}),
            "tenant_id: Input should be a valid string (got 7)",
        ),
        (
            TOPIC_ALERTS,
            raw({"tenant_id": "a:b", "timestamp": TS, "payload": {}}),
            "tenant_id: String should match pattern",
        ),
        (
            TOPIC_ALERTS,
            raw({"tenant_id": "t", "timestamp": "soon", "payload": {}}),
            "envelope: timestamp",
        ),
        (TOPIC_ALERTS, raw({"tenant_id": "t", "timestamp": TS, "payload": []}), "payload"),
        (
            TOPIC_ALERTS,
            raw({"tenant_id": "t", "timestamp": TS, "payload": {}, "extra": 1}),
            "extra: Extra inputs are not permitted",
        ),
        (
            TOPIC_ALERTS,
            raw(
                {
                    "tenant_id": "t",
                    "timestamp": TS,
                    "payload": {"incident_id": "i", "title": "x", "severity": "severe"},
                }
            ),
            "payload.severity: Input should be 'critical', 'major', 'minor', 'warning' or 'info'"
            " (got 'severe')",
        ),
        (
            TOPIC_ALERTS,
            raw(
                {
                    "tenant_id": "t",
                    "timestamp": TS,
                    "payload": {"incident_id": "i", "severity": "info"},
                }
            ),
            "payload.title: Field required",
        ),
        (
            TOPIC_KPIS,
            raw({"tenant_id": "t", "timestamp": TS, "payload": {"x": 1}}),
            "site_id: required on towerco.kpis.updates",
        ),
        (
            TOPIC_KPIS,
            raw({"tenant_id": "t", "site_id": "s", "timestamp": TS, "payload": {"x": None}}),
            "payload.x",
        ),
        (
            TOPIC_KPIS,
            raw({"tenant_id": "t", "site_id": "s", "timestamp": TS, "payload": {"x": [1]}}),
            "payload.x",
        ),
        (
            TOPIC_KPIS,
            raw({"tenant_id": "t", "site_id": "s", "timestamp": TS, "payload": {}}),
            "payload",
        ),
        (
            TOPIC_KPIS,
            b'{"tenant_id":"t","site_id":"s","timestamp":"2026-11-25T10:00:00Z",'
            b'"payload":{"x":1e999}}',
            "not",
        ),
        (
            TOPIC_SITES,
            raw(
                {
                    "tenant_id": "t",
                    "site_id": "s",
                    "timestamp": TS,
                    "payload": {"status": "on fire"},
                }
            ),
            "payload.status",
        ),
        (
            TOPIC_ACTIONS,
            raw(
                {
                    "tenant_id": "t",
                    "timestamp": TS,
                    "payload": {"incident_id": "i", "action": "delete", "user_id": "u"},
                }
            ),
            "payload.action",
        ),
    ],
)
def test_rejections_name_field_and_value(topic, message, expected):
    with pytest.raises(BadInput) as info:
        decode(topic, message)
    assert expected in info.value.reason


def test_oversized_message_is_refused_before_parsing():
    with pytest.raises(BadInput, match="exceeds"):
        decode(TOPIC_ALERTS, b" " * (MAX_MESSAGE_BYTES + 1))


def test_null_value_is_refused():
    with pytest.raises(BadInput, match="empty message"):
        decode(TOPIC_ALERTS, None)


@settings(deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise_anything_but_badinput(data):
    for topic in (TOPIC_ALERTS, TOPIC_KPIS, TOPIC_SITES, TOPIC_ACTIONS):
        try:
            decode(topic, data)
        except BadInput:
            pass


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["tenant_id", "site_id", "timestamp", "payload", "x"]), json_values
    )
)
def test_arbitrary_json_objects_never_crash(obj):
    for topic in (TOPIC_ALERTS, TOPIC_KPIS, TOPIC_SITES, TOPIC_ACTIONS):
        try:
            decode(topic, json.dumps(obj).encode())  # stdlib: big ints too
        except BadInput:
            pass


# mostly valid, so that both decoders get far enough to disagree on the details
idents = st.sampled_from(["t1", "site-9", "a_b.c", "x" * 64, "x" * 65, "a:b", "", "é"])
kpi_numbers = (
    st.integers(min_value=-(2**64), max_value=2**64)  # past int64: orjson refuses those
    | st.sampled_from(
        [10**400, 2**64, 2**64 - 1, -(2**63), -(2**63) - 1, 2**63, 1e308, -0.0, 5e-324]
    )
    | st.floats()  # NaN and +-inf too: json.dumps writes them as NaN / Infinity
    | st.sampled_from([True, None, "1", [1]])
)
kpi_envelopes = st.fixed_dictionaries(
    {
        "tenant_id": idents,
        "site_id": idents,
        "timestamp": st.sampled_from(
            [
                "2026-11-25T10:00:00Z",
                "2026-11-25T10:00:00",
                "2026-11-25T12:00:00+02:00",
                1764064800,
                1764064800.5,
                "yesterday",
                None,
            ]
        ),
        "payload": st.dictionaries(idents, kpi_numbers, min_size=1, max_size=3),
    }
)


def _kpi_env(value: object) -> dict[str, object]:
    return {"tenant_id": "t1", "site_id": "s1", "timestamp": TS, "payload": {"k": value}}


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None, max_examples=1000)
@given(kpi_envelopes)
@example(_kpi_env(float("nan")))  # json.dumps writes NaN / Infinity; pydantic would read them
@example(_kpi_env(float("-inf")))
@example(_kpi_env(2**64))  # orjson reads it as a float, pydantic as an int
@example(_kpi_env(-(2**63) - 1))
@example(_kpi_env(10**400))
def test_the_fast_kpi_decoder_accepts_and_refuses_exactly_what_decode_does(obj):
    """The pipeline's hot path validates KPI messages in one pass over their bytes; it
    must never let through what `decode` refuses, nor change a reason or a value."""
    _decoders_agree(json.dumps(obj).encode())  # stdlib: big ints, NaN and Infinity written


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["tenant_id", "site_id", "timestamp", "payload", "x"]), json_values
    )
)
def test_the_fast_kpi_decoder_agrees_on_any_json_object(obj):
    _decoders_agree(json.dumps(obj).encode())


@pytest.mark.parametrize("literal", [b"1e400", b"-1e999", b"NaN", b"Infinity", b"1.5", b"7"])
def test_the_fast_kpi_decoder_agrees_on_number_literals_json_dumps_never_writes(literal):
    _decoders_agree(
        b'{"tenant_id": "t1", "site_id": "s1", "timestamp": "%s", "payload": {"k": %s}}'
        % (TS.encode(), literal)
    )


def _decoders_agree(data: bytes) -> None:
    """`decode_kpi` refuses what `decode` refuses, with the same reason, and otherwise
    yields the same tenant, site, time, values and value types."""
    from pipeline.envelope import decode_kpi

    try:
        slow = decode(TOPIC_KPIS, data)
    except BadInput as exc:
        with pytest.raises(BadInput) as info:
            decode_kpi(data)
        assert info.value.reason == exc.reason
        return
    fast = decode_kpi(data)
    assert (fast.tenant_id, fast.site_id, fast.timestamp) == (
        slow.envelope.tenant_id,
        slow.envelope.site_id,
        slow.envelope.timestamp,
    )
    values = slow.payload.values  # type: ignore[attr-defined]
    assert fast.payload == values
    assert [type(v) for v in fast.payload.values()] == [type(v) for v in values.values()]
