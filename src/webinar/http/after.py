"""After the event: the thank-you e-mail's settings page, and rating an event.

Routes:
``GET/POST /dashboard/events/{id}/after`` (the signed-in organiser: switch the thank-you
e-mail on or off, its subject and text, its delay; a preview; who was sent it),
``GET /rate/{token}`` (the small rating page the thank-you e-mail links to) and
``POST /rate/{token}`` (save a rating: a form from that page, or JSON ``{stars, comment}``
from the room's ended view, answered with JSON).
"""

from __future__ import annotations

import dataclasses
import time
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from webinar.attendance.ratings import (
    COMMENT_MAX_CHARS,
    STARS,
    Rater,
    RatingError,
    Ratings,
    Summary,
)
from webinar.followup import records as followup_records
from webinar.followup.service import FollowUp
from webinar.http.branding import event_brand
from webinar.http.inputs import json_error, read_json
from webinar.http.language import of_request, use_event_language
from webinar.http.site import Pages, Site, route
from webinar.i18n import N_, _, gettext
from webinar.ids import format_event_id
from webinar.storage.store import Event
from webinar.ticketing.books import Attempts, local_attempts
from webinar.ticketing.grants import Refusal, RefusalCode
from webinar.ticketing.limiter import AttemptLimiter
from webinar.ticketing.shared import SharedTicketing

#: Ratings one person may save in the window (each replaces the last), and one address.
RATINGS_PER_RATER = 10
RATINGS_PER_ADDRESS = 300
RATING_WINDOW_SECONDS = 600.0


def rating_limiters(shared: SharedTicketing | None = None) -> tuple[Attempts, Attempts]:
    """(per rater, per client address); in Redis with ``shared``, so every worker counts."""
    if shared is not None:
        return (
            shared.attempts(
                "rating-person", per_client=RATINGS_PER_RATER, window=RATING_WINDOW_SECONDS
            ),
            shared.attempts(
                "rating-address", per_client=RATINGS_PER_ADDRESS, window=RATING_WINDOW_SECONDS
            ),
        )
    return (
        local_attempts(AttemptLimiter(per_client=RATINGS_PER_RATER, window=RATING_WINDOW_SECONDS)),
        local_attempts(
            AttemptLimiter(per_client=RATINGS_PER_ADDRESS, window=RATING_WINDOW_SECONDS)
        ),
    )


#: The states of a thank-you e-mail as the organiser reads them.
_MAIL_STATES = {
    "pending": N_("waiting"),
    "sending": N_("sending"),
    "sent": N_("sent"),
    "failed": N_("failed"),
}


