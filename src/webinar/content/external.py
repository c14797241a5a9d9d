"""An event's external player (reenio's model): a YouTube, Vimeo or Zoom link, or a player of
a host the administrator allowed, shown to admitted attendees instead of (or beside) our own
stage.

The organiser enters a page link (``https://www.youtube.com/watch?v=…``, ``https://youtu.be/…``,
``https://vimeo.com/123``, ``https://us02web.zoom.us/w/123…``, …). :func:`parse_external` checks
it against the provider table (:data:`PROVIDERS`) plus the administrator's extra hosts
(``[content] external_providers``) and turns it into what a page shows:

- YouTube: ``https://www.youtube-nocookie.com/embed/<id>`` (no cookies until played; a
  ``t=`` start becomes ``?start=``), live streams of a channel, playlists;
- Vimeo: ``https://player.vimeo.com/video/<id>`` (with the ``h=`` hash of unlisted videos),
  live events ``https://vimeo.com/event/<id>/embed``;
- Zoom: Zoom refuses to be framed (its pages send ``frame-ancestors``), so a Zoom link is
  *not framable*: the room shows a card with an "Open in Zoom" button (a new tab), as reenio
  does;
- an extra host: the https URL framed as it is.

Everything else is refused with a translated :class:`ExternalLinkError` (a ``ValueError``):
other schemes (``javascript:``, ``data:``, …), user names or passwords in the URL, spaces and
control characters, more than :data:`MAX_CHARS` characters, plain http to an extra host.
:func:`frame_sources` is the matching Content-Security-Policy ``frame-src``.

Attendees get the player only in the room's ``stage`` message (after the ticket check), from
:func:`external_for`; the event's public pages never carry it. Pure: no I/O.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, parse_qs, urlencode, urlsplit

from webinar.i18n import _
from webinar.storage.records import Event

logger = logging.getLogger(__name__)

#: The longest link an organiser may enter.
MAX_CHARS = 2000
#: The provider name of a player on one of the administrator's extra hosts.
OTHER = "other"

_YOUTUBE_ID = re.compile(r"^[A-Za-z0-9_-]{11}$")
_YOUTUBE_LIST = re.compile(r"^[A-Za-z0-9_-]{2,64}$")
_YOUTUBE_CHANNEL = re.compile(r"^UC[A-Za-z0-9_-]{22}$")
_VIMEO_ID = re.compile(r"^[0-9]{1,12}$")
_VIMEO_HASH = re.compile(r"^[0-9a-f]{6,20}$")
_ZOOM_PATH = re.compile(
    r"^/(?:[jws]/[0-9]{9,12}|wc/join/[0-9]{9,12}|wc/[0-9]{9,12}/join|my/[A-Za-z0-9._-]{1,64}"
    r"|(?:webinar|meeting)/register/[A-Za-z0-9_-]{1,80})/?$"
)
_DURATION = re.compile(r"^(?:(\d{1,3})h)?(?:(\d{1,4})m)?(?:(\d{1,6})s?)?$")
#: An extra host as the configuration holds it: ``player.example.com`` or ``*.example.com``.
HOST_PATTERN = re.compile(
    r"^(?:\*\.)?[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$"
)


class ExternalLinkError(ValueError):
    """The link cannot be an event's external player; the message says why, for people."""


@dataclass(frozen=True, slots=True)
class ExternalPlayer:
    #: The link as the organiser entered it (stripped).
    url: str
    #: What the page shows: the iframe's ``src``, or (not framable) the https link to open.
    embed_url: str
    #: ``youtube``, ``vimeo``, ``zoom``, or :data:`OTHER` (an extra host).
    provider: str
    #: False: the provider forbids framing (Zoom): the page offers a link in a new tab.
    framable: bool


@dataclass(frozen=True, slots=True)
class Provider:
    name: str
    #: The provider's own name, as pages show it (a brand: not translated).
    label: str
    #: Hosts whose links are this provider's: exact names, or ``*.domain`` for any subdomain.
    hosts: tuple[str, ...]
    #: The page URL (https, host matched) as what to show; None: not a link to something
    #: this provider plays.
    embed: Callable[[SplitResult], str | None]
    framable: bool
    #: The origins its embed URLs are on (Content-Security-Policy ``frame-src``).
    frame_hosts: tuple[str, ...]
    #: The message when a link of this provider points to nothing it can play.
    not_playable: Callable[[], str]


