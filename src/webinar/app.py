"""The aiohttp application: pages, the signalling WebSocket, health, lifecycle."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import redis.asyncio as aioredis
from aiohttp import web

from webinar import __version__
from webinar.attendance import useragent
from webinar.attendance.ratings import Ratings, RatingSource
from webinar.attendance.service import AttendanceService
from webinar.broadcast.hls import HlsStreams
from webinar.broadcast.live import LiveStreamService
from webinar.broadcast.picture import StagePictures
from webinar.broadcast.recording import ComposedSettings
from webinar.broadcast.room import BroadcastService, BroadcastSettings
from webinar.broadcast.settings import LiveStreamSettingsService
from webinar.cluster import redis as cluster_redis
from webinar.cluster import worker
from webinar.cluster.bus import Bus, BusError
from webinar.cluster.leases import Lease
from webinar.cluster.pipes import Pipes
from webinar.cluster.placement import CpuMeter, Placement, origin_of, socket_url
from webinar.cluster.registry import LiveWorkers, Registry, WorkerInfo
from webinar.cluster.worker import WorkerIdentity, node_of
from webinar.config import Config
from webinar.content.clamd import Clamd
from webinar.content.external import external_for, frame_sources
from webinar.content.library import ContentService
from webinar.content.render import find_soffice
from webinar.content.stage import StageService
from webinar.followup.service import FollowUp
from webinar.http import forwarded, headers, inputs, language
from webinar.http.accounts import AccountMail, AccountPages, reset_limiter
from webinar.http.after import AfterPages
from webinar.http.api import MIDDLEWARES as API_MIDDLEWARES
from webinar.http.api import Api, setup_api
from webinar.http.api.auth import Authenticator
from webinar.http.auth import SignIn, login_limiter
from webinar.http.branding import BrandingFiles, BrandingPages, BrandingService
from webinar.http.content import ContentAccess, ContentPages
from webinar.http.dashboard import Dashboard
from webinar.http.embed import EmbedPages
from webinar.http.health import Health
from webinar.http.hls import HlsPages
from webinar.http.interaction import InteractionHttp
from webinar.http.live_stream import LiveStreamPages
from webinar.http.metrics import Metrics, Sources
from webinar.http.pages import EventPages
from webinar.http.recordings import RecordingPages
from webinar.http.site import Site
from webinar.http.stats import StatsPages, ticket_registrants
from webinar.http.team import EventTeam, TeamPages
from webinar.http.tickets import setup_ticketing
from webinar.http.tokens import TokenPages
from webinar.http.webhooks import WebhookPages
from webinar.i18n import environment as i18n_templates
from webinar.interaction import engagement
from webinar.interaction.service import InteractionService, cta_clicked
from webinar.recordings.library import MIB, RecordingService
from webinar.recordings.sharing import Publisher
from webinar.rooms.live import LiveRoom
from webinar.rooms.manager import RoomManager, RoomObserver
from webinar.rooms.reactions import remote_counts
from webinar.rooms.reasons import ByeReason
from webinar.rooms.roles import Role
from webinar.rooms.state import Phase, RoomEvent
from webinar.sfu import IceServer, Producer, Router, RouterConfig, TransportConfig, check_hooks
from webinar.signalling import stage as stage_handlers
from webinar.signalling import whip
from webinar.signalling.replication import Replication
from webinar.signalling.session import Services, replayer
from webinar.signalling.ws import (
    AddressCount,
    Connection,
    shutdown_connections,
    websocket_handler,
)
from webinar.storage.sealing import load_sealer
from webinar.storage.store import Store
from webinar.tasks import stop_task, stop_tasks
from webinar.ticketing import Ticketing, embedding
from webinar.ticketing.books import local_attempts
from webinar.ticketing.desk import TicketDesk
from webinar.ticketing.shared import RedisSeats, SharedTicketing
from webinar.ticketing.shared import Unavailable as SeatsUnavailable
from webinar.turn import ice_servers_for
from webinar.webhooks.service import Webhooks
from webinar.webhooks.signing import WebhookEvent

logger = logging.getLogger(__name__)

CONFIG = web.AppKey("config", Config)
STORE = web.AppKey("store", Store)
ROOMS = web.AppKey("rooms", RoomManager)
SERVICES = web.AppKey("services", Services)
CONNECTIONS = web.AppKey("connections", set[Connection])
SOCKETS = web.AppKey("sockets", AddressCount)
TEMPLATES = web.AppKey("templates", jinja2.Environment)
METRICS = web.AppKey("metrics", Metrics)
DRAINING = web.AppKey("draining", list[bool])
RECORDINGS = web.AppKey("recordings", RecordingService)
ATTENDANCE = web.AppKey("attendance", AttendanceService)
PUBLISHER = web.AppKey("publisher", Publisher)
#: Where each event's live stream goes (webinar.broadcast.settings).
LIVE_STREAM_SETTINGS = web.AppKey("live_stream_settings", LiveStreamSettingsService)
LIVE_STREAM = web.AppKey("live_stream", LiveStreamService)
BRANDING = web.AppKey("branding", BrandingService)
BROADCAST = web.AppKey("broadcast", BroadcastService)
TICKETING = web.AppKey("ticketing", Ticketing)
TICKET_DESK = web.AppKey("ticket_desk", TicketDesk)
ACCOUNT_PAGES = web.AppKey("account_pages", AccountPages)
WEBHOOKS = web.AppKey("webhooks", Webhooks)
#: Ratings of events (their signed links) and the end of events with the thank-you e-mail.
RATINGS = web.AppKey("ratings", Ratings)
FOLLOWUP = web.AppKey("followup", FollowUp)
#: Which process this is (worker 0 of 1: the single-process server); see cluster/worker.py.
WORKER = web.AppKey("worker", WorkerIdentity)
#: Unix time the app was built (the worker's start, in /healthz).
STARTED_AT = web.AppKey("started_at", float)
#: This worker's entry in Redis and the view of every worker (several workers only).
REGISTRY = web.AppKey("registry", Registry)
PLACEMENT = web.AppKey("placement", Placement)
CPU = web.AppKey("cpu", CpuMeter)
JOBS = web.AppKey("jobs", Lease)
#: The WHIP publishers and WHEP players of this worker (signalling/whip.py).
MEDIA_SESSIONS = web.AppKey("media_sessions", whip.MediaSessions)


def web_root() -> Path:
    """The browser client: packaged as ``webinar/web`` or the repository's ``web/``."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "web", here.parents[1] / "web"):
        if (candidate / "templates").is_dir():
            return candidate
    raise FileNotFoundError("the web/ folder (templates and static files) is missing")


