"""Server configuration: typed defaults, a TOML file, ``WEBINAR_*`` environment variables.

Precedence, lowest first: built-in defaults, the TOML file, environment variables, command-line
flags (applied by the CLI with :meth:`Config.with_overrides`). Every key of the file can be set by
an environment variable named ``WEBINAR_<SECTION>_<KEY>`` (``WEBINAR_<KEY>`` for top-level keys),
for example ``WEBINAR_HTTP_PORT=9000``. docs/configuration.md lists every key.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import ipaddress
import json
import math
import os
import re
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import NewType
from urllib.parse import urlsplit

ENV_PREFIX = "WEBINAR_"


class ConfigError(ValueError):
    """The configuration is invalid. The message names the offending key and the problem."""


# ---------------------------------------------------------------------------------------------
# The configuration itself. Each dataclass validates itself, so values built in code, loaded
# from a file or replaced with dataclasses.replace() are all checked the same way.


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpConfig:
    """The HTTP listener and the public address used in printed links."""

    host: str = "0.0.0.0"
    port: int = 8080
    #: Base URL for links, e.g. ``https://webinar.example.org``; None derives one from host/port.
    public_url: str | None = None
    #: Reverse proxies (IP addresses or CIDR networks) whose X-Forwarded-For/-Proto are believed.
    trusted_proxies: tuple[str, ...] = ()
    #: A connection must send a whole request head within this many seconds of opening, or it
    #: is closed (slow or silent clients cannot hold connections open).
    header_timeout_seconds: float = 15.0
    #: Origins (``https://site.example``) allowed to show the attendee and presenter rooms in
    #: a frame; every other page, and the rooms for any other origin, refuse to be framed.
    embed_origins: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for origin in self.embed_origins:
            parts = urlsplit(origin)
            if (
                parts.scheme not in ("https", "http")
                or not parts.netloc
                or origin != (f"{parts.scheme}://{parts.netloc}")
            ):
                _fail("http.embed_origins", f"not an origin like https://site.example: {origin!r}")
        _check_seconds("http.header_timeout_seconds", self.header_timeout_seconds, 0, 600)
        if not self.host or any(c.isspace() for c in self.host):
            _fail("http.host", f"must be a host name or IP address, got {self.host!r}")
        _check_range("http.port", self.port, 1, 65535)
        if self.public_url is not None:
            object.__setattr__(self, "public_url", _check_public_url(self.public_url))
        for network in self.trusted_proxies:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                _fail("http.trusted_proxies", f"not an IP address or network: {network!r}")

    @property
    def base_url(self) -> str:
        """The base URL for links, without a trailing slash."""
        if self.public_url is not None:
            return self.public_url
        host = self.host
        if host in ("0.0.0.0", "::"):
            host = "localhost"
        elif ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"


@dataclass(frozen=True, slots=True, kw_only=True)
class IceServer:
    """One STUN or TURN server offered to the SFU's ICE agent."""

    urls: tuple[str, ...]
    username: str | None = None
    credential: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class IceConfig:
    """ICE (connectivity) settings of the SFU."""

    #: STUN/TURN servers. Empty by default: no third-party server is ever contacted unasked.
    servers: tuple[IceServer, ...] = ()
    #: Local IP addresses to gather host candidates on; empty means every non-loopback interface.
    host_addresses: tuple[str, ...] = ()
    #: Public IP address to advertise in candidates (for a server behind 1:1 NAT).
    announced_ip: str | None = None
    #: UDP port range for media; both set or both None (any free port).
    udp_port_min: int | None = None
    udp_port_max: int | None = None

    def __post_init__(self) -> None:
        for index, server in enumerate(self.servers):
            _check_ice_server(f"ice.servers[{index}]", server)
        for address in self.host_addresses:
            _check_ip("ice.host_addresses", address)
        if self.announced_ip is not None:
            _check_ip("ice.announced_ip", self.announced_ip)
        if (self.udp_port_min is None) != (self.udp_port_max is None):
            _fail("ice.udp_port_min", "udp_port_min and udp_port_max must be set together")
        if self.udp_port_min is not None and self.udp_port_max is not None:
            _check_range("ice.udp_port_min", self.udp_port_min, 1024, 65535)
            _check_range("ice.udp_port_max", self.udp_port_max, 1024, 65535)
            if self.udp_port_min > self.udp_port_max:
                _fail(
                    "ice.udp_port_min",
                    f"must not exceed ice.udp_port_max ({self.udp_port_min} > {self.udp_port_max})",
                )


@dataclass(frozen=True, slots=True, kw_only=True)
class RoomsConfig:
    """Limits of one event's room."""

    #: Cameras (video publishers) live in one room at once.
    max_cameras: int = 4
    #: People in one room at once, presenters included.
    max_participants: int = 500
    #: Events live (rooms open) on this server at once; a join that would open one more is refused.
    max_rooms: int = 50

    def __post_init__(self) -> None:
        _check_range("rooms.max_cameras", self.max_cameras, 1, 7)
        _check_range("rooms.max_participants", self.max_participants, 1, 100_000)
        _check_range("rooms.max_rooms", self.max_rooms, 1, 10_000)