def host_matches(host: str, pattern: str) -> bool:
    """``pattern`` is a host name, or ``*.domain`` for any subdomain of domain (not itself)."""
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) and len(host) > len(pattern) - 1
    return host == pattern


def _first(query: dict[str, list[str]], name: str) -> str:
    values = query.get(name)
    return values[0] if values else ""


def _seconds(text: str) -> int | None:
    """A YouTube start time: ``90``, ``90s``, ``1m30s``, ``1h2m3s``."""
    match = _DURATION.match(text) if text else None
    if match is None or not any(match.groups()):
        return None
    h, m, s = (int(g) if g else 0 for g in match.groups())
    return h * 3600 + m * 60 + s


def _youtube(parts: SplitResult) -> str | None:
    base = "https://www.youtube-nocookie.com/embed/"
    query = parse_qs(parts.query)
    segments = [p for p in parts.path.split("/") if p]
    video = ""
    if parts.hostname == "youtu.be":
        video = segments[0] if len(segments) == 1 else ""
    elif segments == ["watch"]:
        video = _first(query, "v")
    elif len(segments) == 2 and segments[0] in ("live", "shorts", "embed", "v"):
        video = segments[1]
    elif segments == ["embed", "live_stream"] or (
        len(segments) == 3 and segments[0] == "channel" and segments[2] == "live"
    ):
        channel = segments[1] if segments[0] == "channel" else _first(query, "channel")
        if not _YOUTUBE_CHANNEL.match(channel):
            return None
        return base + "live_stream?" + urlencode({"channel": channel})
    elif segments in (["playlist"], ["embed", "videoseries"]):
        playlist = _first(query, "list")
        return (
            base + "videoseries?" + urlencode({"list": playlist})
            if (_YOUTUBE_LIST.match(playlist))
            else None
        )
    if not _YOUTUBE_ID.match(video):
        return None
    start = _seconds(_first(query, "t") or _first(query, "start"))
    return base + video + (f"?start={start}" if start else "")


def _vimeo(parts: SplitResult) -> str | None:
    segments = [p for p in parts.path.split("/") if p]
    query = parse_qs(parts.query)
    if segments[:1] == ["event"] and len(segments) >= 2 and _VIMEO_ID.match(segments[1]):
        rest = segments[2:]
        if rest[:1] == ["embed"]:
            rest = rest[1:]
        if len(rest) > 1 or (rest and not _VIMEO_HASH.match(rest[0])):
            return None
        return f"https://vimeo.com/event/{segments[1]}/embed" + (f"/{rest[0]}" if rest else "")
    video, secret = "", _first(query, "h")
    if parts.hostname == "player.vimeo.com":
        if len(segments) == 2 and segments[0] == "video":
            video = segments[1]
    elif len(segments) in (1, 2) and _VIMEO_ID.match(segments[0]):
        video = segments[0]
        if len(segments) == 2:
            secret = segments[1]
    elif len(segments) >= 2 and _VIMEO_ID.match(segments[-1]) and segments[0] in (
        "channels", "groups", "album", "showcase", "video",
    ):  # fmt: skip
        video = segments[-1]
    elif len(segments) >= 3 and _VIMEO_ID.match(segments[-2]) and segments[0] in (
        "channels", "groups", "album", "showcase",
    ) and _VIMEO_HASH.match(segments[-1]):  # fmt: skip
        video, secret = segments[-2], segments[-1]
    if not _VIMEO_ID.match(video) or (secret and not _VIMEO_HASH.match(secret)):
        return None
    return f"https://player.vimeo.com/video/{video}" + (f"?h={secret}" if secret else "")


def _zoom(parts: SplitResult) -> str | None:
    if not _ZOOM_PATH.match(parts.path):
        return None
    query = f"?{parts.query}" if parts.query else ""
    return f"https://{parts.hostname}{parts.path}{query}"