def router_config(config: Config) -> RouterConfig:
    ice = config.ice
    return RouterConfig(
        max_cameras=config.rooms.max_cameras,
        transport=TransportConfig(
            ice_servers=[
                IceServer(urls=list(s.urls), username=s.username, credential=s.credential)
                for s in ice.servers
            ],
            host_addresses=list(ice.host_addresses),
            udp_port_min=ice.udp_port_min,
            udp_port_max=ice.udp_port_max,
            announced_ip=ice.announced_ip,
        ),
    )


@dataclass(frozen=True, slots=True)
class Peers:
    """This process as one of several workers sharing rooms through Redis."""

    worker_id: int
    redis_url: str
    workers: int = 2
    pipe_host: str = "127.0.0.1"
    pipe_ports: tuple[int, int] | None = None
    #: The set of live worker ids (the registry), for ending places of dead workers.
    live_workers: Callable[[], Awaitable[LiveWorkers]] | None = None


PEERS = web.AppKey("peers", Peers)
REPLICATION = web.AppKey("replication", Replication)
PIPES = web.AppKey("pipes", Pipes)
INTERACTION_HTTP = web.AppKey("interaction_http", InteractionHttp)
CONTENT = web.AppKey("content", ContentService)
CONTENT_ACCESS = web.AppKey("content_access", ContentAccess)
STAGE = web.AppKey("stage", StageService)
REDIS = web.AppKey("redis", aioredis.Redis)
BUS = web.AppKey("bus", Bus)
#: The JSON API (/api/v1) and its OpenAPI description.
API = web.AppKey("api", Api)
#: The rooms' HLS outputs being served (webinar.broadcast.hls).
HLS_STREAMS = web.AppKey("hls_streams", HlsStreams)


