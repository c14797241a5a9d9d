"""Interaction, exports and statistics of an event in the API (``/api/v1/events/{id}/…``).

Polls and tests, calls-to-action prepared before the event, poll images, the interaction and
engagement exports (JSON and CSV), the statistics, and deleting the event's personal data.
The rules are the dashboard's (:class:`webinar.http.interaction.InteractionHttp`,
:class:`webinar.http.stats.StatsPages` do the work).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass

import msgspec
from aiohttp import web

from webinar.attendance.service import (
    SESSION_COLUMNS,
    AttendanceService,
    EventStats,
    session_rows,
    to_csv,
)
from webinar.formats import iso_time
from webinar.http import interaction as ih
from webinar.http.api import schema as s
from webinar.http.api.auth import Authenticator
from webinar.http.api.errors import api_error
from webinar.http.api.events import visible_event
from webinar.http.api.paging import paginate
from webinar.http.api.table import PAGE_QUERY, ApiPages, Call, Query, operation
from webinar.http.stats import Report, StatsPages
from webinar.i18n import _
from webinar.ids import format_event_id
from webinar.interaction import store as ist
from webinar.rooms import cta as ct
from webinar.rooms import polls as pl
from webinar.rooms.interaction_errors import InteractionError
from webinar.storage.api_tokens import Scope
from webinar.storage.store import Event, Store

INTERACTION = "Interaction"
EXPORTS = "Exports and statistics"
#: The CSV exports of an event: the interaction ones, the engagement table, the sessions.
#: After the event: one row per registrant or invitee, per rating, per recording lead.
AFTER_KINDS = ("registrants", "ratings", "leads")
CSV_KINDS = (*ist.EXPORT_KINDS, "engagement", "sessions", *AFTER_KINDS)
_BOM = Query(
    "bom",
    "1: start the file with a UTF-8 byte-order mark (for spreadsheet programs).",
    {"type": "string", "enum": ["0", "1"]},
)


@contextlib.contextmanager
def refused() -> Iterator[None]:
    """A domain refusal (InteractionError) as the API's 422 with its code."""
    try:
        yield
    except InteractionError as exc:
        raise api_error(422, exc.code.value, exc.message) from None


def poll_json(p: pl.Poll) -> s.Poll:
    return s.Poll(
        poll_id=p.poll_id,
        title=p.title,
        kind=p.kind.value,
        state=p.state.value,
        results_shown=p.results_shown,
        questions=msgspec.convert(json.loads(ist.poll_definition(p)), list[s.PollQuestion]),
    )


def prepared_json(p: ct.PreparedCta) -> s.PreparedCta:
    return s.PreparedCta(
        prepared_id=p.prepared_id,
        message=p.message,
        button=p.button,
        url=p.url,
        duration_seconds=p.duration_seconds,
    )


def stats_json(stats: EventStats, report: Report | None = None) -> s.EventStats:
    """The statistics in the API's shape; with ``report``, the ratings, registrants, devices,
    poll and call-to-action results and leads too."""
    people = []
    for p in stats.people:
        people.append(
            s.PersonStats(
                person_key=p.person_key,
                name=p.name,
                email=p.email,
                role=p.role,
                first_join=iso_time(p.first_join, timespec="seconds", zulu=True) or "",
                last_leave=iso_time(p.last_leave, timespec="seconds", zulu=True),
                sessions=p.sessions,
                seconds=round(p.seconds, 1),
                browser=p.browser,
                os=p.os,
                engagement=dict(p.extra),
                device=p.device,  # type: ignore[arg-type]  # one of useragent.DEVICES
                model=p.model,
                joined_late=p.joined_late,
                left_early=p.left_early,
            )
        )
    more = msgspec.convert(report.as_json(zulu=True), _ReportPart) if report else _ReportPart()
    return s.EventStats(
        event_id=format_event_id(stats.event_id),
        attendees=stats.attendees,
        participants=stats.participants,
        peak_concurrency=stats.peak_concurrency,
        peak_at=iso_time(stats.peak_at, timespec="seconds", zulu=True),
        average_seconds=round(stats.average_seconds, 1),
        people=people,
        concurrency=[
            s.ConcurrencyStep(iso_time(t, timespec="seconds", zulu=True) or "", n)
            for t, n in stats.concurrency
        ],
        rating=more.rating,
        ratings=more.ratings,
        registrants=more.registrants,
        devices=more.devices,
        browsers=more.browsers,
        poll_results=more.poll_results,
        cta_results=more.cta_results,
        leads=more.leads,
    )