@dataclass(frozen=True, slots=True, kw_only=True)
class SignallingConfig:
    """The WebSocket signalling channel."""

    #: Largest signalling message accepted from a client, in bytes.
    max_message_bytes: int = 65536
    #: Interval between WebSocket pings; a client that stops answering is disconnected.
    heartbeat_seconds: float = 20.0
    #: A WebSocket that has not sent ``hello`` this many seconds after opening is closed.
    hello_timeout_seconds: float = 10.0
    #: Open WebSockets and WHIP/WHEP sessions per client address (IPv6: per /64); 0: no limit.
    max_sockets_per_address: int = 100

    def __post_init__(self) -> None:
        _check_range("signalling.max_message_bytes", self.max_message_bytes, 1024, 16 * 1024 * 1024)
        _check_range("signalling.max_sockets_per_address", self.max_sockets_per_address, 0, 100000)
        _check_seconds("signalling.hello_timeout_seconds", self.hello_timeout_seconds, 0, 600)
        _check_seconds("signalling.heartbeat_seconds", self.heartbeat_seconds, 0, 3600)


@dataclass(frozen=True, slots=True, kw_only=True)
class TurnConfig:
    """A TURN server for browsers behind UDP-blocking firewalls (coturn's REST scheme)."""

    #: TURN URLs handed to browsers, e.g. ``turns:turn.example.org:443?transport=tcp``.
    urls: tuple[str, ...] = ()
    #: Shared secret (coturn ``static-auth-secret``): browsers get time-limited credentials.
    secret: str | None = None
    #: How long handed-out TURN credentials stay valid, in seconds.
    ttl_seconds: int = 3600

    def __post_init__(self) -> None:
        for url in self.urls:
            if not url.startswith(("turn:", "turns:")):
                _fail("turn.urls", f"{url!r} is not a turn: or turns: URL")
        if self.urls and not self.secret:
            _fail("turn.secret", "is required when turn.urls is set")
        if self.secret is not None and len(self.secret) < 16:
            _fail("turn.secret", "must have at least 16 characters")
        _check_range("turn.ttl_seconds", self.ttl_seconds, 60, 7 * 86400)


@dataclass(frozen=True, slots=True, kw_only=True)
class AdminConfig:
    """Operator endpoints."""

    #: Bearer token for /metrics and /api/admin/. Unset: /metrics is loopback-only, the API off.
    token: str | None = None

    def __post_init__(self) -> None:
        if self.token is not None and len(self.token) < 16:
            _fail("admin.token", "must have at least 16 characters")