def create_app(
    config: Config,
    store: Store | None = None,
    identity: WorkerIdentity | None = None,
    *,
    peers: Peers | None = None,
) -> web.Application:
    """Build the application. ``store`` defaults to the SQLite store in the data dir;
    it is opened and closed with the app. ``identity`` defaults to what the supervisor passed
    in the environment (none: the single-process server); a worker the supervisor started
    shares rooms with the others (``peers`` from its identity, the registry telling which
    workers live). ``peers`` given: this is one of several workers (tests/cluster)."""
    identity = worker.current() if identity is None else identity
    if identity.udp_port_min is not None:  # this worker's share of the media port range
        ice = dataclasses.replace(
            config.ice, udp_port_min=identity.udp_port_min, udp_port_max=identity.udp_port_max
        )
        config = dataclasses.replace(config, ice=ice)
    middlewares = [
        forwarded.middleware(config.http.trusted_proxies),
        headers.middleware(
            config.http.embed_origins,
            connect=lambda: _node_origins(app),
            origins_of=lambda event_id: _event_origins(app, event_id),
            frames=frame_sources(config.content.external_providers),
        ),
        language.middleware,  # before refuse_nul: its refusal is in the request's language
        inputs.refuse_nul,
        *API_MIDDLEWARES,  # the API's one error envelope; deprecated paths' headers
    ]
    app = web.Application(client_max_size=1024 * 1024, middlewares=middlewares)
    app[CONFIG] = config
    app[WORKER] = identity
    app[STARTED_AT] = time.time()
    app[STORE] = store if store is not None else Store.from_config(config)
    app[CONNECTIONS] = set()
    app[SOCKETS] = AddressCount(config.signalling.max_sockets_per_address)
    app[METRICS] = Metrics()
    app[METRICS].sources = Sources(
        rooms=lambda: app.get(ROOMS),
        connections=lambda: len(app[CONNECTIONS]),
        traffic=lambda: app[SERVICES].traffic if SERVICES in app else None,
        webhooks=lambda: app.get(WEBHOOKS),
        pipes=lambda: app.get(PIPES),
    )
    app[CPU] = CpuMeter()
    app[DRAINING] = [False]
    if peers is None and identity.clustered and identity.redis_url is not None:

        async def live_workers() -> LiveWorkers:
            return await app[REGISTRY].live()

        peers = Peers(
            worker_id=identity.worker_id,
            redis_url=identity.redis_url,
            workers=identity.workers,
            pipe_host=identity.pipe_host,
            live_workers=live_workers,
        )
    shared: SharedTicketing | None = None
    if peers is not None:
        app[PEERS] = peers
        app[REDIS] = aioredis.from_url(
            peers.redis_url,
            socket_timeout=10.0,
            socket_connect_timeout=2.0,
            health_check_interval=5,
        )

        async def evict_remote(worker: int, seat_id: str, reason: ByeReason) -> None:
            await app[BUS].send(worker, "seat-evict", {"seat": seat_id, "reason": reason.value})

        shared = SharedTicketing(app[REDIS], peers.worker_id, evict_remote)
    root = web_root()
    app[TEMPLATES] = i18n_templates(root / "templates")
    app.cleanup_ctx.append(_lifecycle)
    app.on_shutdown.append(_say_goodbye)
    site = Site(store=app[STORE], render=_render, public_url=config.http.public_url)
    # One check of bearer tokens for the API and /metrics (admin.token is an admin-scoped one).
    api_auth = Authenticator(app[STORE], config.admin.token)
    health = Health(
        store=app[STORE],
        admin_token=config.admin.token,
        admin_bearer=api_auth.is_admin,
        rooms=lambda: app.get(ROOMS),
        connections=lambda: len(app[CONNECTIONS]),
        draining=lambda: app[DRAINING][0],
        worker=lambda: worker_info(app),
        registry=lambda: app.get(REGISTRY),
        own_metrics=lambda: metrics_text(app),
    )
    app.router.add_routes(health.routes())
    app.router.add_get("/ws", ws_endpoint)
    app.router.add_routes(whip.routes(lambda request: request.app[MEDIA_SESSIONS]))
    app.router.add_routes(language.LanguageRoutes().routes())
    app[BRANDING] = BrandingService(app[STORE], config.shared_dir / "branding")
    app.router.add_routes(BrandingFiles(config.shared_dir / "branding").routes())
    app.router.add_routes(BrandingPages(site, app[BRANDING]).routes())
    app.router.add_routes(EventPages(site, embed_origins=config.http.embed_origins).routes())
    app.router.add_static("/static/", root / "static", append_version=True)
    tickets = setup_ticketing(
        app,
        config,
        site,
        root / "templates",
        shared=shared,
        jobs=identity.runs_jobs,
        jobs_gate=functools.partial(_holds_jobs, app) if identity.node else None,
        alone=not identity.clustered,
    )
    app[TICKETING] = tickets.ticketing
    app[TICKET_DESK] = tickets.desk
    embed = EmbedPages(site, config.http.embed_origins)
    app.router.add_routes(embed.routes())
    dashboard = Dashboard(
        site=site,
        hooks=tickets,
        embed=embed,
        external_providers=config.content.external_providers,
    )
    app.router.add_routes(SignIn(site, login_limiter(shared)).routes())
    app.router.add_routes(dashboard.routes())
    account_mail = AccountMail(tickets.desk.mailer, tickets.desk)
    account_pages = AccountPages(site, account_mail, local_attempts(reset_limiter(shared)))
    app.router.add_routes(account_pages.routes())
    app[ACCOUNT_PAGES] = account_pages
    app.on_cleanup.append(lambda _app: account_pages.close())
    team = EventTeam(
        site,
        account_mail,
        tickets.ticketing,
        config.shared_dir,
        rooms=lambda: app.get(ROOMS),
    )
    app.router.add_routes(TeamPages(site, team).routes())
    interaction = InteractionHttp(
        store=app[STORE],
        data_dir=config.shared_dir,
        admin_token=config.admin.token,
        rooms=lambda: app.get(ROOMS),
        secret=lambda: app[SERVICES].interaction_secret,
        owned_event=site.owned_event,
        render=_render,
        event_links=dashboard.event_view,
        count=app[METRICS].count_interaction,
    )
    app.router.add_routes(interaction.routes())
    app[INTERACTION_HTTP] = interaction
    app[RECORDINGS] = RecordingService(
        app[STORE],
        config.shared_dir / "recordings",
        quota_bytes=config.recording.quota_mb * MIB,
    )
    composed = ComposedSettings(
        height=config.recording.composed_height,
        preset=config.recording.composed_preset,
        video_kbit=config.recording.composed_video_kbit,
    )
    # Recording links go out like every other e-mail: SMTP per [mail], else .eml files.
    app[PUBLISHER] = Publisher(
        app[STORE],
        app[RECORDINGS],
        tickets.desk.mailer,
        registrant_languages=tickets.desk.registrant_languages,
    )
    app.router.add_routes(RecordingPages(site, app[RECORDINGS], app[PUBLISHER]).routes())
    uploads = config.uploads
    app[CONTENT] = ContentService(
        app[STORE],
        config.shared_dir / "content",
        max_file_bytes=uploads.max_file_mb * MIB,
        quota_bytes=uploads.quota_mb * MIB,
        scanner=(
            None
            if uploads.clamd_socket is None
            else Clamd(uploads.clamd_socket, timeout=uploads.scan_timeout_seconds)
        ),
        require_scan=uploads.require_scan,
        max_pages=uploads.max_pages,
        soffice=find_soffice(),
    )
    app[STAGE] = StageService(app[STORE], app[CONTENT])
    app[CONTENT_ACCESS] = ContentAccess(
        store=app[STORE],
        ticketing=lambda: app[TICKETING],
        secret=lambda: app[SERVICES].interaction_secret,
        presenter=interaction.presenter_may_upload,
        rooms=lambda: app.get(ROOMS),
    )
    app.router.add_routes(
        ContentPages(site, app[CONTENT], app[CONTENT_ACCESS], app[STAGE].offered_now).routes()
    )
    app[HLS_STREAMS] = HlsStreams(config.shared_dir / "hls")
    app.router.add_routes(HlsPages(app[HLS_STREAMS], app[CONTENT_ACCESS]).routes())
    app[ATTENDANCE] = AttendanceService(app[STORE], sources=[*engagement.sources(), RatingSource()])
    app[RATINGS] = Ratings(
        app[STORE], secret=lambda: load_sealer(config.data_dir).derive("event-ratings")
    )
    app[FOLLOWUP] = FollowUp(
        app[STORE],
        app[ATTENDANCE],
        app[RATINGS],
        tickets.desk.mailer,
        config.http.base_url,
        publisher=app[PUBLISHER],
        gate=functools.partial(_holds_jobs, app) if identity.node else None,
    )
    app.router.add_routes(AfterPages(site, app[FOLLOWUP], app[RATINGS], shared=shared).routes())
    app[LIVE_STREAM_SETTINGS] = LiveStreamSettingsService(app[STORE])
    app[LIVE_STREAM] = LiveStreamService(app[LIVE_STREAM_SETTINGS])
    # One compositor per live room for the composed recording, the live stream out and HLS.
    broadcast = BroadcastSettings(
        encoder=composed.encoder(), composed_recording=config.recording.composed
    )

    async def language_of(event_id: str) -> str | None:
        event = await app[STORE].get_event(event_id)
        return event.language if event is not None else None

    app[BROADCAST] = BroadcastService(
        broadcast,
        live=app[LIVE_STREAM],
        hls=app[HLS_STREAMS],
        event_of=app[STORE].get_event,
        # what the stage shows besides cameras (a presentation page, the whiteboard)
        pictures=StagePictures(
            app[CONTENT],
            size=(broadcast.encoder.width, broadcast.encoder.height),
            language_of=language_of,
        ),
    )
    app.router.add_routes(
        LiveStreamPages(site, app[LIVE_STREAM], rooms=lambda: app.get(ROOMS)).routes()
    )
    stats = StatsPages(
        site,
        app[ATTENDANCE],
        app[RECORDINGS],
        app[PUBLISHER],
        rooms=lambda: app.get(ROOMS),
        stage=app[STAGE],
        ratings=app[RATINGS],
        registrants=ticket_registrants(tickets.desk),
    )
    app.router.add_routes(stats.routes())
    pages = WebhookPages(
        webhooks=lambda: app[WEBHOOKS],
        site=site,
        allow_private=config.webhooks.allow_private_addresses,
        admin_token=config.admin.token,
    )
    app.router.add_routes(pages.routes())
    app.router.add_routes(TokenPages(site).routes())
    app[API] = setup_api(
        app,
        store=app[STORE],
        auth=api_auth,
        tickets=tickets,
        interaction=interaction,
        stats=stats,
        attendance=app[ATTENDANCE],
        recordings=app[RECORDINGS],
        publisher=app[PUBLISHER],
        content=app[CONTENT],
        stage=app[STAGE],
        webhooks=lambda: app[WEBHOOKS],
        allow_private_webhooks=config.webhooks.allow_private_addresses,
        public_url=config.http.public_url,
        embed_origins=config.http.embed_origins,
        render=_render,
        external_providers=config.content.external_providers,
        team=team,
        live_stream=app[LIVE_STREAM_SETTINGS],
        branding=app[BRANDING],
    )
    return app