def _when(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M UTC")


class AfterPages(Pages):
    def __init__(
        self,
        site: Site,
        followup: FollowUp,
        ratings: Ratings,
        *,
        shared: SharedTicketing | None = None,
    ) -> None:
        self.site = site
        self.followup = followup
        self.ratings = ratings
        self.per_rater, self.per_address = rating_limiters(shared)

    # ------------------------------------------------------------------ the organiser's page

    @route("GET", "/dashboard/events/{event_id}/after")
    async def page(self, request: web.Request) -> web.Response:
        event, _record, _user = await self.site.owned_event(request)
        settings = await self.followup.settings(event.event_id)
        return await self._page(request, event, settings, notice=request.query.get("notice"))

    async def _page(
        self,
        request: web.Request,
        event: Event,
        settings: followup_records.Settings,
        *,
        error: str | None = None,
        notice: str | None = None,
        status: int = 200,
    ) -> web.Response:
        record, user = await self.site.require(request)
        mails = await self.followup.mails(event.event_id)
        ending = await self.followup.attendance.ending(event.event_id)
        counts = {state: 0 for state in followup_records.STATES}
        for mail in mails:
            counts[mail.state] += 1
        preview = await self.followup.preview(event, settings, of_request(request))
        rows = [
            {
                "email": m.email,
                "name": m.name,
                "state": m.state,
                "state_label": gettext(_MAIL_STATES[m.state]),
                "sent": _when(m.sent_at) if m.sent_at is not None else "",
            }
            for m in mails
        ]
        return self.site.render(
            request,
            "after.html",
            status=status,
            user=user,
            csrf=record.csrf_token,
            event={"id": format_event_id(event.event_id), "title": event.title},
            settings=settings,
            limits={
                "subject": followup_records.SUBJECT_MAX_CHARS,
                "text": followup_records.TEXT_MAX_CHARS,
                "delay": followup_records.DELAY_MAX_MINUTES,
            },
            ending=ending,
            ended_when=_when(ending.ended_at) if ending is not None else "",
            mails=rows,
            counts=counts,
            preview=preview,
            error=error,
            notice=notice == "saved",
        )

    @route("POST", "/dashboard/events/{event_id}/after")
    async def save(self, request: web.Request) -> web.Response:
        event, record, _user = await self.site.owned_event(request)
        form = await request.post()
        self.site.check_csrf(record.csrf_token, form)
        before = await self.followup.settings(event.event_id)
        raw_delay = str(form.get("delay_minutes", "0")).strip() or "0"
        settings = dataclasses.replace(
            before,
            enabled=form.get("enabled") in ("on", "1", "true"),
            subject=str(form.get("subject", ""))[: followup_records.SUBJECT_MAX_CHARS * 2],
            text=str(form.get("text", ""))[: followup_records.TEXT_MAX_CHARS * 2],
        )
        try:
            if not (raw_delay.isascii() and raw_delay.isdigit()) or len(raw_delay) > 6:
                raise ValueError(_("the delay must be a whole number of minutes"))
            settings = dataclasses.replace(settings, delay_minutes=int(raw_delay))
            await self.followup.save_settings(settings)
        except ValueError as exc:
            return await self._page(request, event, settings, error=str(exc), status=400)
        raise web.HTTPSeeOther(
            f"/dashboard/events/{format_event_id(event.event_id)}/after?notice=saved"
        )

    # ------------------------------------------------------------------ rating

    async def _rater(self, request: web.Request) -> tuple[Rater, Event]:
        try:
            rater = self.ratings.rater(request.match_info["token"])
        except RatingError as exc:
            status = 410 if exc.code == "expired" else 404
            raise _Refused(status, exc.code, exc.message) from None
        event = await self.site.store.get_event(rater.event_id)
        if event is None:
            raise _Refused(404, "not-found", _("This event no longer exists."))
        use_event_language(request, event.language)
        return rater, event

    @route("GET", "/rate/{token}")
    async def rate_page(self, request: web.Request) -> web.Response:
        try:
            rater, event = await self._rater(request)
        except _Refused as refused:
            return await self._rate_page(
                request, None, error=refused.message, status=refused.status
            )
        given = await self.ratings.of(rater)
        chosen = request.query.get("stars", "")
        stars = int(chosen) if chosen in {str(n) for n in STARS} else None
        return await self._rate_page(
            request,
            event,
            rater=rater,
            stars=stars if stars is not None else (given.stars if given else None),
            comment=given.comment if given else "",
            before=given is not None,
        )

    async def _rate_page(
        self,
        request: web.Request,
        event: Event | None,
        *,
        rater: Rater | None = None,
        stars: int | None = None,
        comment: str = "",
        before: bool = False,
        done: bool = False,
        error: str | None = None,
        status: int = 200,
    ) -> web.Response:
        response = self.site.render(
            request,
            "rate.html",
            status=status,
            event=event,
            brand=await event_brand(self.site.store, event) if event is not None else None,
            person=rater.name if rater else "",
            stars=stars,
            comment=comment,
            before=before,
            done=done,
            error=error,
            max_comment=COMMENT_MAX_CHARS,
            star_values=STARS,
        )
        response.headers["Cache-Control"] = "no-store"
        response.headers["Referrer-Policy"] = "no-referrer"  # the token is in the path
        return response

    @route("POST", "/rate/{token}")
    async def rate(self, request: web.Request) -> web.Response:
        as_json = request.content_type == "application/json"
        try:
            rater, event = await self._rater(request)
            await self._count(request, rater)
            if as_json:
                body = await read_json(request, json_error)
                if not isinstance(body, dict):
                    raise _Refused(400, "bad-input", _("Send an object with stars and comment."))
                stars, comment = body.get("stars"), body.get("comment", "")
            else:
                form = await request.post()
                stars, comment = form.get("stars"), form.get("comment", "")
            try:
                rating = await self.ratings.rate(rater, stars, comment)
            except RatingError as exc:
                if as_json:
                    raise _Refused(400, exc.code, exc.message) from None
                return await self._rate_page(
                    request,
                    event,
                    rater=rater,
                    comment=str(comment)[:COMMENT_MAX_CHARS],
                    error=exc.message,
                    status=400,
                )
        except _Refused as refused:
            if as_json:
                raise json_error(refused.status, refused.code, refused.message) from None
            return await self._rate_page(
                request, None, error=refused.message, status=refused.status
            )
        if as_json:
            return web.json_response(
                {"stars": rating.stars, "comment": rating.comment}, headers=_NO_STORE
            )
        return await self._rate_page(
            request,
            event,
            rater=rater,
            stars=rating.stars,
            comment=rating.comment,
            before=True,
            done=True,
        )

    async def _count(self, request: web.Request, rater: Rater) -> None:
        """Every rating counts against its person's and its address's limits."""
        now = time.monotonic()
        try:
            person = await self.per_rater.reserve(f"{rater.event_id}/{rater.key}", None, now)
        except Refusal as refusal:
            raise _limited(refusal) from None
        try:
            address = await self.per_address.reserve(request.remote, None, now)
        except Refusal as refusal:
            await person.forgive()
            raise _limited(refusal) from None
        await person.failed(now)
        await address.failed(now)


_NO_STORE = {"Cache-Control": "no-store"}


class _Refused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _limited(refusal: Refusal) -> _Refused:
    if refusal.code is RefusalCode.UNAVAILABLE:
        return _Refused(503, "unavailable", _("Rating is unavailable for a moment; try again."))
    return _Refused(
        429,
        "rate-limited",
        _("Too many ratings; try again in %(seconds)s s.") % {"seconds": refusal.retry_after},
    )


def rating_context(summary: Summary) -> dict[str, Any]:
    """What the statistics page shows of the ratings' summary (bars in percent)."""
    total = max(1, summary.count)
    return {
        "count": summary.count,
        "average": None if summary.average is None else f"{summary.average:.1f}",
        "bars": [
            (n, summary.distribution[n], round(100 * summary.distribution[n] / total))
            for n in reversed(STARS)
        ],
    }
