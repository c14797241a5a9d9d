"""Statistics in the dashboard (server-rendered SVG charts), the engagement export, the
admin API's JSON, and deleting an event's personal data.

Routes (signed-in organiser for their own events, admin for all):
``/dashboard/stats``, ``/dashboard/events/{id}/stats``,
``/dashboard/events/{id}/export.csv[?bom=1]``, ``/dashboard/events/{id}/export.json``,
``/dashboard/events/{id}/{registrants,ratings,leads}.csv[?bom=1]``,
``POST /dashboard/events/{id}/delete-personal-data``,
``/api/stats/monthly``, ``/api/events/{id}/stats``.

An event's page answers the organiser's questions: who came and for how long (per person,
and per registrant and invitee: registered, attended, minutes, joined late, left early), on
what (device, browser), what they thought (ratings), what they answered and clicked (poll,
test and call-to-action results) and who left an address at the recording's e-mail gate.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from xml.sax.saxutils import escape

from aiohttp import web

from webinar.attendance.ratings import Rating, Ratings, Summary, summarise
from webinar.attendance.report import (
    REGISTRANT_COLUMNS,
    Registrant,
    RegistrantRow,
    browser_counts,
    device_counts,
    registrant_rows,
)
from webinar.attendance.service import (
    SESSION_COLUMNS,
    AttendanceService,
    EventStats,
    session_rows,
    to_csv,
    to_json,
)
from webinar.content.stage import StageService
from webinar.followup import records as followup_records
from webinar.formats import iso_time
from webinar.http import interaction as ih
from webinar.http.after import rating_context
from webinar.http.inputs import json_error
from webinar.http.site import Pages, Site, route
from webinar.i18n import N_, _, gettext
from webinar.ids import format_event_id
from webinar.interaction import engagement
from webinar.interaction.results import CtaResult, PollResult, cta_results, poll_results
from webinar.recordings.library import RecordingService
from webinar.recordings.sharing import Lead, Publisher
from webinar.rooms.manager import RoomManager
from webinar.rooms.roles import role_label
from webinar.storage.store import Event
from webinar.ticketing import records
from webinar.ticketing.desk import TicketDesk
from webinar.webhooks import records as webhooks

CHART_W, CHART_H = 640, 200
#: What the attendance records say of a browser or system they could not name.
_UNNAMED = {"Other": N_("Other"), "Unknown": N_("Unknown")}
#: The kinds of device (webinar.attendance.useragent.DEVICES) as people read them.
_DEVICES = {
    "desktop": N_("Desktop"),
    "phone": N_("Phone"),
    "tablet": N_("Tablet"),
    "other": N_("Other"),
    "unknown": N_("Unknown"),
}
_KINDS = {"registration": N_("registered"), "invitation": N_("invited")}
RATING_COLUMNS = ("name", "email", "stars", "comment", "via", "rated_at")
LEAD_COLUMNS = ("email", "first_viewed", "links")
#: The registrants and invitees of an event (ticketing's; the app passes them in).
Registrants = Callable[[Event], Awaitable[list[Registrant]]]


@dataclass(frozen=True, slots=True)
class Report:
    """Everything an event's statistics page, exports and API say besides attendance."""

    stats: EventStats
    ratings: list[Rating]
    summary: Summary
    registrants: list[RegistrantRow]
    polls: list[PollResult]
    ctas: list[CtaResult]
    leads: list[Lead]

    def as_json(self, *, zulu: bool = False) -> dict[str, Any]:
        """The export's and the API's keys (``zulu``: times end in ``Z``, as the API's)."""
        return {
            "rating": self.summary.as_json(),
            "ratings": [r.as_json(zulu=zulu) for r in self.ratings],
            "registrants": [r.as_json(zulu=zulu) for r in self.registrants],
            "devices": dict(device_counts(self.stats.people)),
            "browsers": dict(browser_counts(self.stats.people)),
            "poll_results": [p.as_json() for p in self.polls],
            "cta_results": [c.as_json(zulu=zulu) for c in self.ctas],
            "leads": [lead_row(lead, zulu=zulu) for lead in self.leads],
        }


def ticket_registrants(desk: TicketDesk) -> Registrants:
    """The registrants and invitees of an event from the ticket desk, for the statistics."""

    async def registrants(event: Event) -> list[Registrant]:
        found = [
            Registrant(
                "registration",
                r.name,
                r.email,
                str(r.status.value),
                r.created_at.timestamp(),
            )
            for r in await desk.registrations(event)
        ]
        found += [
            Registrant(
                "invitation",
                i.name,
                i.email,
                "revoked" if i.revoked else "active",
                i.created_at.timestamp(),
            )
            for i in await desk.invitees(event)
        ]
        return found

    return registrants