async def _event_origins(app: web.Application, event_id: str) -> tuple[str, ...]:
    """The event's own origins allowed to frame its pages (webinar.ticketing.embedding)."""
    return await app[STORE].run_sql(lambda db: embedding.sql_origins(db, event_id))


def worker_info(app: web.Application) -> WorkerInfo:
    """This worker as /healthz and the registry show it."""
    identity = app[WORKER]
    rooms = app.get(ROOMS)
    return WorkerInfo(
        worker_id=identity.worker_id,
        pid=os.getpid(),
        rooms=len(rooms.rooms()) if rooms is not None else 0,
        connections=len(app[CONNECTIONS]),
        port=identity.direct_port,
        pipe_host=identity.pipe_host,
        started_at=app[STARTED_AT],
        draining=app[DRAINING][0],
        node_url=app[CONFIG].node_url if identity.node else "",
        capacity=app[CONFIG].node_capacity if identity.node else 0,
        cpu=app[CPU].sample(),
        cpu_limit=app[CONFIG].cluster.node_cpu_limit,
        participants=sum(1 for c in app[CONNECTIONS] if c.session.participant is not None)
        + (len(app[MEDIA_SESSIONS]) if MEDIA_SESSIONS in app else 0),  # WHIP, WHEP
    )


def metrics_text(app: web.Application) -> str:
    """This worker's own /metrics text."""
    return app[METRICS].render()


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    store = app[STORE]
    identity = app[WORKER]
    if not store.is_open:
        await store.open()
    # With several workers only the one running the periodic jobs sends webhooks; the others
    # record theirs in the delivery log, which that one looks at every second.
    webhooks = Webhooks(
        store,
        config.webhooks,
        deliver=functools.partial(_holds_jobs, app) if identity.node else identity.runs_jobs,
        poll_seconds=1.0 if identity.clustered else 60.0,
    )
    await webhooks.start()
    app[WEBHOOKS] = webhooks
    swept = await app[CONTENT].sweep()  # uploads a dead worker left half-way
    if swept:
        logger.info("forgot %d unfinished upload(s)", swept)
    # presentations: those whose rendering stopped half-way are rendered again (all of them
    # when this process is the only worker; else those whose worker died)
    await app[CONTENT].start(exclusive=not identity.clustered)
    app[RECORDINGS].on_ready = lambda event_id, data: webhooks.emit(
        WebhookEvent.RECORDING_READY, data, event_id=event_id
    )
    app[TICKET_DESK].notify = lambda kind, event_id, data: webhooks.emit(
        WebhookEvent(kind), data, event_id=event_id
    )
    followup = app[FOLLOWUP]
    interaction = InteractionService(store, app[METRICS].count_interaction)
    rooms = RoomManager(
        router_config(config),
        max_participants=config.rooms.max_participants,
        observer=Observers((webhooks, followup)),
        max_rooms=config.rooms.max_rooms,
        recording_hooks=app[RECORDINGS],
        media_totals=app[METRICS].media,
        broadcast=app[BROADCAST].driver,
        save_reactions=interaction.save_reactions,
    )
    app[ROOMS] = rooms
    metrics = app[METRICS]
    app[SERVICES] = Services(
        get_event=store.get_event,
        rooms=rooms,
        ice_servers=functools.partial(ice_servers_for, config),
        heartbeat_interval=config.signalling.heartbeat_seconds,
        max_message_bytes=config.signalling.max_message_bytes,
        hello_timeout=config.signalling.hello_timeout_seconds,
        ticketing=app[TICKETING],
        interaction=interaction,
        stage=app[STAGE],
        # Each participant's pass names them: their downloads count (the engagement export).
        content_pass=lambda event_id, who: app[CONTENT_ACCESS].issue(event_id, who=who)[0],
        external_player=lambda event: external_for(event, config.content.external_providers),
        on_error=metrics.count_error,
        on_joined=metrics.joined,
        on_chat_delivered=metrics.chat_delivered,
        is_draining=lambda: app[DRAINING][0],
        recordings=app[RECORDINGS],
        live_stream=app[LIVE_STREAM],
        attendance=app[ATTENDANCE],
        ratings=app[RATINGS],
        placement=functools.partial(_place, app) if identity.node else None,
        # Click links verify on any worker and after a restart.
        interaction_secret=load_sealer(config.data_dir).derive("cta-click-links"),
    )
    app[MEDIA_SESSIONS] = whip.MediaSessions(
        app[SERVICES],
        worker_id=app[PEERS].worker_id if PEERS in app else identity.worker_id,
        per_address=app[SOCKETS],
    )
    if not identity.clustered:
        # With several workers the supervisor does this once, before any worker starts: a
        # worker starting again must not close the sessions the others have open.
        await app[ATTENDANCE].close_open_sessions(ByeReason.SERVER_RESTART)
    await metrics.start()
    # The user-agent rules compile once per process (about 0.3 s): not on the first join.
    warming = asyncio.get_running_loop().create_task(asyncio.to_thread(useragent.warm_up))
    if identity.runs_jobs:  # the thank-you e-mails go out where reminders do
        await followup.start()
    registry: Registry | None = None
    watching: asyncio.Task[None] | None = None
    own_redis: aioredis.Redis | None = None
    if identity.redis_url is not None:
        if REDIS in app:  # the peers' client (closed with them)
            redis = app[REDIS]
        else:
            redis = own_redis = await cluster_redis.connect(identity.redis_url)
        registry = Registry(
            redis,
            identity,
            sample=lambda: worker_info(app),
            metrics_text=lambda: metrics_text(app),
        )
        await registry.start()
        app[REGISTRY] = registry
        if identity.node:
            placement = app[PLACEMENT] = Placement(identity.node, registry.live_workers)
            watching = asyncio.get_running_loop().create_task(placement.watch())
            if identity.runs_jobs:  # worker 1 of each node; the lease holder runs them
                jobs = app[JOBS] = Lease(redis, "jobs", f"worker-{identity.worker_id}")
                jobs.start()
    cluster = await _join_peers(app) if PEERS in app else None
    try:
        yield
    finally:
        await stop_task(watching)
        if JOBS in app:
            await app[JOBS].close()
        if registry is not None:
            await registry.close()
        await metrics.stop()
        await shutdown_connections(app[CONNECTIONS])
        await app[MEDIA_SESSIONS].close()
        await rooms.close()
        await followup.close()
        await stop_task(warming)
        if cluster is not None:
            await cluster.aclose()
        await webhooks.close()
        await app[CONTENT].close()
        if own_redis is not None:
            await own_redis.aclose()
        await asyncio.sleep(0)
        await store.close()


