"""The HTTP API's query strings and path parameters as pydantic models. A handler reads its
query with `parse_query(request.query, Model)` (and its body with `parse_body(request,
Model)`, the models of sio_server/contract/models.py); the OpenAPI document (api_models.openapi)
describes the same parameters from the same models (types, ranges, patterns, enums), so the
document cannot promise what a handler refuses, nor hide what it accepts.

Errors name the parameter and the value (`limit: Input should be less than or equal to
1000 (got '5000')`). Unknown parameters are ignored, as the API always did."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Literal, TypeVar, get_args

from aiohttp import web
from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)

from notify_core.reports.summary import GroupBy
from notify_core.state.incidents import STATUSES
from notify_core.wire.events import (
    IDENT_PATTERN,
    INCIDENT_ID_PATTERN,
    NOTIFICATION_TYPES,
    describe_error,
)
from notify_core.wire.ids import ID_PATTERN

MAX_LIMIT = 1000  # a page of history or audit
INCIDENTS_DEFAULT, INCIDENTS_MAX = 1000, 50_000

EVENT_ID_PATTERN = ID_PATTERN
_TYPE = "|".join(sorted(NOTIFICATION_TYPES))
_IDENT_BODY = IDENT_PATTERN.strip("^$")

EventId = Annotated[
    str, StringConstraints(pattern=EVENT_ID_PATTERN), Field(examples=["1700000000000-0"])
]
Ident = Annotated[str, StringConstraints(pattern=IDENT_PATTERN)]
_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})\Z"
)


def _rfc3339(value: object) -> object:
    """Only an ISO-8601 instant with an offset (pydantic alone would also take unix
    seconds and dates: the document says `date-time`)."""
    if isinstance(value, str) and not _RFC3339.match(value):
        raise ValueError("not an ISO-8601 instant with an offset or Z")
    return value


Instant = Annotated[
    AwareDatetime,
    BeforeValidator(_rfc3339),
    Field(description="ISO-8601 with an offset or Z"),
]
# in a query: a wrong token is a 401, not a 400
Token = Annotated[str, StringConstraints(pattern=r"^[!-~]{0,8192}$")]  # printable ASCII
# the longest query above, percent-encoded (3 characters a byte), fits a request line
MAX_REQUEST_LINE = 32 * 1024
Epoch = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]


class RequestError(ValueError):
    """A query or body the handler refuses (400), naming the field and the value."""


Q = TypeVar("Q", bound=BaseModel)


def parse_query(query: Mapping[str, str], model: type[Q]) -> Q:
    """`model` from a request's query (the first value of a repeated parameter)."""
    try:
        return model.model_validate({k: query[k] for k in query})
    except ValidationError as exc:
        raise RequestError(describe_error(exc)) from None


async def parse_body(request: web.Request, model: type[Q]) -> Q:
    """`model` from a request's JSON body (sio_server/contract/models.py)."""
    try:
        raw = await request.json()
    except ValueError:
        raise RequestError("body: must be JSON") from None
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise RequestError(describe_error(exc)) from None


class _Query(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class NotificationsQuery(_Query):
    since: EventId | None = Field(None, description="events after this id, oldest first")
    limit: int = Field(100, ge=1, le=MAX_LIMIT)
    types: Annotated[str, StringConstraints(pattern=rf"^({_TYPE})(,({_TYPE}))*$")] | None = Field(
        None, description="comma-separated event types"
    )

    @property
    def type_set(self) -> set[str] | None:
        return set(self.types.split(",")) if self.types else None


class StreamQuery(_Query):
    token: Token | None = Field(None, description="when no Authorization header")
    kpi_sites: (
        Annotated[
            str,
            StringConstraints(pattern=rf"^{_IDENT_BODY}(,{_IDENT_BODY})*$", max_length=1500),
        ]
        | None
    ) = Field(None, description="comma-separated sites (more: subscribe_kpis)")
    last_id: EventId | None = Field(None, description="resume after (or Last-Event-ID)")
    epoch: Epoch | None = None

    @property
    def sites(self) -> list[str]:
        return self.kpi_sites.split(",") if self.kpi_sites else []


class WsQuery(_Query):
    token: Token | None = None
    last_id: EventId | None = None
    epoch: Epoch | None = None


StatusFilter = Literal["open", "acknowledged", "snoozed", "resolved", "all"]
assert set(get_args(StatusFilter)) == {*STATUSES, "all"}  # one list of statuses


class IncidentsQuery(_Query):
    status: StatusFilter | None = Field(None, description="default: every status but resolved")
    site_id: Ident | None = None
    limit: int = Field(INCIDENTS_DEFAULT, ge=1, le=INCIDENTS_MAX)


class AuditQuery(_Query):
    since: EventId | None = None
    limit: int = Field(100, ge=1, le=MAX_LIMIT)
    action: Annotated[str, StringConstraints(max_length=64)] | None = None


class SitesQuery(_Query):
    region: Annotated[str, StringConstraints(max_length=128)] | None = None


class KeyQuery(_Query):
    """Heartbeat pings and inbound integrations: the key is the only credential."""

    key: Annotated[str, StringConstraints(max_length=512)] | None = Field(
        None, description="or the X-Notify-Key header"
    )


class OnCallQuery(_Query):
    at: Instant | None = Field(None, description="default: now")
    schedule: Ident | None = None


class ShiftsQuery(_Query):
    schedule: Ident
    from_: Instant | None = Field(None, alias="from", description="default: now")
    to: Instant | None = Field(None, description="default: a week after from")


class CalendarQuery(_Query):
    token: Token | None = Field(None, description="calendar apps cannot send headers")
    user_id: Ident | None = Field(None, description="only this person's shifts")


class ScheduleQuery(_Query):
    schedule: Ident | None = None


class HandoverQuery(_Query):
    schedule: Ident


class ResponseReportQuery(_Query):
    from_: Instant | None = Field(None, alias="from", description="default: a week before to")
    to: Instant | None = Field(None, description="default: now")
    group_by: GroupBy = "site"


class VoiceQuery(_Query):
    t: Annotated[str, StringConstraints(max_length=256)] | None = Field(
        None, description="the action link's token the call is about"
    )


def instant(value: datetime | None, default: datetime) -> datetime:
    """A parsed `Instant` in UTC, or `default`."""
    return value.astimezone(UTC) if value is not None else default


# path parameters: names to schemas, for the document (handlers check the same patterns
# with notify_core.wire.events.is_ident / is_incident_id)
PATH_SCHEMAS: dict[str, dict[str, object]] = {
    "incident_id": {"type": "string", "pattern": INCIDENT_ID_PATTERN},
    "tenant_id": {"type": "string", "pattern": IDENT_PATTERN},
    "user_id": {"type": "string", "pattern": IDENT_PATTERN},
    "tenant": {"type": "string", "pattern": IDENT_PATTERN},
    "name": {"type": "string", "pattern": IDENT_PATTERN},
    "schedule": {"type": "string", "pattern": IDENT_PATTERN},
}
