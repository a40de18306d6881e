"""Every HTTP route the server serves besides Socket.IO and the streams, mounted in one
place: the signed-in users' API by resource (`sio_server.api`), the callers that are not
signed-in users (`sio_server.inbound`) and the dashboard. What is optional comes in one
`HttpFeatures` the composition root fills (None: that part is absent); what the routes
share with the sockets comes in `CoreParts`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from redis.asyncio import Redis

from escalation.oncall.directory import OnCallDirectory
from escalation.people.contacts import PeopleStore
from escalation.people.reach import PersonSender
from escalation.receivers.push import PushStore, VapidKeys
from notify_core.action_links import ActionLinks
from notify_core.history.store import History
from notify_core.in_force import View
from notify_core.obs.audit import AuditLog
from notify_core.obs.readiness import Readiness
from notify_core.reports.archive import ArchiveStore
from notify_core.revocations import Revocations
from notify_core.state.incidents import IncidentStore
from notify_core.state.snapshots import SnapshotStore
from notify_core.state.timeline import Timeline
from notify_core.suppression.store import SuppressionStore
from notify_core.thresholds.rules import RuleSet
from sio_server.admission.auth import Authenticator
from sio_server.admission.limits import AddressGuard, HttpRateLimiter
from sio_server.admission.origin import OriginPolicy
from sio_server.api.admin import AdminApi
from sio_server.api.http import ApiGate, cors_middleware
from sio_server.api.incidents import IncidentsApi
from sio_server.api.notifications import NotificationsApi
from sio_server.api.oncall import OnCallApi
from sio_server.api.people import PeopleApi
from sio_server.api.push import PushApi
from sio_server.api.reports import ReportsApi
from sio_server.api.service import ServiceApi
from sio_server.api.sites import SitesApi
from sio_server.api.suppression import SuppressionApi
from sio_server.api.thresholds import ThresholdsApi
from sio_server.dashboard_page import DashboardPage
from sio_server.inbound.action_links import ActionLinksApi
from sio_server.inbound.chatops import ChatOpsApi, Once
from sio_server.inbound.heartbeats import HeartbeatsApi, HeartbeatSources
from sio_server.inbound.integrations import IntegrationsApi
from sio_server.inbound.twilio import TwilioApi, TwilioReplies
from sio_server.incident_actions import IncidentActions
from sio_server.presence import Presence


@dataclass(frozen=True)
class HttpFeatures:
    """The optional parts of the HTTP surface; each None leaves its routes out."""

    rules: View[RuleSet] | None = None  # GET /api/v1/thresholds
    suppression: SuppressionStore | None = None  # maintenance, silences, sites
    archive: ArchiveStore | None = None  # the reports' year
    push: tuple[PushStore, VapidKeys] | None = None
    integrations: IntegrationsApi | None = None
    oncall: OnCallDirectory | None = None
    heartbeats: HeartbeatSources | None = None
    action_links: ActionLinks | None = None
    people: tuple[PeopleStore, PersonSender] | None = None
    # the Slack signing secret and the PagerDuty webhook secret, read when a callback comes
    chatops: tuple[Callable[[], str | None], Callable[[], str | None]] | None = None
    twilio: TwilioReplies | None = None  # answers to SMS and voice pages
    oidc: dict[str, Any] | None = None  # the dashboard's sign-in (issuer, client, scopes)
    http_rate: HttpRateLimiter | None = None  # per token; the contract's default if None


NO_FEATURES = HttpFeatures()


@dataclass(frozen=True)
class CoreParts:
    """What the routes share with the sockets (built by the server)."""

    auth: Authenticator
    readiness: Readiness
    history: History
    actions: IncidentActions
    incidents: IncidentStore | None
    timeline: Timeline | None
    snapshots: SnapshotStore | None
    audit: AuditLog | None
    revocations: Revocations | None
    presence: Presence
    guard: AddressGuard
    shared: tuple[Redis, str] | None
    origins: OriginPolicy


def mount_http(app: web.Application, f: HttpFeatures, core: CoreParts) -> None:
    api_gate = ApiGate(core.auth, f.http_rate or HttpRateLimiter(20.0, 40.0))
    app.middlewares.append(cors_middleware(core.origins))
    _mount_api(app, api_gate, f, core)
    _mount_inbound(app, api_gate, f, core)


def _mount_api(app: web.Application, api_gate: ApiGate, f: HttpFeatures, core: CoreParts) -> None:
    for resource in (
        ServiceApi(core.readiness),
        NotificationsApi(api_gate, core.history),
        IncidentsApi(
            api_gate, core.actions, core.incidents, core.timeline, f.suppression, core.presence
        ),
        ThresholdsApi(api_gate, f.rules),
        AdminApi(api_gate, core.audit, core.revocations),
    ):
        resource.add_routes(app)
    if f.suppression is not None:
        SuppressionApi(api_gate, f.suppression, core.audit).add_routes(app)
        SitesApi(api_gate, f.suppression, core.incidents, core.snapshots).add_routes(app)
    if core.incidents is not None and core.timeline is not None:
        store = f.suppression
        sites = (lambda: store.sites) if store is not None else None
        ReportsApi(
            api_gate, core.incidents, core.timeline, sites, f.oncall, f.suppression, f.archive
        ).add_routes(app)
    if f.push is not None:
        PushApi(api_gate, f.push[0], f.push[1], core.audit).add_routes(app)
    if f.integrations is not None:
        f.integrations.add_routes(app)
    if f.oncall is not None:
        OnCallApi(api_gate, f.oncall, core.audit).add_routes(app)


def _mount_inbound(
    app: web.Application, api_gate: ApiGate, f: HttpFeatures, core: CoreParts
) -> None:
    DashboardPage(f.oidc).add_routes(app)
    if f.heartbeats is not None:
        HeartbeatsApi(api_gate, f.heartbeats, core.audit, core.guard).add_routes(app)
    if f.action_links is not None:
        sites_of = f.people[0].sites_of if f.people is not None else None
        ActionLinksApi(f.action_links, core.incidents, core.actions, sites_of).add_routes(app)
    if f.people is not None:
        subscriptions = f.push[0] if f.push else None
        PeopleApi(api_gate, f.people[0], f.people[1], subscriptions, core.audit).add_routes(app)
        once = Once(core.shared[0] if core.shared else None, core.shared[1] if core.shared else "")
        if f.chatops is not None:
            ChatOpsApi(core.actions, f.people[0], once, *f.chatops).add_routes(app)
        if f.twilio is not None and f.action_links is not None:
            TwilioApi(
                core.actions,
                f.people[0],
                f.twilio.replies,
                f.action_links,
                once,
                f.twilio.auth_token,
                f.twilio.public_url,
            ).add_routes(app)