@dataclass(frozen=True, slots=True)
class Observers:
    """Every room observer, told in turn (one's trouble never keeps it from the next)."""

    each: tuple[RoomObserver, ...]

    def room_event(self, room_id: str, event: RoomEvent) -> None:
        for observer in self.each:
            try:
                observer.room_event(room_id, event)
            except Exception:
                logger.exception("room observer %s failed", type(observer).__name__)

    def room_opened(self, room_id: str, phase: Phase) -> None:
        for observer in self.each:
            try:
                observer.room_opened(room_id, phase)
            except Exception:
                logger.exception("room observer %s failed", type(observer).__name__)

    def room_closed(self, room_id: str, phase: Phase) -> None:
        for observer in self.each:
            try:
                observer.room_closed(room_id, phase)
            except Exception:
                logger.exception("room observer %s failed", type(observer).__name__)


def _holds_jobs(app: web.Application) -> bool:
    """On a cluster of nodes: this worker holds the jobs lease (runs reminders, webhooks)."""
    lease = app.get(JOBS)
    return lease is not None and lease.held


def _node_origins(app: web.Application) -> list[str]:
    """The WebSocket origins of the cluster's nodes (none off a cluster)."""
    placement = app.get(PLACEMENT)
    return [origin_of(url) for url in placement.urls()] if placement is not None else []


