"""Content on stage as a pure state machine: what the presenters show besides cameras.

One :class:`StageContent` per live room (held by :class:`webinar.rooms.interaction.
RoomInteraction` as ``stage``): the layout (what is large on stage), the presentation and
its page, the shared video and its play state, the files offered for download, and the
whiteboard (its pages of strokes and who may draw besides presenters).

Every command is *planned* first: the machine checks it and returns a :class:`StageChange`
(the new values and the events to send) without changing anything; the caller writes what
must last, and only then :meth:`StageContent.apply`\\ s the change. So a refused command or
a failed write leaves the room as it was, and no command copies the whole board to be
undone. The pointer is not kept (a change of nothing but an event).

Coordinates (whiteboard points, the pointer) are fractions 0..1 of the content's box, x to
the right and y down, rounded to :data:`COORD_DECIMALS` decimals.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from webinar.i18n import N_, _

from . import replay
from .chat import clean_text
from .interaction_errors import InteractionError, InteractionErrorCode
from .roles import Capability, may_not
from .state import Participant

E = InteractionErrorCode

LAYOUTS = ("cameras", "screen", "presentation", "video", "whiteboard", "external")
TOOLS = ("pen", "line", "rect", "ellipse", "text", "eraser")
SHAPES = frozenset({"line", "rect", "ellipse"})
VIDEO_KINDS = ("file", "youtube", "vimeo")
COORD_DECIMALS = 4
MAX_BOARD_PAGES = 20
MAX_STROKES_PER_PAGE = 5000
MAX_POINTS_PER_STROKE = 20_000
MAX_POINTS_PER_MESSAGE = 500
MAX_STROKE_WIDTH = 40
MAX_TEXT_CHARS = 500
MAX_FILES_OFFERED = 50
#: Longest position of a shared video, in seconds (a day).
MAX_VIDEO_SECONDS = 86_400.0
_STROKE_ID = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
_YOUTUBE_ID = re.compile(r"^[A-Za-z0-9_-]{11}$")
_VIMEO_ID = re.compile(r"^[0-9]{1,12}$")


# ------------------------------------------------------------------------------ records


@dataclass(frozen=True, slots=True)
class Presentation:
    content_id: str
    name: str
    pages: int
    page: int  # 1-based
    changed_at: float


@dataclass(frozen=True, slots=True)
class SharedVideo:
    video_id: str
    kind: str  # file | youtube | vimeo
    name: str
    #: the uploaded file's content ID (kind "file"), else the provider's video ID
    source: str
    playing: bool
    position: float  # seconds, at ``at``
    at: float
    rate: float = 1.0

    def position_at(self, now: float) -> float:
        if not self.playing:
            return self.position
        return max(0.0, self.position + (now - self.at) * self.rate)


@dataclass(frozen=True, slots=True)
class OfferedFile:
    content_id: str
    name: str
    size: int
    type: str


@dataclass(frozen=True, slots=True)
class Stroke:
    stroke_id: str
    page: int  # 0-based
    by: str
    tool: str
    color: str
    width: int
    points: tuple[tuple[float, float], ...]
    text: str | None
    done: bool
    #: How many messages made it so far (each is kept as one part).
    parts: int = 1

    def to_json(self) -> dict[str, Any]:
        return {
            "stroke_id": self.stroke_id,
            "page": self.page,
            "by": self.by,
            "tool": self.tool,
            "color": self.color,
            "width": self.width,
            "points": [list(p) for p in self.points],
            "text": self.text,
            "done": self.done,
        }


# ------------------------------------------------------------------------------ events


@dataclass(frozen=True, slots=True)
class StageChanged:
    """The stage's state changed: everyone gets it whole (``cause`` says what changed)."""

    cause: str  # layout | presentation | page | video | files | whiteboard
    by: str | None


@dataclass(frozen=True, slots=True)
class PointerMoved:
    x: float | None
    y: float | None
    by: str


@dataclass(frozen=True, slots=True)
class StrokeDrawn:
    """A stroke began or grew: ``points`` are the new ones (``append``) or all of them."""

    stroke: Stroke
    points: tuple[tuple[float, float], ...]
    append: bool


@dataclass(frozen=True, slots=True)
class BoardCleared:
    page: int
    by: str


StageEvent = StageChanged | PointerMoved | StrokeDrawn | BoardCleared