def lead_row(lead: Lead, *, zulu: bool = False) -> dict[str, Any]:
    return {
        "email": lead.email,
        "first_viewed": iso_time(lead.first_viewed, timespec="seconds", zulu=zulu),
        "links": lead.publications,
    }


def device_label(device: str, model: str = "") -> str:
    """``Phone (Samsung SM-S911B)``, ``Desktop``, in the language in effect."""
    label = _DEVICES.get(device)
    text = gettext(label) if label is not None else device
    return f"{text} ({model})" if model else text


def _yes_no(value: bool | None) -> str:
    """A yes/no cell of the tables ("" when not known)."""
    if value is None:
        return ""
    return _("yes") if value else _("no")


def bar_chart(items: list[tuple[str, int]], *, label: str) -> str:
    """An accessible SVG bar chart (no script)."""
    n = max(1, len(items))
    top = max([v for _k, v in items] + [1])
    bw = min(60.0, (CHART_W - 40) / n)
    parts = [
        f'<svg class="chart" viewBox="0 0 {CHART_W} {CHART_H + 30}" role="img"'
        f' aria-label="{escape(label)}" data-testid="chart-monthly">'
    ]
    for i, (key, value) in enumerate(items):
        h = (CHART_H - 20) * value / top
        x = 30 + i * bw
        y = CHART_H - h
        parts.append(
            f'<rect x="{x + 4:.1f}" y="{y:.1f}" width="{max(2.0, bw - 8):.1f}" height="{h:.1f}"'
            f' fill="#4f8cff"><title>{escape(key)}: {value}</title></rect>'
            f'<text x="{x + bw / 2:.1f}" y="{y - 4:.1f}" text-anchor="middle" font-size="12"'
            f' fill="#dfe6f0">{value}</text>'
            f'<text x="{x + bw / 2:.1f}" y="{CHART_H + 18}" text-anchor="middle" font-size="11"'
            f' fill="#aab4c3">{escape(key)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def month_range(
    months: list[dict[str, Any]], now: datetime, span: int = 12
) -> list[tuple[str, int]]:
    """Events per month for the last ``span`` months up to now (and any later month with
    events), zeros included, so the chart's axis is time."""
    counts = {m["month"]: int(m["events"]) for m in months}
    year, month = now.year, now.month
    keys = []
    for _month in range(span):
        keys.append(f"{year:04d}-{month:02d}")
        month -= 1
        if month == 0:
            year, month = year - 1, 12
    keys = sorted(set(keys) | {k for k in counts if k > keys[0]})
    return [(k, counts.get(k, 0)) for k in keys]


def step_chart(steps: list[tuple[float, int]], *, label: str) -> str:
    """People in the room over time, as an SVG step line."""
    if len(steps) < 2:
        text = _("%(chart)s: no data") % {"chart": label}
        return f'<p class="dash-sub" data-testid="chart-concurrency">{escape(text)}</p>'
    t0, t1 = steps[0][0], steps[-1][0]
    span = max(1.0, t1 - t0)
    top = max([n for _t, n in steps] + [1])

    def x(t: float) -> float:
        return 30 + (CHART_W - 40) * (t - t0) / span

    def y(n: int) -> float:
        return CHART_H - (CHART_H - 20) * n / top

    points = []
    previous = 0
    for t, n in steps:
        points.append(f"{x(t):.1f},{y(previous):.1f}")
        points.append(f"{x(t):.1f},{y(n):.1f}")
        previous = n
    start = datetime.fromtimestamp(t0, UTC).strftime("%H:%M")
    end = datetime.fromtimestamp(t1, UTC).strftime("%H:%M")
    return (
        f'<svg class="chart" viewBox="0 0 {CHART_W} {CHART_H + 30}" role="img"'
        f' aria-label="{escape(label)}" data-testid="chart-concurrency">'
        f'<polyline fill="none" stroke="#4f8cff" stroke-width="2" points="{" ".join(points)}"/>'
        f'<text x="4" y="{y(top) + 4:.1f}" font-size="11" fill="#aab4c3">{top}</text>'
        f'<text x="30" y="{CHART_H + 18}" font-size="11" fill="#aab4c3">{start} UTC</text>'
        f'<text x="{CHART_W - 10}" y="{CHART_H + 18}" text-anchor="end" font-size="11"'
        f' fill="#aab4c3">{end} UTC</text></svg>'
    )