#: The roles whose joins go to the node of the room's stage.
_FLOOR_ROLES = (Role.HOST, Role.PRESENTER)


async def _place(app: web.Application, room: LiveRoom, role: Role) -> str | None:
    """Which node serves a join (webinar.cluster.placement): None for this one."""
    placement = app.get(PLACEMENT)
    if placement is None:
        return None
    if role in _FLOOR_ROLES:
        floor = [
            node_of(room.worker_of.get(p.participant_id, app[WORKER].worker_id))
            for p in room.state.participants.values()
            if p.role in _FLOOR_ROLES and p.connected
        ]
        url = await placement.stage_move(floor)
    else:
        url = await placement.attendee_move()
    return None if url is None else socket_url(url)


async def _join_peers(app: web.Application) -> contextlib.AsyncExitStack:
    """Share rooms with the other workers: the bus, the room logs, the media pipes."""
    peers = app[PEERS]
    services = app[SERVICES]
    stack = contextlib.AsyncExitStack()
    redis = app[REDIS]
    stack.push_async_callback(redis.aclose)
    bus = app[BUS] = Bus(redis, peers.worker_id)
    seats = app[TICKETING].seats
    if isinstance(seats, RedisSeats):
        held = seats

        async def seat_evict(body: dict[str, Any], _sender: int) -> None:
            await held.evict_local(str(body["seat"]), ByeReason(body["reason"]))

        bus.on("seat-evict", seat_evict)
        await seats.start()
        stack.push_async_callback(seats.close)
    ticketing = app[TICKETING]
    telling: set[asyncio.Task[None]] = set()

    async def others() -> list[int]:
        """The other live workers (of every node)."""
        if peers.live_workers is None:
            return [w for w in range(1, peers.workers + 1) if w != peers.worker_id]
        return sorted((await peers.live_workers()).ids - {peers.worker_id})

    async def tell_cancelled(event_id: str) -> None:
        for other in await others():
            try:
                await bus.send(other, "event-cancelled", {"event": event_id})
            except BusError:
                logger.warning("could not tell worker %d that %s was cancelled", other, event_id)

    def cancelled_here(event_id: str) -> None:
        task = asyncio.get_running_loop().create_task(tell_cancelled(event_id))
        telling.add(task)
        task.add_done_callback(telling.discard)

    async def cancelled_elsewhere(body: dict[str, Any], _sender: int) -> None:
        ticketing.end_event(str(body["event"]), everywhere=False)

    ticketing.tell_others = cancelled_here
    bus.on("event-cancelled", cancelled_elsewhere)

    async def tell_clicked(body: dict[str, Any]) -> None:
        for other in await others():
            try:
                await bus.send(other, "cta-clicked", body)
            except BusError:
                logger.debug("could not tell worker %d of a click", other)

    def clicked_here(event_id: str, cta_id: str, clicks: int) -> None:
        body = {"event": event_id, "cta": cta_id, "clicks": clicks}
        task = asyncio.get_running_loop().create_task(tell_clicked(body))
        telling.add(task)
        task.add_done_callback(telling.discard)

    async def clicked_elsewhere(body: dict[str, Any], _sender: int) -> None:
        room = services.rooms.get(str(body["event"]))
        cta_clicked(room, str(body["cta"]), int(body["clicks"]))

    app[INTERACTION_HTTP].tell_others = clicked_here
    bus.on("cta-clicked", clicked_elsewhere)

    # Reactions: each worker's window of a room goes to the room's other workers (those with
    # people there), which add it to their next burst: one bus message per worker a window.
    async def tell_reactions(room_id: str, workers: list[int], counts: dict[str, int]) -> None:
        for other in workers:
            try:
                await bus.send(other, "reactions", {"event": room_id, "counts": counts})
            except BusError:
                logger.debug("could not tell worker %d of reactions", other)

    def reactions_here(room: LiveRoom, counts: dict[str, int]) -> None:
        workers = sorted(set(room.worker_of.values()) - {peers.worker_id})
        if not workers:
            return
        task = asyncio.get_running_loop().create_task(tell_reactions(room.room_id, workers, counts))
        telling.add(task)
        task.add_done_callback(telling.discard)

    async def reactions_elsewhere(body: dict[str, Any], _sender: int) -> None:
        room = services.rooms.get(str(body.get("event")))
        if room is not None and not room.closed:
            room.reactions.merge(remote_counts(body.get("counts")))

    services.rooms.relay_reactions = reactions_here
    bus.on("reactions", reactions_elsewhere)
    # A PATCH or DELETE of a WHIP/WHEP session reaches the worker that holds it.
    media_sessions = app[MEDIA_SESSIONS]

    async def ask_holder(worker_id: int, asked: dict[str, Any]) -> dict[str, Any]:
        return await bus.request(worker_id, "media-session", asked)

    media_sessions.forward = ask_holder
    bus.on("media-session", media_sessions.remote)
    stack.push_async_callback(stop_tasks, telling)
    await bus.start()
    stack.push_async_callback(bus.close)
    rooms = services.rooms

    def producer_of(room_id: str, stream_id: str) -> Producer | None:
        room = rooms.get(room_id)
        return room.producer(stream_id) if room is not None else None

    def router_of(room_id: str) -> Router | None:
        room = rooms.get(room_id)
        return room.router if room is not None and not room.closed else None

    pipes = Pipes(
        bus,
        producer_of=producer_of,
        router_of=router_of,
        host=peers.pipe_host,
        ports=peers.pipe_ports,
        redis=redis,
        live_workers=peers.live_workers,
    )
    app[PIPES] = pipes
    stack.push_async_callback(pipes.close)
    replication = Replication(
        redis,
        peers.worker_id,
        replay_interaction=replayer(services),
        load_interaction=stage_handlers.loader(services),
        relays=pipes,
        lost=lambda room_id, pid: app[ATTENDANCE].participant_lost(
            room_id, pid, ByeReason.DISCONNECTED.value
        ),
    )
    app[REPLICATION] = replication
    services.rooms.replication = replication
    stack.push_async_callback(replication.close)
    if peers.live_workers is not None:
        live_workers = peers.live_workers

        async def sweep() -> None:
            while True:
                await asyncio.sleep(1.0)
                try:
                    live = await live_workers()
                    pipes.forget_dead(live)
                    if isinstance(seats, RedisSeats):
                        for worker in await seats.holders() - live.ids:
                            await seats.forget_worker(worker)
                    await replication.sweep(live.alive, time.monotonic())
                    await replication.keep_recorders()
                except SeatsUnavailable as exc:  # Redis away: the next turn does it
                    logger.debug("sweeping waits for Redis: %s", exc)
                except Exception:
                    logger.exception("sweeping the places of dead workers failed")

        task = asyncio.get_running_loop().create_task(sweep())
        stack.push_async_callback(stop_task, task)
    return stack