X264_PRESETS = (
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordingConfig:
    """Recordings of events (WebM files under <data_dir>/recordings)."""

    #: Storage each organiser may fill with recordings, in MiB; 0 disables recording.
    quota_mb: int = 5120
    #: Each recording also holds the stage composed into one MP4 (H.264 + AAC).
    composed: bool = True
    #: The composed picture's height: 720 (1280x720) or 1080 (1920x1080).
    composed_height: int = 720
    #: libx264's preset for the composed picture (slower: smaller files, more CPU).
    composed_preset: str = "veryfast"
    #: The composed picture's video bitrate, in kbit/s.
    composed_video_kbit: int = 2500

    def __post_init__(self) -> None:
        _check_range("recording.quota_mb", self.quota_mb, 0, 100_000_000)
        if self.composed_height not in (720, 1080):
            _fail("recording.composed_height", "must be 720 or 1080")
        if self.composed_preset not in X264_PRESETS:
            _fail("recording.composed_preset", "must be one of " + ", ".join(X264_PRESETS))
        _check_range("recording.composed_video_kbit", self.composed_video_kbit, 300, 50_000)


@dataclass(frozen=True, slots=True, kw_only=True)
class UploadsConfig:
    """Files organisers and presenters upload to an event (webinar.content)."""

    #: Largest file, in MiB (the hosted products' 500 MB).
    max_file_mb: int = 500
    #: Storage each organiser may fill with uploads, in MiB; 0 disables uploads.
    quota_mb: int = 5120
    #: ClamAV's daemon: a Unix socket path, or host:port; unset: uploads are not scanned.
    clamd_socket: str | None = None
    #: Refuse uploads when no scanner is configured (instead of accepting them unscanned).
    require_scan: bool = False
    #: Seconds a scan may take before the upload is refused.
    scan_timeout_seconds: float = 120.0
    #: Most pages a presentation may have to be shown page by page (rendered to images).
    max_pages: int = 300

    def __post_init__(self) -> None:
        _check_range("uploads.max_file_mb", self.max_file_mb, 1, 100_000)
        _check_range("uploads.max_pages", self.max_pages, 1, 5000)
        _check_range("uploads.quota_mb", self.quota_mb, 0, 100_000_000)
        _check_seconds("uploads.scan_timeout_seconds", self.scan_timeout_seconds, 1.0, 3600.0)
        if self.clamd_socket is not None:
            value = self.clamd_socket.strip()
            if not value:
                _fail("uploads.clamd_socket", "must be a socket path or host:port")
            if not value.startswith("/"):
                host, sep, port = value.rpartition(":")
                if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
                    _fail("uploads.clamd_socket", "must be an absolute socket path or host:port")


#: An extra external-player host: ``player.example.com``, or ``*.example.com`` for its subdomains.
_PLAYER_HOST = re.compile(
    r"^(?:\*\.)?[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class ContentConfig:
    """Content on an event's stage (webinar.content): the external player's providers."""

    #: Extra hosts whose player URLs an event's external player link may be (framed as they
    #: are, https only), besides YouTube, Vimeo and Zoom: e.g. ["player.example.com",
    #: "*.stream.example.org"].
    external_providers: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        hosts = tuple(host.strip().lower().rstrip(".") for host in self.external_providers)
        for host in hosts:
            if not _PLAYER_HOST.match(host) or len(host) > 253:
                _fail(
                    "content.external_providers",
                    f"not a host name like player.example.com or *.example.com: {host!r}"
                    " (no https://, no path, no port)",
                )
        object.__setattr__(self, "external_providers", tuple(dict.fromkeys(hosts)))


@dataclass(frozen=True, slots=True, kw_only=True)
class TicketingConfig:
    """Booking rules and reservation-code windows (webinar.ticketing)."""

    #: A new event may start no sooner than this many minutes after it is booked.
    min_lead_minutes: int = 10
    #: ... and no later than this many days after.
    max_lead_days: int = 30
    #: Events an organiser may have active at once (an event is active until its booking ends).
    max_active_events: int = 3
    #: Days after its start a booking stays usable with the same ID and credentials.
    usable_days: int = 14
    #: Minutes before the lobby opens (the event's join window) that a reservation code works.
    code_early_minutes: int = 10
    #: Minutes after the scheduled end that a reservation code still works; then viewers leave.
    code_late_minutes: int = 15
    #: Wrong entry attempts (passwords, invitation tokens, reservation codes, unknown event
    #: IDs) one client address (IPv6: its /64) may make in five minutes.
    wrong_entries_per_address: int = 10
    #: Wrong entry attempts on one event from all addresses together in five minutes; beyond
    #: it, only an address that has not failed yet may try (once).
    wrong_entries_per_event: int = 100

    def __post_init__(self) -> None:
        _check_range("ticketing.min_lead_minutes", self.min_lead_minutes, 0, 7 * 1440)
        _check_range("ticketing.max_lead_days", self.max_lead_days, 1, 3660)
        _check_range("ticketing.max_active_events", self.max_active_events, 1, 100_000)
        _check_range("ticketing.usable_days", self.usable_days, 1, 3660)
        _check_range("ticketing.code_early_minutes", self.code_early_minutes, 0, 1440)
        _check_range("ticketing.code_late_minutes", self.code_late_minutes, 0, 1440)
        _check_range(
            "ticketing.wrong_entries_per_address", self.wrong_entries_per_address, 1, 10_000
        )
        _check_range("ticketing.wrong_entries_per_event", self.wrong_entries_per_event, 1, 100_000)


_SMTP_SECURITY = ("starttls", "tls", "none")


@dataclass(frozen=True, slots=True, kw_only=True)
class MailConfig:
    """Outgoing e-mail: SMTP, or .eml files in the outbox folder when no smtp_host is set."""

    #: SMTP server to send through; unset: write .eml files to the outbox instead.
    smtp_host: str | None = None
    smtp_port: int = 587
    #: ``starttls`` (upgrade after connecting), ``tls`` (TLS from the start) or ``none``.
    smtp_security: str = "starttls"
    smtp_username: str | None = None
    smtp_password: str | None = None
    #: The From: address of every message.
    from_address: str = "webinar@localhost"
    #: Folder for .eml files when no SMTP server is set; unset: ``<data_dir>/outbox``.
    outbox_dir: Path | None = None

    def __post_init__(self) -> None:
        _check_range("mail.smtp_port", self.smtp_port, 1, 65535)
        if self.smtp_security not in _SMTP_SECURITY:
            _fail("mail.smtp_security", f"must be one of {', '.join(_SMTP_SECURITY)}")
        if (self.smtp_username is None) != (self.smtp_password is None):
            _fail("mail.smtp_username", "smtp_username and smtp_password must be set together")
        if "@" not in self.from_address:
            _fail("mail.from_address", f"not an e-mail address: {self.from_address!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class PaymentsConfig:
    """Online payment for paid events (the manual provider needs nothing)."""

    #: Stripe secret API key (``sk_...``); with the webhook secret it enables Stripe Checkout.
    stripe_secret_key: str | None = None
    #: Signing secret of the Stripe webhook endpoint (``whsec_...``).
    stripe_webhook_secret: str | None = None
    #: Base URL of Stripe's API.
    stripe_api_url: str = "https://api.stripe.com"
    #: Webhooks signed longer ago than this many seconds are refused as replays.
    webhook_tolerance_seconds: int = 300

    def __post_init__(self) -> None:
        if (self.stripe_secret_key is None) != (self.stripe_webhook_secret is None):
            _fail(
                "payments.stripe_secret_key",
                "stripe_secret_key and stripe_webhook_secret must be set together",
            )
        if not self.stripe_api_url.startswith(("https://", "http://")):
            _fail("payments.stripe_api_url", "must be an http(s) URL")
        _check_range("payments.webhook_tolerance_seconds", self.webhook_tolerance_seconds, 1, 3600)

    @property
    def stripe_enabled(self) -> bool:
        return self.stripe_secret_key is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class TlsConfig:
    """HTTPS served directly; the pair is read again on SIGHUP (renewals need no restart)."""

    #: PEM certificate chain (e.g. Let's Encrypt ``fullchain.pem``); with key_file turns on HTTPS.
    cert_file: Path | None = None
    #: PEM private key of the certificate.
    key_file: Path | None = None

    def __post_init__(self) -> None:
        if (self.cert_file is None) != (self.key_file is None):
            _fail("tls.cert_file", "cert_file and key_file must be set together")

    @property
    def enabled(self) -> bool:
        return self.cert_file is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class LifecycleConfig:
    """Stopping: SIGTERM drains (no new joins, clients told), SIGINT stops at once."""

    #: Longest wait, after SIGTERM, for live rooms to end before everyone is disconnected.
    drain_seconds: float = 60.0

    def __post_init__(self) -> None:
        _check_seconds("lifecycle.drain_seconds", self.drain_seconds, 0, 86400, zero=True)


LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("debug", "info", "warning", "error")


@dataclass(frozen=True, slots=True, kw_only=True)
class LogConfig:
    """Server logs, written to standard error (journald keeps them under systemd)."""

    #: ``text`` (one readable line) or ``json`` (one JSON object a line, with room/participant IDs).
    format: str = "text"
    #: ``debug``, ``info``, ``warning`` or ``error``.
    level: str = "info"

    def __post_init__(self) -> None:
        if self.format not in LOG_FORMATS:
            _fail("log.format", f"must be one of {', '.join(LOG_FORMATS)}, got {self.format!r}")
        if self.level not in LOG_LEVELS:
            _fail("log.level", f"must be one of {', '.join(LOG_LEVELS)}, got {self.level!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhooksConfig:
    """Signed HTTP callbacks to the endpoints organisers add in the dashboard."""

    #: How long one delivery attempt may take, in seconds.
    timeout_seconds: float = 10.0
    #: Attempts per delivery before it is given up (the first one included).
    max_attempts: int = 8
    #: Wait before the first retry; each further retry waits twice as long (at most 1 hour).
    retry_base_seconds: float = 10.0
    #: Allow endpoints on loopback, private and link-local addresses (off: no SSRF into the VM).
    allow_private_addresses: bool = False
    #: Days the delivery log keeps finished deliveries.
    log_retention_days: int = 30

    def __post_init__(self) -> None:
        _check_seconds("webhooks.timeout_seconds", self.timeout_seconds, 0.1, 120, zero=True)
        _check_range("webhooks.max_attempts", self.max_attempts, 1, 50)
        _check_seconds(
            "webhooks.retry_base_seconds", self.retry_base_seconds, 0.01, 3600, zero=True
        )
        _check_range("webhooks.log_retention_days", self.log_retention_days, 1, 3650)


#: A number of worker processes; 0 stands for ``auto`` (one per CPU core of the machine).
WorkerCount = NewType("WorkerCount", int)
#: Most worker processes one machine may be given.
MAX_WORKERS = 256


def available_cores() -> int:
    """The CPU cores this process may run on (its affinity: a container's share), else all."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def parse_workers(text: str) -> WorkerCount:
    """``auto`` or a whole number from 1 to :data:`MAX_WORKERS` (``--workers``, the env var)."""
    stripped = text.strip().lower()
    if stripped == "auto":
        return WorkerCount(0)
    try:
        value = int(stripped, 10)
    except ValueError:
        raise ValueError(f"expected a number of workers or auto, got {text!r}") from None
    if not 1 <= value <= MAX_WORKERS:
        raise ValueError(f"must be between 1 and {MAX_WORKERS} or auto, got {value}")
    return WorkerCount(value)


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerConfig:
    """Processes: one (the default) or a supervisor with several workers on one machine."""

    #: Worker processes: a number, or ``"auto"`` for one per CPU core. 1 (the default) is the
    #: single-process server; more starts a supervisor, its workers and Redis (docs/deployment.md).
    workers: WorkerCount = WorkerCount(1)
    #: With several workers, worker k also listens on 127.0.0.1:<worker_port_base + k - 1>, so
    #: one worker can be reached directly (tests, debugging); unset: no direct ports.
    worker_port_base: int | None = None

    def __post_init__(self) -> None:
        if self.workers != 0:
            _check_range("server.workers", self.workers, 1, MAX_WORKERS)
        if self.worker_port_base is not None:
            _check_range("server.worker_port_base", self.worker_port_base, 1024, 65535)

    @property
    def worker_count(self) -> int:
        """The number of workers, ``auto`` resolved to the machine's CPU cores."""
        if self.workers == 0:
            return max(1, min(MAX_WORKERS, available_cores()))
        return int(self.workers)


_REDIS_SCHEMES = ("redis", "rediss", "unix")
#: Attendees a node takes per worker when ``cluster.node_capacity`` is 0 (benchmarks/README.md:
#: one worker forwards one camera + audio to ~400 subscribers at full load; this leaves room
#: for presenters, interaction and a second camera).
ATTENDEES_PER_WORKER = 250
_POSTGRES_SCHEMES = ("postgresql", "postgres")


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterConfig:
    """What the workers of one machine share (used only with more than one worker)."""

    #: Redis the workers share, e.g. ``redis://127.0.0.1:6379/0`` or ``unix:///run/redis.sock``;
    #: unset: the server starts a private redis-server on a Unix socket in the data dir.
    redis_url: str | None = None
    #: Address the workers' media pipes listen on and reach each other at.
    pipe_host: str = "127.0.0.1"
    #: This machine as a node of a cluster of several machines: the IP address the other
    #: nodes reach its media pipes at (its workers' pipes listen there). Set, ``webinar serve``
    #: runs as a node: it needs ``redis_url`` and ``database_url`` shared by every node.
    node_address: str | None = None
    #: The attendees this node takes before it sends newcomers to a less loaded node;
    #: 0: derived from its workers (:data:`ATTENDEES_PER_WORKER` each).
    node_capacity: int = 0
    #: The share of its workers' cores a node may use before it sends newcomers elsewhere
    #: (averaged over 10 s); 0: CPU plays no part, only ``node_capacity``.
    node_cpu_limit: float = 0.85
    #: The URL browsers reach this node itself at (a join moved here reconnects to it);
    #: unset: ``http.public_url`` on a single node, else ``http(s)://node_address:http.port``.
    node_url: str | None = None
    #: A folder every node sees (a shared mount) for recordings and uploaded images; unset:
    #: ``data_dir``. On a cluster of nodes, set it on every node to the same shared storage.
    shared_dir: Path | None = None
    #: The PostgreSQL database every node shares, e.g.
    #: ``postgresql://webinar:secret@db.example/webinar``; unset: the embedded SQLite file
    #: ``<data_dir>/webinar.sqlite3``.
    database_url: str | None = None

    def __post_init__(self) -> None:
        if self.database_url is not None:
            # The same rule as webinar.storage.db.check_database_url (config is a leaf).
            parts = urlsplit(self.database_url)
            shown = parts.scheme + "://…" if parts.password else self.database_url
            if parts.scheme not in _POSTGRES_SCHEMES:
                _fail(
                    "cluster.database_url",
                    f"must be a postgresql:// or postgres:// URL, got {shown!r}",
                )
            if not (parts.netloc or parts.query or parts.path.strip("/")):
                _fail("cluster.database_url", f"names no server or database: {shown!r}")
        if self.redis_url is not None:
            parts = urlsplit(self.redis_url)
            if parts.scheme not in _REDIS_SCHEMES or not (parts.netloc or parts.path):
                _fail(
                    "cluster.redis_url",
                    "must be a redis://, rediss:// or unix:// URL, got " + repr(self.redis_url),
                )
        _check_ip("cluster.pipe_host", self.pipe_host)
        if self.node_address is not None:
            _check_ip("cluster.node_address", self.node_address)
            if ipaddress.ip_address(self.node_address).is_unspecified:
                _fail("cluster.node_address", "must be an address other nodes can reach")
        _check_range("cluster.node_capacity", self.node_capacity, 0, 1_000_000)
        if not (math.isfinite(self.node_cpu_limit) and 0 <= self.node_cpu_limit <= 1):
            _fail("cluster.node_cpu_limit", f"must be between 0 and 1, got {self.node_cpu_limit}")
        if self.node_url is not None:
            parts = urlsplit(self.node_url)
            if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
                _fail(
                    "cluster.node_url",
                    f"must be an absolute http:// or https:// URL, got {self.node_url!r}",
                )

    @property
    def is_node(self) -> bool:
        """This machine is one node of several (``node_address`` is set)."""
        return self.node_address is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    """The whole server configuration."""

    http: HttpConfig = field(default_factory=HttpConfig)
    #: Folder holding the SQLite database and other server state.
    data_dir: Path = Path("data")
    ice: IceConfig = field(default_factory=IceConfig)
    rooms: RoomsConfig = field(default_factory=RoomsConfig)
    signalling: SignallingConfig = field(default_factory=SignallingConfig)
    turn: TurnConfig = field(default_factory=TurnConfig)
    admin: AdminConfig = field(default_factory=AdminConfig)
    tls: TlsConfig = field(default_factory=TlsConfig)
    lifecycle: LifecycleConfig = field(default_factory=LifecycleConfig)
    log: LogConfig = field(default_factory=LogConfig)
    webhooks: WebhooksConfig = field(default_factory=WebhooksConfig)

    def __post_init__(self) -> None:
        if self.cluster.is_node and self.cluster.redis_url is None:
            _fail("cluster.node_address", "a node needs cluster.redis_url, shared by every node")
        if self.cluster.is_node and self.cluster.database_url is None:
            _fail(
                "cluster.node_address",
                "a node needs cluster.database_url (PostgreSQL), shared by every node",
            )

    @property
    def node_url(self) -> str:
        """The URL browsers reach this node itself at (``cluster.node_url``, else derived)."""
        if self.cluster.node_url is not None:
            return self.cluster.node_url.rstrip("/")
        address = self.cluster.node_address
        if address is None:
            return self.base_url
        host = f"[{address}]" if ":" in address else address
        scheme = "https" if self.tls.enabled else "http"
        return f"{scheme}://{host}:{self.http.port}"

    @property
    def node_capacity(self) -> int:
        """The attendees this node takes before it moves newcomers elsewhere."""
        if self.cluster.node_capacity:
            return self.cluster.node_capacity
        return ATTENDEES_PER_WORKER * self.server.worker_count

    @property
    def shared_dir(self) -> Path:
        """Where recordings and uploaded images live (``cluster.shared_dir``, else data_dir)."""
        return self.cluster.shared_dir if self.cluster.shared_dir is not None else self.data_dir

    @property
    def base_url(self) -> str:
        """Base URL of links: ``http.public_url``, else derived (https when TLS is on)."""
        base = self.http.base_url
        if self.http.public_url is None and self.tls.enabled:
            base = "https://" + base.removeprefix("http://")
        return base

    recording: RecordingConfig = field(default_factory=RecordingConfig)
    uploads: UploadsConfig = field(default_factory=UploadsConfig)
    content: ContentConfig = field(default_factory=ContentConfig)
    ticketing: TicketingConfig = field(default_factory=TicketingConfig)
    mail: MailConfig = field(default_factory=MailConfig)
    payments: PaymentsConfig = field(default_factory=PaymentsConfig)
    server: ServerConfig = field(default_factory=ServerConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)

    def with_overrides(
        self,
        *,
        host: str | None = None,
        port: int | None = None,
        data_dir: Path | None = None,
        workers: WorkerCount | None = None,
    ) -> Config:
        """Return a copy with the given command-line values applied (None keeps the value)."""
        http = self.http
        if host is not None:
            http = dataclasses.replace(http, host=host)
        if port is not None:
            http = dataclasses.replace(http, port=port)
        server = self.server
        if workers is not None:
            server = dataclasses.replace(server, workers=workers)
        return dataclasses.replace(
            self,
            http=http,
            server=server,
            data_dir=self.data_dir if data_dir is None else data_dir,
        )


# ---------------------------------------------------------------------------------------------
# Validation helpers.


def _fail(key: str, problem: str) -> typing.NoReturn:
    raise ConfigError(f"{key}: {problem}")


def _check_seconds(key: str, value: float, low: float, high: float, *, zero: bool = False) -> None:
    """A finite number of seconds above ``low`` (or from ``low`` on, with ``zero``) up to
    ``high``."""
    above = value >= low if zero else value > low
    if not (math.isfinite(value) and above and value <= high):
        if zero:
            _fail(key, f"must be between {low:g} and {high:g}, got {value}")
        _fail(key, f"must be more than {low:g} and at most {high:g}, got {value}")


def _check_range(key: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        _fail(key, f"must be between {low} and {high}, got {value}")


def _check_ip(key: str, value: str) -> None:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        _fail(key, f"not an IP address: {value!r}")


def _check_public_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        _fail("http.public_url", f"must be an absolute http:// or https:// URL, got {value!r}")
    if parts.query or parts.fragment:
        _fail("http.public_url", f"must not have a query or fragment, got {value!r}")
    return value.rstrip("/")


_ICE_SCHEMES = ("stun:", "stuns:", "turn:", "turns:")


def _check_ice_server(key: str, server: IceServer) -> None:
    if not server.urls:
        _fail(f"{key}.urls", "must list at least one URL")
    for url in server.urls:
        if not url.startswith(_ICE_SCHEMES):
            _fail(f"{key}.urls", f"must start with stun:, stuns:, turn: or turns:, got {url!r}")
    if (server.username is None) != (server.credential is None):
        _fail(key, "username and credential must be set together")
    if server.username is None and any(url.startswith("turn") for url in server.urls):
        _fail(key, "TURN servers need a username and a credential")


# ---------------------------------------------------------------------------------------------
# Loading: keys are derived from the dataclasses' type hints, so the file, the environment
# and the dataclasses cannot drift apart.


class _Kind(enum.Enum):
    STR = "a string"
    INT = "an integer"
    FLOAT = "a number"
    BOOL = "a boolean"
    PATH = "a path"
    STR_LIST = "a list of strings"
    ICE_SERVERS = "a list of ICE server tables"
    WORKERS = 'a number of workers or "auto"'


_KIND_OF_TYPE: dict[object, _Kind] = {
    str: _Kind.STR,
    int: _Kind.INT,
    float: _Kind.FLOAT,
    bool: _Kind.BOOL,
    Path: _Kind.PATH,
    tuple[str, ...]: _Kind.STR_LIST,
    tuple[IceServer, ...]: _Kind.ICE_SERVERS,
    WorkerCount: _Kind.WORKERS,
}

_SECTIONS: dict[str, type[typing.Any]] = {
    "http": HttpConfig,
    "ice": IceConfig,
    "rooms": RoomsConfig,
    "signalling": SignallingConfig,
    "turn": TurnConfig,
    "admin": AdminConfig,
    "recording": RecordingConfig,
    "uploads": UploadsConfig,
    "content": ContentConfig,
    "ticketing": TicketingConfig,
    "mail": MailConfig,
    "payments": PaymentsConfig,
    "tls": TlsConfig,
    "lifecycle": LifecycleConfig,
    "log": LogConfig,
    "webhooks": WebhooksConfig,
    "server": ServerConfig,
    "cluster": ClusterConfig,
}


@dataclass(frozen=True, slots=True)
class _Key:
    section: str | None  # None for a top-level key
    name: str
    kind: _Kind
    optional: bool

    @property
    def dotted(self) -> str:
        return self.name if self.section is None else f"{self.section}.{self.name}"

    @property
    def env_var(self) -> str:
        return ENV_PREFIX + self.dotted.replace(".", "_").upper()


def _keys_of(section: str | None, cls: type) -> list[_Key]:
    hints = typing.get_type_hints(cls)
    keys = []
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        if section is None and f.name in _SECTIONS:
            continue
        args = typing.get_args(hint)
        optional = type(None) in args and len(args) == 2
        base = next(a for a in args if a is not type(None)) if optional else hint
        keys.append(_Key(section, f.name, _KIND_OF_TYPE[base], optional))
    return keys


def _all_keys() -> list[_Key]:
    keys = _keys_of(None, Config)
    for section, cls in _SECTIONS.items():
        keys.extend(_keys_of(section, cls))
    return keys


_KEYS: tuple[_Key, ...] = tuple(_all_keys())
_KEY_BY_DOTTED: dict[str, _Key] = {key.dotted: key for key in _KEYS}
_KEY_BY_ENV: dict[str, _Key] = {key.env_var: key for key in _KEYS}


def config_keys() -> list[tuple[str, str]]:
    """Every configuration key as ``(dotted_name, environment_variable)``, in file order."""
    return [(key.dotted, key.env_var) for key in _KEYS]


def _type_name(value: object) -> str:
    return {
        bool: "boolean",
        int: "integer",
        float: "number",
        str: "string",
        list: "array",
        dict: "table",
    }.get(type(value), type(value).__name__)


def _from_toml(key: _Key, value: object, name: str) -> object:
    """Convert a value read from TOML (or JSON) for ``key``; ``name`` is used in messages."""

    def wrong() -> typing.NoReturn:
        _fail(name, f"expected {key.kind.value}, got {_type_name(value)} {value!r}")

    match key.kind:
        case _Kind.STR:
            if not isinstance(value, str):
                wrong()
            return value
        case _Kind.INT:
            if isinstance(value, bool) or not isinstance(value, int):
                wrong()
            return value
        case _Kind.FLOAT:
            if isinstance(value, bool) or not isinstance(value, int | float):
                wrong()
            return float(value)
        case _Kind.BOOL:
            if not isinstance(value, bool):
                wrong()
            return value
        case _Kind.PATH:
            if not isinstance(value, str) or not value:
                wrong()
            return Path(value).expanduser()
        case _Kind.STR_LIST:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                wrong()
            return tuple(value)
        case _Kind.ICE_SERVERS:
            if not isinstance(value, list):
                wrong()
            return tuple(_ice_server(f"{name}[{i}]", item) for i, item in enumerate(value))
        case _Kind.WORKERS:
            if isinstance(value, bool) or not isinstance(value, int | str):
                wrong()
            try:
                return parse_workers(str(value))
            except ValueError as exc:
                _fail(name, str(exc))


def _ice_server(name: str, value: object) -> IceServer:
    if not isinstance(value, dict):
        _fail(name, f"expected a table, got {_type_name(value)} {value!r}")
    for item_key in value:
        if item_key not in ("urls", "username", "credential"):
            raise ConfigError(f"unknown key '{name}.{item_key}'")
    if "urls" not in value:
        _fail(f"{name}.urls", "missing")
    urls = value["urls"]
    if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
        _fail(f"{name}.urls", f"expected a list of strings, got {_type_name(urls)} {urls!r}")
    texts: dict[str, str | None] = {}
    for item_key in ("username", "credential"):
        text = value.get(item_key)
        if text is not None and not isinstance(text, str):
            _fail(f"{name}.{item_key}", f"expected a string, got {_type_name(text)} {text!r}")
        texts[item_key] = text
    return IceServer(urls=tuple(urls), username=texts["username"], credential=texts["credential"])


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def _from_env(key: _Key, text: str) -> object:
    """Convert the text of an environment variable for ``key``."""
    name = f"{key.env_var} ({key.dotted})"
    stripped = text.strip()
    if key.optional and not stripped:
        return None

    def wrong() -> typing.NoReturn:
        _fail(name, f"expected {key.kind.value}, got {text!r}")

    match key.kind:
        case _Kind.STR:
            return text
        case _Kind.INT:
            try:
                return int(stripped, 10)
            except ValueError:
                wrong()
        case _Kind.FLOAT:
            try:
                number = float(stripped)
            except ValueError:
                wrong()
            if not math.isfinite(number):
                wrong()
            return number
        case _Kind.BOOL:
            if stripped.lower() in _TRUE:
                return True
            if stripped.lower() in _FALSE:
                return False
            wrong()
        case _Kind.PATH:
            if not stripped:
                wrong()
            return Path(stripped).expanduser()
        case _Kind.STR_LIST:
            return tuple(part.strip() for part in text.split(",") if part.strip())
        case _Kind.ICE_SERVERS:
            if not stripped:
                return ()
            try:
                decoded = json.loads(stripped)
            except json.JSONDecodeError as exc:
                _fail(name, f"invalid JSON: {exc}")
            return _from_toml(key, decoded, name)
        case _Kind.WORKERS:
            try:
                return parse_workers(stripped)
            except ValueError as exc:
                _fail(name, str(exc))


def _read_toml(path: Path) -> dict[str, object]:
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except FileNotFoundError:
        raise ConfigError(f"config file {path}: not found") from None
    except OSError as exc:
        raise ConfigError(f"config file {path}: cannot read: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path}: invalid TOML: {exc}") from None


def _values_from_toml(document: Mapping[str, object]) -> dict[_Key, object]:
    values: dict[_Key, object] = {}
    for top, top_value in document.items():
        if top in _SECTIONS:
            if not isinstance(top_value, dict):
                _fail(top, f"expected a table, got {_type_name(top_value)} {top_value!r}")
            entries = [(f"{top}.{name}", value) for name, value in top_value.items()]
        else:
            entries = [(top, top_value)]
        for dotted, value in entries:
            key = _KEY_BY_DOTTED.get(dotted)
            if key is None:
                raise ConfigError(f"unknown key '{dotted}'")
            values[key] = _from_toml(key, value, dotted)
    return values


def _values_from_env(env: Mapping[str, str]) -> dict[_Key, object]:
    values: dict[_Key, object] = {}
    section_prefixes = tuple(f"{ENV_PREFIX}{section.upper()}_" for section in _SECTIONS)
    for var, text in env.items():
        key = _KEY_BY_ENV.get(var)
        if key is not None:
            values[key] = _from_env(key, text)
        elif var.startswith(section_prefixes):
            # A misspelt setting must not be silently ignored.
            raise ConfigError(f"unknown environment variable {var}")
    return values


def _build(values: Mapping[_Key, object]) -> Config:
    def section_args(section: str | None) -> dict[str, typing.Any]:
        return {key.name: value for key, value in values.items() if key.section == section}

    sections: dict[str, typing.Any] = {
        name: cls(**section_args(name)) for name, cls in _SECTIONS.items()
    }
    return Config(**section_args(None), **sections)


def load_config(path: Path | None, env: Mapping[str, str]) -> Config:
    """Build the configuration from defaults, the TOML file at ``path`` (if any) and ``env``.

    Raises ConfigError naming the key on an unknown key, a value of the wrong type, a value out
    of range or a missing or unreadable file.
    """
    values: dict[_Key, object] = {}
    if path is not None:
        document = _read_toml(path)
        try:
            values.update(_values_from_toml(document))
        except ConfigError as exc:
            raise ConfigError(f"config file {path}: {exc}") from None
    values.update(_values_from_env(env))
    return _build(values)


# ---------------------------------------------------------------------------------------------
# `webinar config example`: every key with its default, commented from the ``#:`` notes above.


def _field_notes(cls: type) -> dict[str, str]:
    """The ``#:`` comment lines written above each field of a config dataclass."""
    notes: dict[str, str] = {}
    pending: list[str] = []
    for line in inspect.getsource(cls).splitlines():
        text = line.strip()
        if text.startswith(("def ", "@property")):
            break  # fields come first; what follows are methods
        if text.startswith("#:"):
            pending.append(text[2:].strip())
        elif ":" in text and not text.startswith(("#", '"', "@")):
            name = text.split(":", 1)[0].strip()
            if name.isidentifier():
                notes[name] = " ".join(pending)
            pending = []
        else:
            pending = []
    return notes


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | Path):
        return json.dumps(str(value))
    if isinstance(value, tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return str(value)


def example_toml() -> str:
    """A commented configuration file with every key set to its default."""
    lines = [
        "# webinar.toml: every key with its default. Use with: webinar serve --config FILE",
        "# Every key can also be set by an environment variable: WEBINAR_<SECTION>_<KEY>.",
        "",
    ]

    def emit(cls: type, instance: object, section: str | None) -> None:
        notes = _field_notes(cls)
        for f in dataclasses.fields(cls):
            if section is None and f.name in _SECTIONS:
                continue
            value = getattr(instance, f.name)
            if notes.get(f.name):
                lines.append(f"# {notes[f.name]}")
            if value is None or value == ():
                lines.append(f"# {f.name} = ...  (unset by default)")
            elif isinstance(value, tuple) and value and dataclasses.is_dataclass(value[0]):
                lines.append(f"# {f.name}: see docs/configuration.md")
            else:
                lines.append(f"{f.name} = {_toml_value(value)}")

    defaults = Config()
    emit(Config, defaults, None)
    for section, cls in _SECTIONS.items():
        lines += ["", f"[{section}]"]
        doc = (cls.__doc__ or "").strip()
        if doc:
            lines.append(f"# {doc}")
        emit(cls, getattr(defaults, section), section)
    return "\n".join(lines) + "\n"