class _ReportPart(msgspec.Struct):
    """What :meth:`webinar.http.stats.Report.as_json` adds to the statistics."""

    rating: s.RatingSummary | None = None
    ratings: list[s.RatingItem] = []
    registrants: list[s.RegistrantStats] = []
    devices: dict[str, int] = {}
    browsers: dict[str, int] = {}
    poll_results: list[s.PollResult] = []
    cta_results: list[s.CtaResult] = []
    leads: list[s.LeadItem] = []


def download(body: bytes, content_type: str, filename: str) -> web.Response:
    return web.Response(
        body=body,
        content_type=content_type,
        charset="utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )


@dataclass
class InteractionApi(ApiPages):
    store: Store
    auth: Authenticator
    interaction: ih.InteractionHttp
    stats: StatsPages
    attendance: AttendanceService

    async def _event(self, request: web.Request, call: Call) -> Event:
        return await visible_event(self.store, request, call.who())

    # ------------------------------------------------------------------ polls

    @operation(
        "GET",
        "/api/v1/events/{event_id}/polls",
        scope=Scope.READ,
        summary="List an event's polls and tests",
        description="In the order made, with their state and definition (right answers too).",
        tag=INTERACTION,
        response=s.PollPage,
        query=PAGE_QUERY,
        errors=(404,),
    )
    async def list_polls(self, request: web.Request, call: Call) -> s.PollPage:
        event_id = (await self._event(request, call)).event_id
        polls = await self.store.run(lambda core: ist.list_polls(core, event_id))
        page = paginate(request, polls, lambda p: (p.created_at, p.poll_id))
        return s.PollPage([poll_json(p) for p in page.items], page.next_cursor)

    @operation(
        "POST",
        "/api/v1/events/{event_id}/polls",
        scope=Scope.WRITE,
        summary="Prepare a poll or test",
        description="A draft that presenters launch in the room; a live room's presenters "
        "see it at once. 422 with the refusal's code when a bound is broken.",
        tag=INTERACTION,
        status=201,
        response=s.Poll,
        body=s.PollSpec,
        errors=(404, 422),
        max_body_bytes=ih.MAX_JSON_BODY_BYTES,
    )
    async def create_poll(self, request: web.Request, call: Call) -> s.Poll:
        event = await self._event(request, call)
        spec = msgspec.to_builtins(call.body_as(s.PollSpec))
        with refused():
            return poll_json(await self.interaction.create_poll(event, spec))

    @operation(
        "PUT",
        "/api/v1/events/{event_id}/polls/{poll_id}",
        scope=Scope.WRITE,
        summary="Replace a prepared poll's definition",
        description="Only a poll that never ran (422 invalid-request once launched).",
        tag=INTERACTION,
        response=s.Poll,
        body=s.PollSpec,
        errors=(404, 422),
        max_body_bytes=ih.MAX_JSON_BODY_BYTES,
    )
    async def update_poll(self, request: web.Request, call: Call) -> s.Poll:
        event = await self._event(request, call)
        spec = msgspec.to_builtins(call.body_as(s.PollSpec))
        with refused():
            poll = await self.interaction.update_poll(event, request.match_info["poll_id"], spec)
        return poll_json(poll)

    @operation(
        "DELETE",
        "/api/v1/events/{event_id}/polls/{poll_id}",
        scope=Scope.WRITE,
        summary="Delete a prepared poll",
        description="Only a poll that never ran (422 invalid-request once launched).",
        tag=INTERACTION,
        status=204,
        errors=(404, 422),
    )
    async def delete_poll(self, request: web.Request, call: Call) -> None:
        event = await self._event(request, call)
        with refused():
            await self.interaction.delete_poll(event, request.match_info["poll_id"])

    # ------------------------------------------------------------------ calls-to-action

    @operation(
        "GET",
        "/api/v1/events/{event_id}/ctas",
        scope=Scope.READ,
        summary="List prepared calls-to-action",
        description="In the order made.",
        tag=INTERACTION,
        response=s.PreparedCtaPage,
        query=PAGE_QUERY,
        errors=(404,),
    )
    async def list_ctas(self, request: web.Request, call: Call) -> s.PreparedCtaPage:
        event_id = (await self._event(request, call)).event_id
        prepared = await self.store.run(lambda core: ist.list_prepared_ctas(core, event_id))
        page = paginate(request, prepared, lambda p: (p.created_at, p.prepared_id))
        return s.PreparedCtaPage([prepared_json(p) for p in page.items], page.next_cursor)

    @operation(
        "POST",
        "/api/v1/events/{event_id}/ctas",
        scope=Scope.WRITE,
        summary="Prepare a call-to-action",
        description="Presenters show it in the room with one click; at most 50 per event.",
        tag=INTERACTION,
        status=201,
        response=s.PreparedCta,
        body=s.CtaSpec,
        errors=(404, 422),
    )
    async def create_cta(self, request: web.Request, call: Call) -> s.PreparedCta:
        event = await self._event(request, call)
        with refused():
            prepared = await self.interaction._prepare_cta(
                event, msgspec.to_builtins(call.body_as(s.CtaSpec))
            )
        return prepared_json(prepared)

    @operation(
        "DELETE",
        "/api/v1/events/{event_id}/ctas/{prepared_id}",
        scope=Scope.WRITE,
        summary="Delete a prepared call-to-action",
        description="Those shown already (and their clicks) stay.",
        tag=INTERACTION,
        status=204,
        errors=(404,),
    )
    async def delete_cta(self, request: web.Request, call: Call) -> None:
        event = await self._event(request, call)
        if not await self.interaction._delete_prepared(event, request.match_info["prepared_id"]):
            raise api_error(404, "not-found", _("no such prepared call-to-action"))

    # ------------------------------------------------------------------ images

    @operation(
        "POST",
        "/api/v1/events/{event_id}/images",
        scope=Scope.WRITE,
        summary="Upload a poll option's image",
        description="The image is the raw body: PNG, JPEG, GIF or WebP (by content), at most "
        "2 MiB, 200 per event. The event's presenter or host key in X-Presenter-Key is "
        "accepted instead of a token (what the presenter's page sends).",
        tag=INTERACTION,
        status=201,
        response=s.Image,
        errors=(404, 413, 415, 422),
        presenter_key=True,
        raw_body="application/octet-stream",
    )
    async def upload_image(self, request: web.Request, call: Call) -> s.Image:
        if call.caller is None:  # a presenter key instead of a token
            event = await self.store.get_event(request.match_info["event_id"])
            if event is None or not await self.interaction.presenter_may_upload(request, event):
                raise api_error(
                    403, "forbidden", _("this key is not the event's presenter or host key")
                )
        else:
            event = await self._event(request, call)
        return msgspec.convert(await self.interaction.store_image(request, event), s.Image)

    # ------------------------------------------------------------------ exports

    @operation(
        "GET",
        "/api/v1/events/{event_id}/interaction",
        scope=Scope.READ,
        summary="The event's chat, questions, poll answers, scores and clicks",
        description="One object per row of each CSV export, keyed by its columns.",
        tag=EXPORTS,
        response=s.Interaction,
        errors=(404,),
    )
    async def interaction_json(self, request: web.Request, call: Call) -> s.Interaction:
        event = await self._event(request, call)
        event_id = event.event_id
        data = await self.store.run(lambda core: ih.export_json(core, event_id))
        return msgspec.convert({"event_id": event.display_id, **data}, s.Interaction)

    @operation(
        "GET",
        "/api/v1/events/{event_id}/engagement",
        scope=Scope.READ,
        summary="The engagement table: one row per person",
        description="Attendance columns, then each source's engagement columns; details "
        "holds the detail files' rows.",
        tag=EXPORTS,
        response=s.Engagement,
        errors=(404,),
    )
    async def engagement_json(self, request: web.Request, call: Call) -> s.Engagement:
        event = await self._event(request, call)
        event_id = event.event_id
        columns, rows = await self.attendance.engagement(event_id)
        details = await self.store.run(lambda core: ih.export_json(core, event_id))
        sessions = session_rows(await self.attendance.sessions(event_id), time.time())
        return msgspec.convert(
            {
                "event_id": event.display_id,
                "columns": columns,
                "attendees": rows,
                "details": {"sessions": sessions, **details},
            },
            s.Engagement,
        )

    @operation(
        "GET",
        "/api/v1/events/{event_id}/exports/{kind}.csv",
        scope=Scope.READ,
        summary="An export as CSV",
        description="kind: chat, questions, polls, scores, cta (the interaction exports), "
        "engagement (one row per person), sessions (one row per session), registrants (one "
        "row per registrant or invitee), ratings or leads. UTF-8, a header "
        "row, CRLF line ends; cells that would start a formula begin with '.",
        tag=EXPORTS,
        media="text/csv",
        query=(_BOM,),
        errors=(404,),
    )
    async def export_csv(self, request: web.Request, call: Call) -> web.Response:
        event = await self._event(request, call)
        kind = request.match_info["kind"]
        bom = ih.wants_bom(request)
        if kind == "engagement":
            columns, rows = await self.attendance.engagement(event.event_id)
            body = to_csv(columns, rows, bom=bom)
        elif kind == "sessions":
            rows = session_rows(await self.attendance.sessions(event.event_id), time.time())
            body = to_csv(SESSION_COLUMNS, rows, bom=bom)
        elif kind in ist.EXPORT_KINDS:
            return await self.interaction._csv(event, kind, bom=bom)
        elif kind in AFTER_KINDS:
            body = await self.stats.csv(event, kind, bom=bom)
        else:
            raise api_error(
                404, "not-found", _("exports are %(kinds)s") % {"kinds": ", ".join(CSV_KINDS)}
            )
        return download(body, "text/csv", f"event-{event.event_id}-{kind}.csv")

    # ------------------------------------------------------------------ statistics

    @operation(
        "GET",
        "/api/v1/events/{event_id}/stats",
        scope=Scope.READ,
        summary="An event's attendance statistics",
        description="attendees counts distinct people with the attendee role; concurrency is "
        "a step function of the sessions in the room; rating, ratings, registrants (every "
        "registrant and invitee: attended, minutes, joined late, left early, device, rating), "
        "devices, browsers, poll_results, cta_results and leads (the recording's e-mail gate).",
        tag=EXPORTS,
        response=s.EventStats,
        errors=(404,),
    )
    async def event_stats(self, request: web.Request, call: Call) -> s.EventStats:
        event = await self._event(request, call)
        report = await self.stats.report(event)
        return stats_json(report.stats, report)

    @operation(
        "GET",
        "/api/v1/stats/monthly",
        scope=Scope.READ,
        summary="Events and attendees per month",
        description="By the events' start (or creation); the caller's events (an admin's: all).",
        tag=EXPORTS,
        response=s.Monthly,
    )
    async def monthly(self, request: web.Request, call: Call) -> s.Monthly:
        months = await self.attendance.events_per_month(call.who().owner_id)
        return msgspec.convert({"months": months}, s.Monthly)

    @operation(
        "DELETE",
        "/api/v1/events/{event_id}/personal-data",
        scope=Scope.WRITE,
        summary="Delete what the event kept about people",
        description="Attendance, chat, questions and votes, answers, clicks, mutes, recording "
        "viewers and recordings. 409 room-open while people are in the event's room.",
        tag=EXPORTS,
        status=204,
        errors=(404, 409),
    )
    async def delete_personal_data(self, request: web.Request, call: Call) -> None:
        event = await self._event(request, call)
        if not await self.stats.delete_personal_data(event):
            raise api_error(
                409,
                "room-open",
                _("people are in the event's room: end the event or wait until all have left"),
            )