async def _say_goodbye(app: web.Application) -> None:
    """On SIGINT/SIGTERM: tell every client, close their sockets, let sessions leave."""
    app[DRAINING][0] = True
    connections = app[CONNECTIONS]
    await shutdown_connections(connections)
    media_sessions = app.get(MEDIA_SESSIONS)
    if media_sessions is not None:
        await media_sessions.close()
    for _ in range(50):
        if not connections:
            break
        await asyncio.sleep(0.05)


async def ws_endpoint(request: web.Request) -> web.StreamResponse:
    app = request.app
    return await websocket_handler(request, app[SERVICES], app[CONNECTIONS], app[SOCKETS])


def _render(request: web.Request, name: str, status: int = 200, **context: Any) -> web.Response:
    template = request.app[TEMPLATES].get_template(name)
    html = template.render(version=__version__, **language.page_context(request), **context)
    return web.Response(text=html, status=status, content_type="text/html")


def run_app(config: Config, store: Store | None = None) -> None:
    """Run until SIGTERM (drain) or SIGINT; then close every connection, room and task."""
    check_hooks()  # fail at start, loudly, if aiortc changed under us
    from webinar import logs, server  # server imports this module

    identity = worker.current()
    logs.configure(config.log, worker=identity.worker_id if identity.clustered else None)
    server.run(config, store)