def _hms(seconds: float) -> str:
    s = round(seconds)
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}"


def _when(t: float | None) -> str:
    if t is None:
        return _("still in the room")
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _named(name: str) -> str:
    """A browser's or system's name; "Other" and "Unknown" in the language in effect."""
    unnamed = _UNNAMED.get(name)
    return gettext(unnamed) if unnamed is not None else name


def _engagement_cells(extra: dict[str, Any]) -> dict[str, Any]:
    """What the attendee table shows of one person's engagement (blank: nothing)."""
    correct, total = extra.get("polls_test_correct", ""), extra.get("polls_test_total", "")
    return {
        "chat": extra.get("chat_messages", ""),
        "questions": extra.get("questions_asked", ""),
        "votes": extra.get("questions_votes_received", ""),
        "answers": extra.get("polls_answers", ""),
        "answered": extra.get("polls_answered", ""),
        "score": f"{correct}/{total}" if total != "" else "",
        "scores": extra.get("polls_test_scores", ""),
        "clicks": extra.get("cta_clicks", ""),
        "downloads": extra.get("files_downloaded", ""),
        "downloaded": extra.get("files_names", ""),
        "reactions": extra.get("reactions_sent", ""),
        "reaction_kinds": extra.get("reactions_kinds", ""),
    }