@dataclass(frozen=True, slots=True)
class StageChange:
    """A checked command: the fields it sets, what to write, what to tell everyone.

    ``log`` is the entry of the stage's timeline (kind and details) when the change is one
    that statistics and recordings show (a page turn, a video played); ``stroke`` the stroke
    to keep; ``cleared`` the whiteboard page to empty."""

    values: dict[str, Any] = field(default_factory=dict)
    events: tuple[StageEvent, ...] = ()
    log: tuple[str, dict[str, Any]] | None = None
    stroke: Stroke | None = None
    cleared: int | None = None

    @property
    def persistent(self) -> bool:
        """Whether the stage's kept state changes (else only a stroke or nothing is written)."""
        return bool(self.values)


# ------------------------------------------------------------------------------ checks


def _coord(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InteractionError(E.INVALID, _("coordinates are numbers from 0 to 1"))
    number = float(value)
    if not 0.0 <= number <= 1.0:
        raise InteractionError(E.INVALID, _("coordinates are numbers from 0 to 1"))
    return round(number, COORD_DECIMALS)


def check_points(points: Sequence[Sequence[object]]) -> tuple[tuple[float, float], ...]:
    if len(points) > MAX_POINTS_PER_MESSAGE:
        raise InteractionError(
            E.TOO_LONG,
            _("at most %(max)d points per message") % {"max": MAX_POINTS_PER_MESSAGE},
        )
    out: list[tuple[float, float]] = []
    for point in points:
        if len(point) != 2:
            raise InteractionError(E.INVALID, _("a point is a pair [x, y]"))
        out.append((_coord(point[0]), _coord(point[1])))
    return tuple(out)


def video_source(url: str) -> tuple[str, str]:
    """(kind, video ID) of a YouTube or Vimeo link; a clear refusal for anything else."""
    url = url.strip()
    if len(url) > 2000 or any(ch <= " " for ch in url):
        raise InteractionError(E.BAD_URL, _("this is not a valid video link"))
    try:
        parts = urllib.parse.urlsplit(url if "://" in url else f"https://{url}")
    except ValueError:
        raise InteractionError(E.BAD_URL, _("this is not a valid video link")) from None
    host = (parts.hostname or "").lower().removeprefix("www.").removeprefix("m.")
    path = [p for p in parts.path.split("/") if p]
    query = urllib.parse.parse_qs(parts.query)
    if parts.scheme in ("http", "https") and parts.username is None:
        if host in ("youtube.com", "youtube-nocookie.com", "music.youtube.com"):
            candidate = ""
            if path[:1] == ["watch"]:
                candidate = (query.get("v") or [""])[0]
            elif len(path) >= 2 and path[0] in ("embed", "live", "shorts", "v"):
                candidate = path[1]
            if _YOUTUBE_ID.match(candidate):
                return "youtube", candidate
        elif host == "youtu.be" and path and _YOUTUBE_ID.match(path[0]):
            return "youtube", path[0]
        elif host == "vimeo.com" and path and _VIMEO_ID.match(path[-1]):
            return "vimeo", path[-1]
        elif (
            host == "player.vimeo.com"
            and path[:1] == ["video"]
            and len(path) >= 2
            and _VIMEO_ID.match(path[1])
        ):
            return "vimeo", path[1]
    raise InteractionError(
        E.BAD_URL,
        _("only YouTube and Vimeo links, or a video uploaded to this event, can be played"),
    )


def embed_url(kind: str, source: str) -> str:
    """The player URL of a YouTube or Vimeo video, controlled by ``postMessage``: no
    controls of its own (attendees do not skip ahead), no related videos."""
    if kind == "youtube":
        return (
            f"https://www.youtube-nocookie.com/embed/{source}"
            "?enablejsapi=1&controls=0&disablekb=1&rel=0&playsinline=1&modestbranding=1"
        )
    return f"https://player.vimeo.com/video/{source}?api=1&controls=0&keyboard=0&dnt=1"


# ------------------------------------------------------------------------------ the machine

#: The fields of :class:`StageContent` kept in the store (``to_json``).
_KEPT = ("layout", "presentation", "video", "files", "board_page", "board_pages", "board_granted")


class StageContent:
    """What is on stage. Change it only through ``apply`` of a planned :class:`StageChange`."""

    __slots__ = (
        "board_granted",
        "board_page",
        "board_pages",
        "external",
        "external_player",
        "files",
        "layout",
        "loaded",
        "presentation",
        "strokes",
        "video",
    )

    def __init__(self) -> None:
        self.layout = "cameras"
        self.presentation: Presentation | None = None
        self.video: SharedVideo | None = None
        self.files: tuple[OfferedFile, ...] = ()
        self.board_page = 0
        self.board_pages = 1
        self.board_granted: frozenset[str] = frozenset()
        #: The whiteboard's strokes by ID, in the order drawn (each names its page).
        self.strokes: dict[str, Stroke] = {}
        #: Whether the event has an external player (then the "external" layout exists), and
        #: what attendees are shown of it (webinar.content.external).
        self.external = False
        self.external_player: dict[str, Any] | None = None
        self.loaded = False

    # -------------------------------------------------------------- kept state

    def to_json(self, changes: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """What is kept in the store (strokes are kept one by one, not here); with
        ``changes`` (a :class:`StageChange`'s values), as it will be once they are applied."""
        now = {name: getattr(self, name) for name in _KEPT} | dict(changes or {})
        p, v = now["presentation"], now["video"]
        return {
            "layout": now["layout"],
            "presentation": None if p is None else asdict(p),
            "video": None if v is None else asdict(v),
            "files": [asdict(f) for f in now["files"]],
            "board_page": now["board_page"],
            "board_pages": now["board_pages"],
            "board_granted": sorted(now["board_granted"]),
        }

    def restore(self, value: dict[str, Any] | None, strokes: Iterable[Stroke]) -> None:
        if value:
            self.layout = str(value.get("layout") or "cameras")
            p = value.get("presentation")
            self.presentation = Presentation(**p) if p else None
            v = value.get("video")
            self.video = SharedVideo(**v) if v else None
            self.files = tuple(OfferedFile(**f) for f in value.get("files") or [])
            self.board_page = int(value.get("board_page", 0))
            self.board_pages = int(value.get("board_pages", 1))
            self.board_granted = frozenset(value.get("board_granted") or ())
        else:
            self.layout = self._fallback()
        self.strokes = {s.stroke_id: s for s in strokes}
        if self.layout == "external" and not self.external:
            self.layout = "cameras"

    def apply(self, change: StageChange) -> None:
        for name, value in change.values.items():
            setattr(self, name, value)
        if change.cleared is not None:
            page = change.cleared
            self.strokes = {k: s for k, s in self.strokes.items() if s.page != page}
        if change.stroke is not None:
            self.strokes[change.stroke.stroke_id] = change.stroke

    def page_strokes(self, page: int) -> list[Stroke]:
        return [s for s in self.strokes.values() if s.page == page]

    # -------------------------------------------------------------- commands

    def _shower(self, actor: Participant, what: str) -> None:
        """Refuse unless ``actor`` shows content; ``what`` is ``N_()``-marked."""
        if not actor.can(Capability.SHOW_CONTENT):
            raise InteractionError(E.FORBIDDEN, may_not(actor.role, what))

    def set_layout(self, actor: Participant, layout: str) -> StageChange:
        self._shower(actor, N_("change what is on stage"))
        if layout not in LAYOUTS:
            raise InteractionError(E.INVALID, _("no such layout"))
        if layout == "presentation" and self.presentation is None:
            raise InteractionError(E.INVALID, _("no presentation is open"))
        if layout == "video" and self.video is None:
            raise InteractionError(E.INVALID, _("no video is shared"))
        if layout == "external" and not self.external:
            raise InteractionError(E.INVALID, _("this event has no external player"))
        if layout == self.layout:
            return StageChange()
        return StageChange(
            {"layout": layout},
            (StageChanged("layout", actor.participant_id),),
            ("layout", {"layout": layout}),
        )

    def show_presentation(
        self, actor: Participant, *, content_id: str, name: str, pages: int, page: int, now: float
    ) -> StageChange:
        """Put a rendered presentation (``pages`` pages) on stage at ``page``."""
        self._shower(actor, N_("show a presentation"))
        if pages < 1:
            raise InteractionError(E.INVALID, _("this presentation has no pages yet"))
        if not 1 <= page <= pages:
            raise InteractionError(E.INVALID, _("the page must be 1 to %(max)d") % {"max": pages})
        shown = Presentation(content_id, name, pages, page, now)
        return StageChange(
            {"presentation": shown, "layout": "presentation"},
            (StageChanged("presentation", actor.participant_id),),
            ("presentation", {"content_id": content_id, "name": name, "page": page}),
        )

    def turn_page(self, actor: Participant, page: int, now: float) -> StageChange:
        self._shower(actor, N_("turn the pages"))
        current = self.presentation
        if current is None:
            raise InteractionError(E.INVALID, _("no presentation is open"))
        if not 1 <= page <= current.pages:
            raise InteractionError(
                E.INVALID, _("the page must be 1 to %(max)d") % {"max": current.pages}
            )
        values: dict[str, Any] = {"presentation": replace(current, page=page, changed_at=now)}
        if self.layout != "presentation":
            values["layout"] = "presentation"
        if page == current.page and "layout" not in values:
            return StageChange()
        return StageChange(
            values,
            (StageChanged("page", actor.participant_id),),
            ("page", {"content_id": current.content_id, "page": page}),
        )

    def stop_presentation(self, actor: Participant) -> StageChange:
        self._shower(actor, N_("show a presentation"))
        if self.presentation is None:
            return StageChange()
        values: dict[str, Any] = {"presentation": None}
        if self.layout == "presentation":
            values["layout"] = self._fallback()
        return StageChange(
            values,
            (StageChanged("presentation", actor.participant_id),),
            ("presentation", {"content_id": None}),
        )

    def point(self, actor: Participant, x: object, y: object) -> StageChange:
        self._shower(actor, N_("use the pointer"))
        if x is None or y is None:
            return StageChange(events=(PointerMoved(None, None, actor.participant_id),))
        return StageChange(events=(PointerMoved(_coord(x), _coord(y), actor.participant_id),))

    def share_video(
        self, actor: Participant, *, kind: str, source: str, name: str, now: float
    ) -> StageChange:
        """Share a video, paused at its start (the presenter's player then plays it)."""
        self._shower(actor, N_("share a video"))
        if kind not in VIDEO_KINDS:
            raise InteractionError(E.INVALID, _("no such kind of video"))
        video = SharedVideo(f"vid_{replay.token_hex(6)}", kind, name, source, False, 0.0, now)
        return StageChange(
            {"video": video, "layout": "video"},
            (StageChanged("video", actor.participant_id),),
            ("video", {"action": "share", "kind": kind, "source": source, "name": name}),
        )

    def control_video(
        self, actor: Participant, action: str, position: float, now: float
    ) -> StageChange:
        self._shower(actor, N_("control the shared video"))
        current = self.video
        if current is None:
            raise InteractionError(E.INVALID, _("no video is shared"))
        if not 0.0 <= position <= MAX_VIDEO_SECONDS:
            raise InteractionError(E.INVALID, _("the position is out of range"))
        position = round(position, 3)
        if action == "play":
            video = replace(current, playing=True, position=position, at=now)
        elif action == "pause":
            video = replace(current, playing=False, position=position, at=now)
        elif action == "seek":
            video = replace(current, position=position, at=now)
        else:
            raise InteractionError(E.INVALID, _("the action is play, pause or seek"))
        return StageChange(
            {"video": video},
            (StageChanged("video", actor.participant_id),),
            ("video", {"action": action, "position": position}),
        )

    def stop_video(self, actor: Participant) -> StageChange:
        self._shower(actor, N_("share a video"))
        if self.video is None:
            return StageChange()
        values: dict[str, Any] = {"video": None}
        if self.layout == "video":
            values["layout"] = self._fallback()
        return StageChange(
            values,
            (StageChanged("video", actor.participant_id),),
            ("video", {"action": "stop"}),
        )

    def offer_file(self, actor: Participant, file: OfferedFile, offered: bool) -> StageChange:
        self._shower(actor, N_("offer files"))
        others = tuple(f for f in self.files if f.content_id != file.content_id)
        if offered:
            if len(others) >= MAX_FILES_OFFERED:
                raise InteractionError(
                    E.LIMIT, _("at most %(max)d files can be offered") % {"max": MAX_FILES_OFFERED}
                )
            files = (*others, file)
        else:
            files = others
        if files == self.files:
            return StageChange()
        return StageChange(
            {"files": files},
            (StageChanged("files", actor.participant_id),),
            ("files", {"content_id": file.content_id, "offered": offered}),
        )

    def _fallback(self) -> str:
        return "external" if self.external else "cameras"

    # -------------------------------------------------------------- the whiteboard

    def may_draw(self, actor: Participant) -> bool:
        return actor.can(Capability.SHOW_CONTENT) or actor.participant_id in self.board_granted

    def draw(
        self,
        actor: Participant,
        *,
        stroke_id: str,
        page: int,
        tool: str,
        color: str,
        width: int,
        points: Sequence[Sequence[object]],
        text: str | None,
        done: bool,
    ) -> StageChange:
        if not self.may_draw(actor):
            raise InteractionError(E.FORBIDDEN, may_not(actor.role, N_("draw on the whiteboard")))
        if not _STROKE_ID.match(stroke_id):
            raise InteractionError(E.INVALID, _("the stroke ID is 1 to 40 letters, digits, - or _"))
        if not 0 <= page < self.board_pages:
            raise InteractionError(E.INVALID, _("no such whiteboard page"))
        checked = check_points(points)
        known = self.strokes.get(stroke_id)
        if known is not None:
            if known.by != actor.participant_id or known.page != page:
                raise InteractionError(E.INVALID, _("this stroke is someone else's"))
            if known.done:
                raise InteractionError(E.INVALID, _("this stroke is finished"))
            if known.tool in SHAPES or known.tool == "text":
                points_now, append = checked or known.points, False
            else:
                points_now, append = known.points + checked, True
            if len(points_now) > MAX_POINTS_PER_STROKE:
                raise InteractionError(E.TOO_LONG, _("this stroke is too long"))
            if known.tool == "text" and text is not None:
                known = replace(known, text=self._text(text))
            stroke = replace(known, points=points_now, done=done, parts=known.parts + 1)
            return StageChange(
                events=(StrokeDrawn(stroke, checked if append else points_now, append),),
                stroke=stroke,
            )
        if tool not in TOOLS:
            raise InteractionError(E.INVALID, _("no such drawing tool"))
        if not _COLOR.match(color):
            raise InteractionError(E.INVALID, _("the colour is #rrggbb"))
        if not 1 <= width <= MAX_STROKE_WIDTH:
            raise InteractionError(
                E.INVALID, _("the width is 1 to %(max)d") % {"max": MAX_STROKE_WIDTH}
            )
        if not checked:
            raise InteractionError(E.INVALID, _("a stroke needs a point"))
        if tool in SHAPES and len(checked) != 2:
            raise InteractionError(E.INVALID, _("a shape has two points: start and end"))
        if sum(1 for s in self.strokes.values() if s.page == page) >= MAX_STROKES_PER_PAGE:
            raise InteractionError(
                E.LIMIT,
                _("this whiteboard page is full (%(max)d strokes): clear it or add a page")
                % {"max": MAX_STROKES_PER_PAGE},
            )
        kept_text: str | None = None
        if tool == "text":
            kept_text = self._text(text or "")
        stroke = Stroke(
            stroke_id,
            page,
            actor.participant_id,
            tool,
            "#ffffff" if tool == "eraser" else color.lower(),
            width,
            checked,
            kept_text,
            done,
        )
        return StageChange(events=(StrokeDrawn(stroke, checked, False),), stroke=stroke)

    @staticmethod
    def _text(text: str) -> str:
        return clean_text(text, MAX_TEXT_CHARS)

    def clear_board(self, actor: Participant, page: int) -> StageChange:
        if not self.may_draw(actor):
            raise InteractionError(E.FORBIDDEN, may_not(actor.role, N_("clear the whiteboard")))
        if not 0 <= page < self.board_pages:
            raise InteractionError(E.INVALID, _("no such whiteboard page"))
        return StageChange(
            events=(BoardCleared(page, actor.participant_id),),
            log=("whiteboard", {"action": "clear", "page": page}),
            cleared=page,
        )

    def board_to_page(self, actor: Participant, page: int) -> StageChange:
        self._shower(actor, N_("turn the whiteboard's pages"))
        if not 0 <= page <= self.board_pages or page >= MAX_BOARD_PAGES:
            raise InteractionError(
                E.INVALID,
                _("the whiteboard has at most %(max)d pages") % {"max": MAX_BOARD_PAGES},
            )
        values: dict[str, Any] = {"board_page": page}
        if page == self.board_pages:
            values["board_pages"] = page + 1
        if self.layout != "whiteboard":
            values["layout"] = "whiteboard"
        if page == self.board_page and len(values) == 1:
            return StageChange()
        return StageChange(
            values,
            (StageChanged("whiteboard", actor.participant_id),),
            ("whiteboard", {"action": "page", "page": page}),
        )

    def grant_board(self, actor: Participant, target: Participant, granted: bool) -> StageChange:
        self._shower(actor, N_("let others draw"))
        now_granted = (
            self.board_granted | {target.participant_id}
            if granted
            else self.board_granted - {target.participant_id}
        )
        if now_granted == self.board_granted:
            return StageChange()
        return StageChange(
            {"board_granted": now_granted},
            (StageChanged("whiteboard", actor.participant_id),),
        )