#: The players every server knows, in the order links are matched.
PROVIDERS: tuple[Provider, ...] = (
    Provider(
        name="youtube",
        label="YouTube",
        hosts=(
            "youtube.com",
            "www.youtube.com",
            "m.youtube.com",
            "youtu.be",
            "youtube-nocookie.com",
            "www.youtube-nocookie.com",
        ),
        embed=_youtube,
        framable=True,
        frame_hosts=("https://www.youtube-nocookie.com",),
        not_playable=lambda: _(
            "the external player link is not a YouTube video, live stream or playlist"
        ),
    ),
    Provider(
        name="vimeo",
        label="Vimeo",
        hosts=("vimeo.com", "www.vimeo.com", "player.vimeo.com"),
        embed=_vimeo,
        framable=True,
        frame_hosts=("https://player.vimeo.com", "https://vimeo.com"),
        not_playable=lambda: _("the external player link is not a Vimeo video or live event"),
    ),
    Provider(
        name="zoom",
        label="Zoom",
        hosts=("zoom.us", "*.zoom.us", "zoom.com", "*.zoom.com", "zoomgov.com", "*.zoomgov.com"),
        embed=_zoom,
        framable=False,
        frame_hosts=(),
        not_playable=lambda: _("the external player link is not a Zoom meeting or webinar"),
    ),
)
#: Every provider's frame origin (the CSP's ``frame-src`` without extra hosts).
FRAME_HOSTS: tuple[str, ...] = tuple(h for p in PROVIDERS for h in p.frame_hosts)


def provider_labels() -> list[str]:
    """The built-in providers' names, for hints shown to organisers."""
    return [p.label for p in PROVIDERS]


def _refuse_shape(link: str) -> None:
    if len(link) > MAX_CHARS:
        raise ExternalLinkError(
            _("the external player link may have at most %(max)d characters") % {"max": MAX_CHARS}
        )
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 or c in '\\"<>`' for c in link):
        raise ExternalLinkError(
            _("the external player link is not a valid web address (it has spaces or quotes)")
        )


def parse_external(url: str, extra_providers: Iterable[str] = ()) -> ExternalPlayer:
    """The player for ``url``; :class:`ExternalLinkError` names what is wrong with it.

    ``extra_providers`` are the administrator's extra hosts (``player.example.com``,
    ``*.example.com``; see :data:`HOST_PATTERN`) whose https URLs are framed as they are."""
    link = url.strip()
    _refuse_shape(link)
    try:
        parts = urlsplit(link)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        parts, host, port = urlsplit(""), "", None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not host or not parts.netloc:
        raise ExternalLinkError(
            _("the external player link must be a web address starting with https://")
        )
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise ExternalLinkError(
            _("the external player link must not contain a user name or a password")
        )
    for provider in PROVIDERS:
        if any(host_matches(host, pattern) for pattern in provider.hosts):
            if port not in (None, 80, 443):
                raise ExternalLinkError(provider.not_playable())
            embed = provider.embed(parts)
            if embed is None:
                raise ExternalLinkError(provider.not_playable())
            return ExternalPlayer(link, embed, provider.name, provider.framable)
    extras = tuple(extra_providers)
    if any(host_matches(host, pattern) for pattern in extras):
        if scheme != "https":
            raise ExternalLinkError(
                _("the external player link must start with https:// for %(host)s") % {"host": host}
            )
        if port not in (None, 443):
            raise ExternalLinkError(
                _("the external player link must not name a port (%(port)d)") % {"port": port}
            )
        return ExternalPlayer(link, link, OTHER, True)
    raise ExternalLinkError(
        _(
            "the external player link cannot be from %(host)s: use a link of %(providers)s, or"
            " ask the server's administrator to allow %(host)s"
        )
        % {"host": host, "providers": ", ".join(provider_labels())}
    )


def check_external(url: str | None, extra_providers: Iterable[str] = ()) -> str | None:
    """The link to store for an event (stripped; None for none); :class:`ExternalLinkError`
    when it cannot be shown."""
    if url is None or not url.strip():
        return None
    return parse_external(url, extra_providers).url


def external_for(event: Event, extra_providers: Iterable[str] = ()) -> dict[str, Any] | None:
    """What the room's ``stage`` message carries as ``external`` for ``event``: None without
    a link (or with one the server no longer allows: its host was taken off the list), else
    ``{"url": embed URL (the link to open when not framable), "provider", "framable",
    "link": the link as entered}``."""
    if not event.external_url:
        return None
    try:
        player = parse_external(event.external_url, extra_providers)
    except ExternalLinkError as exc:
        logger.warning("event %s: its external player link is not shown: %s", event.event_id, exc)
        return None
    return {
        "url": player.embed_url,
        "provider": player.provider,
        "framable": player.framable,
        "link": player.url,
    }


def frame_sources(extra_providers: Iterable[str] = ()) -> tuple[str, ...]:
    """The Content-Security-Policy ``frame-src`` sources: this origin, every provider's
    embed origin, and each extra host (https)."""
    extras = tuple(f"https://{host}" for host in extra_providers if HOST_PATTERN.match(host))
    return ("'self'", *FRAME_HOSTS, *(e for e in extras if e not in FRAME_HOSTS))