class StatsPages(Pages):
    def __init__(
        self,
        site: Site,
        attendance: AttendanceService,
        recordings: RecordingService,
        publisher: Publisher,
        *,
        rooms: Callable[[], RoomManager | None] = lambda: None,
        stage: StageService | None = None,
        ratings: Ratings | None = None,
        registrants: Registrants | None = None,
    ) -> None:
        self.site = site
        self.stage = stage
        self.ratings = ratings
        self.registrants = registrants
        self.attendance = attendance
        self.recordings = recordings
        self.publisher = publisher
        self._rooms = rooms

    @route("GET", "/dashboard/stats")
    async def overview(self, request: web.Request) -> web.Response:
        record, user = await self.site.require(request)
        owner = None if user.is_admin else user.user_id
        months = await self.attendance.events_per_month(owner)
        events = await self.site.store.list_events(owner)
        rows = []
        for event in reversed(events):
            stats = await self.attendance.stats(event.event_id)
            rated = await self.ratings.summary(event.event_id) if self.ratings else None
            rows.append(
                {
                    "id": format_event_id(event.event_id),
                    "title": event.title,
                    "attendees": stats.attendees,
                    "peak": stats.peak_concurrency,
                    "average": _hms(stats.average_seconds),
                    "rating": f"{rated.average:.1f} ({rated.count})"
                    if rated is not None and rated.average is not None
                    else "",
                }
            )
        chart = bar_chart(month_range(months, datetime.now(UTC)), label=_("Events per month"))
        return self.site.render(
            request,
            "stats.html",
            user=user,
            csrf=record.csrf_token,
            chart=chart,
            months=months,
            events=rows,
            event=None,
        )

    async def report(self, event: Event) -> Report:
        """The statistics with each person's engagement, and what else the page shows."""
        event_id = event.event_id
        stats = await self.attendance.detailed_stats(event_id)
        ratings = await self.ratings.list(event_id) if self.ratings is not None else []
        registrants = await self.registrants(event) if self.registrants is not None else []
        polls = await self.site.store.run(lambda core: poll_results(core, event_id))
        ctas = await self.site.store.run(lambda core: cta_results(core, event_id))
        return Report(
            stats=stats,
            ratings=ratings,
            summary=summarise(ratings),
            registrants=registrant_rows(registrants, stats, ratings),
            polls=polls,
            ctas=ctas,
            leads=await self.publisher.leads(event_id),
        )

    @route("GET", "/dashboard/events/{event_id}/stats")
    async def event_page(self, request: web.Request) -> web.Response:
        event, record, user = await self.site.owned_event(request)
        report = await self.report(event)
        stats = report.stats
        return self.site.render(
            request,
            "stats.html",
            user=user,
            csrf=record.csrf_token,
            event={"id": format_event_id(event.event_id), "title": event.title},
            stats=stats,
            chart=step_chart(stats.concurrency, label=_("People in the room over time")),
            people=[
                {
                    "name": p.name,
                    "email": p.email or "",
                    "role": role_label(p.role),
                    "first_join": _when(p.first_join),
                    "last_leave": _when(p.last_leave),
                    "sessions": p.sessions,
                    "time": _hms(p.seconds),
                    "browser": _named(p.browser),
                    "os": _named(p.os),
                    "device": device_label(p.device, p.model),
                    "late": _yes_no(p.joined_late),
                    "early": _yes_no(p.left_early),
                    "rating": p.extra.get("rating_stars", ""),
                    **_engagement_cells(p.extra),
                }
                for p in stats.people
            ],
            details=[(kind, gettext(label)) for kind, label in engagement.DETAIL_FILES],
            average=_hms(stats.average_seconds),
            notice=request.query.get("notice"),
            slides=await self._slides(event.event_id, stats),
            rating=rating_context(report.summary),
            ratings=[
                {
                    "name": r.name,
                    "stars": r.stars,
                    "comment": r.comment,
                    "via": _("in the room") if r.via == "room" else _("from the e-mail"),
                    "at": _when(r.rated_at),
                }
                for r in reversed(report.ratings)
            ],
            registrants=[
                {
                    "kind": gettext(_KINDS.get(row.registrant.kind, row.registrant.kind)),
                    "name": row.registrant.name,
                    "email": row.registrant.email,
                    "status": row.registrant.status,
                    "registered": _when(row.registrant.registered_at),
                    "attended": row.attended,
                    "minutes": row.person.minutes if row.person is not None else "",
                    "late": _yes_no(row.person.joined_late) if row.person else "",
                    "early": _yes_no(row.person.left_early) if row.person else "",
                    "device": device_label(row.person.device, row.person.model)
                    if row.person
                    else "",
                    "browser": _named(row.person.browser) if row.person else "",
                    "rating": row.rating.stars if row.rating is not None else "",
                }
                for row in report.registrants
            ],
            devices=[(device_label(d), n) for d, n in device_counts(stats.people)],
            browsers=[(_named(b), n) for b, n in browser_counts(stats.people)],
            polls=report.polls,
            ctas=[
                {
                    "message": c.message,
                    "shown": _when(c.shown_at),
                    "clicks": c.clicks,
                    "people": c.people,
                    "url": c.url,
                }
                for c in report.ctas
            ],
            leads=[
                {"email": lead.email, "first": _when(lead.first_viewed)} for lead in report.leads
            ],
        )

    async def _slides(self, event_id: str, stats: EventStats) -> list[dict[str, Any]]:
        """Which slide was up when, for the event's statistics page."""
        if self.stage is None:
            return []
        leaves = [p.last_leave for p in stats.people if p.last_leave is not None]
        end = max(leaves) if leaves else None
        return [
            {
                "at": _when(shown.at),
                "name": shown.name,
                "page": shown.page,
                "time": _hms(shown.seconds) if shown.seconds is not None else _("still shown"),
            }
            for shown in await self.stage.slides(event_id, end)
        ]

    async def _export(self, request: web.Request) -> tuple[Event, list[str], list[dict[str, Any]]]:
        event, _record, _user = await self.site.owned_event(request)
        columns, rows = await self.attendance.engagement(event.event_id)
        return event, columns, rows

    @route("GET", "/dashboard/events/{event_id}/export.csv")
    async def export_csv(self, request: web.Request) -> web.Response:
        event, columns, rows = await self._export(request)
        body = to_csv(columns, rows, bom=ih.wants_bom(request))
        return _download(body, "text/csv", f"engagement-{event.event_id}.csv")

    @route("GET", "/dashboard/events/{event_id}/registrants.csv")
    async def registrants_csv(self, request: web.Request) -> web.Response:
        event, _record, _user = await self.site.owned_event(request)
        body = await self.csv(event, "registrants", bom=ih.wants_bom(request))
        return _download(body, "text/csv", f"registrants-{event.event_id}.csv")

    @route("GET", "/dashboard/events/{event_id}/ratings.csv")
    async def ratings_csv(self, request: web.Request) -> web.Response:
        event, _record, _user = await self.site.owned_event(request)
        body = await self.csv(event, "ratings", bom=ih.wants_bom(request))
        return _download(body, "text/csv", f"ratings-{event.event_id}.csv")

    @route("GET", "/dashboard/events/{event_id}/leads.csv")
    async def leads_csv(self, request: web.Request) -> web.Response:
        event, _record, _user = await self.site.owned_event(request)
        body = await self.csv(event, "leads", bom=ih.wants_bom(request))
        return _download(body, "text/csv", f"leads-{event.event_id}.csv")

    async def csv(self, event: Event, kind: str, *, bom: bool) -> bytes:
        """The registrants, ratings or leads of an event as CSV (the dashboard's and API's)."""
        if kind == "registrants":
            report = await self.report(event)
            rows = [row.as_json() for row in report.registrants]
            return to_csv(REGISTRANT_COLUMNS, rows, bom=bom)
        if kind == "ratings":
            ratings = await self.ratings.list(event.event_id) if self.ratings else []
            return to_csv(RATING_COLUMNS, [r.as_json() for r in ratings], bom=bom)
        if kind == "leads":
            leads = await self.publisher.leads(event.event_id)
            return to_csv(LEAD_COLUMNS, [lead_row(lead) for lead in leads], bom=bom)
        raise KeyError(kind)

    @route("GET", "/dashboard/events/{event_id}/sessions.csv")
    async def sessions_csv(self, request: web.Request) -> web.Response:
        event, _record, _user = await self.site.owned_event(request)
        rows = session_rows(await self.attendance.sessions(event.event_id), time.time())
        body = to_csv(SESSION_COLUMNS, rows, bom=ih.wants_bom(request))
        return _download(body, "text/csv", f"sessions-{event.event_id}.csv")

    @route("GET", "/dashboard/events/{event_id}/export.json")
    async def export_json(self, request: web.Request) -> web.Response:
        """The rows of the CSV, plus the detail files' rows under ``details``."""
        event, columns, rows = await self._export(request)
        event_id = event.event_id
        details = await self.site.store.run(lambda core: ih.export_json(core, event_id))
        sessions = session_rows(await self.attendance.sessions(event_id), time.time())
        body = json.loads(to_json(format_event_id(event_id), columns, rows))
        body["details"] = {"sessions": sessions, **details}
        body.update((await self.report(event)).as_json())
        return _download(
            json.dumps(body, ensure_ascii=False).encode("utf-8"),
            "application/json",
            f"engagement-{event.event_id}.json",
        )

    @route("POST", "/dashboard/events/{event_id}/delete-personal-data")
    async def delete_data(self, request: web.Request) -> web.Response:
        event, record, _user = await self.site.owned_event(request)
        form = await request.post()
        self.site.check_csrf(record.csrf_token, form)
        if not await self.delete_personal_data(event):
            # the live room holds chat, questions and answers in memory and would keep them
            raise web.HTTPSeeOther(
                f"/dashboard/events/{format_event_id(event.event_id)}/stats?notice=room-open"
            )
        raise web.HTTPSeeOther(
            f"/dashboard/events/{format_event_id(event.event_id)}/stats?notice=deleted"
        )

    async def delete_personal_data(self, event: Event) -> bool:
        """Delete what the event kept about people; False (nothing deleted) while its room is
        open (the live room holds chat, questions and answers in memory and would keep them).
        """
        rooms = self._rooms()
        if rooms is not None and rooms.get(event.event_id) is not None:
            return False
        event_id = event.event_id
        await self.site.store.run(lambda core: engagement.delete_personal_data(core, event_id))
        await self.site.store.run(lambda core: records.erase_people(core.connection, event_id))
        await self.site.store.run(
            lambda core: webhooks.sql_delete_event_deliveries(core.connection, event_id)
        )
        await self.attendance.delete_event_data(event.event_id)  # with the ratings
        await self.site.store.run_sql(lambda db: followup_records.delete_people(db, event_id))
        await self.publisher.delete_event_viewers(event.event_id)
        await self.recordings.delete_event_recordings(event.event_id)
        return True

    @route("GET", "/api/stats/monthly")
    async def api_monthly(self, request: web.Request) -> web.Response:
        user = await self.site.api_user(request)
        months = await self.attendance.events_per_month(None if user.is_admin else user.user_id)
        return web.json_response({"months": months})

    @route("GET", "/api/events/{event_id}/stats")
    async def api_event(self, request: web.Request) -> web.Response:
        user = await self.site.api_user(request)
        event = await self.site.store.get_event(request.match_info["event_id"])
        if event is None or not user.manages(event):
            raise json_error(404, "not-found", _("no such event of yours"))
        stats: EventStats = await self.attendance.detailed_stats(event.event_id)
        return web.json_response(stats.as_json())


def _download(body: bytes, content_type: str, filename: str) -> web.Response:
    """A UTF-8 export that the browser saves as ``filename``."""
    return web.Response(
        body=body,
        content_type=content_type,
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
