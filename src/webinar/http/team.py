"""Who works on an event, and copying or deleting it: the dashboard's *Team* page
(``/dashboard/events/{id}/team``) and :class:`EventTeam`, the one set of rules the page and
the API (:mod:`webinar.http.api.team`) share.

- Co-organisers are accounts that manage the event as its owner does (they see it in their
  list, change it, its registrations, polls, content, statistics). The owner or an admin
  chooses them; a co-organiser may leave. Each is told by e-mail when they have an address.
- Presenters are people, by name and e-mail address, who get the event's presenter link by
  e-mail (with the event's ``.ics``); anyone who manages the event adds them and sends the link
  again.
- Duplicating copies what :mod:`webinar.http.event_ops` copies, under the booking rules of
  a new event (its owner's active-events limit unless an admin duplicates it); deleting takes
  the event with everything it held (only its owner or an admin; not while its room is open).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from webinar.http.accounts import AccountMail
from webinar.http.event_ops import (
    Copied,
    Deleted,
    EventInUse,
    delete_event,
    duplicate_event,
    remove_event_files,
    settings_of,
)
from webinar.http.site import Pages, Site, route
from webinar.i18n import _
from webinar.ids import format_event_id
from webinar.rooms.manager import RoomManager
from webinar.storage import accounts
from webinar.storage.accounts import Organiser, Presenter
from webinar.storage.store import Event, EventSettings, SessionRecord, User
from webinar.ticketing import records
from webinar.ticketing.gate import Ticketing
from webinar.ticketing.mail import MailError
from webinar.ticketing.rules import check_booking

logger = logging.getLogger(__name__)

_NOTICES = ("organiser-added", "organiser-removed", "presenter-sent", "presenter-removed")


class NotAllowed(Exception):
    """The account manages the event but may not do this (only its owner or an admin)."""


@dataclass
class EventTeam:
    """The rules of an event's team, duplicating and deleting, for pages and the API."""

    site: Site
    mail: AccountMail
    ticketing: Ticketing
    shared_dir: Path
    rooms: Callable[[], RoomManager | None] = lambda: None

    # ------------------------------------------------------------------ co-organisers

    async def organisers(self, event: Event) -> list[Organiser]:
        return await self.site.store.run(
            lambda core: accounts.organisers(core.connection, event.event_id)
        )

    async def _signed(self, event: Event, actor: User) -> str:
        """Whose name an e-mail about the event goes out in: the account acting, or for the
        configured admin token (no account) the event's owner."""
        if actor.user_id > 0:
            return actor.username
        return await self.owner_name(event) or actor.username

    async def owner_name(self, event: Event) -> str | None:
        owner_id = event.owner_id
        if owner_id is None:
            return None
        owner = await self.site.store.run(lambda core: core.get_user(owner_id))
        return None if owner is None else owner.username

    async def add_organiser(
        self, event: Event, actor: User, who: str, site: str
    ) -> tuple[User, bool]:
        """Make the account called ``who`` (user name or e-mail address) a co-organiser;
        the account, and whether the e-mail telling them went out. :class:`NotAllowed`
        unless ``actor`` owns the event; ValueError names what is wrong."""
        if not actor.owns(event):
            raise NotAllowed(_("only the event's owner or an admin chooses its co-organisers"))
        who = who.strip()[:254]
        if not who:
            raise ValueError(_("enter the user name or e-mail address of an account"))
        target = await self.site.store.find_user(who)
        if target is None:
            raise ValueError(
                _("no account is called %(who)s; an admin can invite them from People")
                % {"who": who}
            )
        now = datetime.now(UTC)
        await self.site.store.run(
            lambda core: accounts.add_organiser(
                core.connection,
                event.event_id,
                target,
                owner_id=event.owner_id,
                added_by=actor.user_id if actor.user_id > 0 else None,  # not admin.token
                now=now,
            )
        )
        logger.info(
            "%s made %s a co-organiser of %s", actor.username, target.username, event.event_id
        )
        by = await self._signed(event, actor)
        told = False
        if target.email is not None:
            try:
                await self.mail.co_organiser(
                    target.email, target.username, event, added_by=by, site=site
                )
                told = True
            except MailError as exc:
                logger.warning("co-organiser notice not sent: %s", exc)
        return target, told

    async def remove_organiser(self, event: Event, actor: User, user_id: int) -> None:
        """The owner or an admin removes a co-organiser; a co-organiser may leave."""
        if not (actor.owns(event) or actor.user_id == user_id):
            raise NotAllowed(_("only the event's owner or an admin chooses its co-organisers"))
        if not await self.site.store.run(
            lambda core: accounts.remove_organiser(core.connection, event.event_id, user_id)
        ):
            raise LookupError(user_id)

    # ------------------------------------------------------------------ presenters

    async def presenters(self, event: Event) -> list[Presenter]:
        return await self.site.store.run(
            lambda core: accounts.presenters(core.connection, event.event_id)
        )

    async def add_presenter(
        self, event: Event, actor: User, name: str, email: str, site: str
    ) -> Presenter:
        """Add a presenter and e-mail them the presenter link (:class:`MailError` when the
        e-mail could not be sent: they stay on the list, to send again)."""
        now = datetime.now(UTC)
        presenter = await self.site.store.run(
            lambda core: accounts.add_presenter(
                core.connection, event.event_id, name, email, now=now
            )
        )
        return await self.send_presenter(event, actor, presenter, site)

    async def send_presenter(
        self, event: Event, actor: User, presenter: Presenter, site: str
    ) -> Presenter:
        organiser = await self._signed(event, actor)
        await self.mail.presenter(presenter, event, site=site, organiser=organiser)
        now = datetime.now(UTC)
        presenter_id = presenter.presenter_id
        await self.site.store.run(
            lambda core: accounts.mark_presenter_sent(core.connection, presenter_id, now)
        )
        if self.mail.desk is not None:  # reminded, and told of changes, like everyone told
            await self.mail.desk.plan_presenter_reminder(event, presenter_id)
        return dataclasses.replace(presenter, sent_at=now)

    async def presenter(self, event: Event, presenter_id: int) -> Presenter:
        found = await self.site.store.run(
            lambda core: accounts.get_presenter(core.connection, event.event_id, presenter_id)
        )
        if found is None:
            raise LookupError(presenter_id)
        return found

    async def remove_presenter(self, event: Event, presenter_id: int) -> None:
        if not await self.site.store.run(
            lambda core: accounts.remove_presenter(core.connection, event.event_id, presenter_id)
        ):
            raise LookupError(presenter_id)

    # ------------------------------------------------------------------ copy and delete

    async def duplicate(
        self, event: Event, actor: User, settings: EventSettings
    ) -> tuple[Event, Copied]:
        """A copy of ``event`` with ``settings``, owned by its owner: the booking rules of a
        new event apply (its owner's active-events limit, unless an admin makes it).
        ValueError (or :class:`webinar.ticketing.rules.BookingRefused`) names what is wrong."""
        checked = settings.validated()
        now = self.ticketing.clock()
        limits = self.ticketing.limits
        active = 0
        owner_id = event.owner_id
        if not actor.is_admin and owner_id is not None:
            active = await self.site.store.run(
                lambda core: records.count_active_events(
                    core.connection, owner_id, now - limits.usable_for, now=now
                )
            )
        check_booking(checked.starts_at, now, limits, active_events=active)
        if checked.access_type == "paid" and checked.starts_at is None:
            raise ValueError(_("a paid event needs a start date and time"))
        images = self.shared_dir / "images"
        copy, copied = await self.site.store.run(
            lambda core: duplicate_event(core, event, checked, images)
        )
        logger.info("%s duplicated %s as %s", actor.username, event.event_id, copy.event_id)
        return copy, copied

    async def delete(self, event: Event, actor: User) -> Deleted:
        """Delete the event with everything it held. :class:`NotAllowed` unless ``actor``
        owns it; :class:`EventInUse` while its room is open (people in it, or the live room
        still holding chat and questions in memory); LookupError when it is gone already."""
        if not actor.owns(event):
            raise NotAllowed(_("only the event's owner or an admin may delete it"))
        rooms = self.rooms()
        if rooms is not None and rooms.get(event.event_id) is not None:
            raise EventInUse(event, 0)
        deleted = await self.site.store.run(lambda core: delete_event(core, event.event_id))
        await asyncio.to_thread(remove_event_files, self.shared_dir, deleted)
        logger.info("%s deleted event %s", actor.username, event.event_id)
        return deleted


def busy_text(busy: EventInUse) -> str:
    """Why an event cannot be deleted now, for people."""
    return _(
        "The event's room is open: end it for everyone (the host's “End for all”) and wait"
        " until everyone has left, then delete it."
    )


def start_from_form(text: str, zone_name: str) -> datetime | None:
    """A datetime-local field's value in the event's time zone, as UTC (empty: no start)."""
    text = text.strip()
    if not text:
        return None
    try:
        zone = zoneinfo.ZoneInfo(zone_name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        zone = zoneinfo.ZoneInfo("UTC")
    try:
        naive = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(_("the start must be a date and time")) from None
    return naive.replace(tzinfo=zone).astimezone(UTC)


def local_input(event: Event) -> str:
    """The event's start for a datetime-local field in its own zone (future starts only:
    a copy rarely happens at the same past time)."""
    if event.starts_at is None or event.starts_at <= datetime.now(UTC):
        return ""
    try:
        zone = zoneinfo.ZoneInfo(event.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        zone = zoneinfo.ZoneInfo("UTC")
    return event.starts_at.astimezone(zone).strftime("%Y-%m-%dT%H:%M")


@dataclass
class TeamPages(Pages):
    site: Site
    team: EventTeam

    async def _page(
        self,
        request: web.Request,
        record: SessionRecord,
        user: User,
        event: Event,
        *,
        error: str | None = None,
        done: str | None = None,
        values: dict[str, str] | None = None,
        status: int = 200,
    ) -> web.Response:
        organisers = await self.team.organisers(event)
        presenters = await self.team.presenters(event)
        notice = request.query.get("notice", "")
        return self.site.render(
            request,
            "event_team.html",
            status=status,
            user=user,
            csrf=record.csrf_token,
            event={
                "event_id": format_event_id(event.event_id),
                "title": event.title,
                "timezone": event.timezone,
            },
            owner=await self.team.owner_name(event),
            owns=user.owns(event),
            organisers=[
                {
                    "id": o.user_id,
                    "username": o.username,
                    "email": o.email or "",
                    "me": o.user_id == user.user_id,
                }
                for o in organisers
            ],
            presenters=[
                {
                    "id": p.presenter_id,
                    "name": p.name,
                    "email": p.email,
                    "sent": p.sent_at.strftime("%Y-%m-%d %H:%M") if p.sent_at else None,
                }
                for p in presenters
            ],
            error=error,
            done=done,
            notice=notice if notice in _NOTICES else None,
            values=values or {},
            copy_start=local_input(event),
        )

    def _team_page(self, event: Event, notice: str) -> web.HTTPSeeOther:
        return web.HTTPSeeOther(
            f"/dashboard/events/{format_event_id(event.event_id)}/team?notice={notice}"
        )

    @staticmethod
    def _int(request: web.Request, name: str) -> int:
        text = request.match_info[name]
        if not text.isdigit() or len(text) > 18:
            raise web.HTTPNotFound(text=_("No such person on this event."))
        return int(text)

    @route("GET", "/dashboard/events/{event_id}/team")
    async def page(self, request: web.Request) -> web.Response:
        event, record, user = await self.site.owned_event(request)
        return await self._page(request, record, user, event)

    async def _form(
        self, request: web.Request
    ) -> tuple[Event, SessionRecord, User, dict[str, str]]:
        event, record, user = await self.site.owned_event(request)
        form = await request.post()
        self.site.check_csrf(record.csrf_token, form)
        return event, record, user, {k: str(v) for k, v in form.items() if isinstance(v, str)}

    @route("POST", "/dashboard/events/{event_id}/team/organisers")
    async def add_organiser(self, request: web.Request) -> web.Response:
        event, record, user, form = await self._form(request)
        try:
            await self.team.add_organiser(
                event, user, form.get("who", ""), self.site.base_url(request)
            )
        except NotAllowed as exc:
            raise web.HTTPForbidden(text=str(exc)) from None
        except ValueError as exc:
            return await self._page(
                request, record, user, event, error=str(exc), values=form, status=400
            )
        raise self._team_page(event, "organiser-added")

    @route("POST", "/dashboard/events/{event_id}/team/organisers/{user_id}/remove")
    async def remove_organiser(self, request: web.Request) -> web.Response:
        event, _record, user, _form = await self._form(request)
        user_id = self._int(request, "user_id")
        try:
            await self.team.remove_organiser(event, user, user_id)
        except NotAllowed as exc:
            raise web.HTTPForbidden(text=str(exc)) from None
        except LookupError:
            raise web.HTTPNotFound(text=_("No such person on this event.")) from None
        if user_id == user.user_id and not user.owns(event):
            raise web.HTTPSeeOther("/dashboard")  # left the event: it is no longer theirs
        raise self._team_page(event, "organiser-removed")

    @route("POST", "/dashboard/events/{event_id}/team/presenters")
    async def add_presenter(self, request: web.Request) -> web.Response:
        event, record, user, form = await self._form(request)
        try:
            await self.team.add_presenter(
                event,
                user,
                form.get("name", ""),
                form.get("email", ""),
                self.site.base_url(request),
            )
        except ValueError as exc:
            return await self._page(
                request, record, user, event, error=str(exc), values=form, status=400
            )
        except MailError:
            return await self._page(
                request,
                record,
                user,
                event,
                error=_(
                    "%(email)s is on the list, but the e-mail could not be sent; send it again"
                    " later."
                )
                % {"email": form.get("email", "").strip()},
                status=502,
            )
        raise self._team_page(event, "presenter-sent")

    @route("POST", "/dashboard/events/{event_id}/team/presenters/{presenter_id}/resend")
    async def resend_presenter(self, request: web.Request) -> web.Response:
        event, record, user, _form = await self._form(request)
        try:
            presenter = await self.team.presenter(event, self._int(request, "presenter_id"))
        except LookupError:
            raise web.HTTPNotFound(text=_("No such person on this event.")) from None
        try:
            await self.team.send_presenter(event, user, presenter, self.site.base_url(request))
        except MailError:
            return await self._page(
                request,
                record,
                user,
                event,
                error=_("The e-mail to %(email)s could not be sent.") % {"email": presenter.email},
                status=502,
            )
        raise self._team_page(event, "presenter-sent")

    @route("POST", "/dashboard/events/{event_id}/team/presenters/{presenter_id}/remove")
    async def remove_presenter(self, request: web.Request) -> web.Response:
        event, _record, _user, _form = await self._form(request)
        try:
            await self.team.remove_presenter(event, self._int(request, "presenter_id"))
        except LookupError:
            raise web.HTTPNotFound(text=_("No such person on this event.")) from None
        raise self._team_page(event, "presenter-removed")

    @route("POST", "/dashboard/events/{event_id}/duplicate")
    async def duplicate(self, request: web.Request) -> web.Response:
        event, record, user, form = await self._form(request)
        try:
            changes: dict[str, Any] = {
                "starts_at": start_from_form(form.get("start", ""), event.timezone)
            }
            title = form.get("title", "").strip()
            if title:
                changes["title"] = title
            settings = dataclasses.replace(settings_of(event), **changes)
            copy, _copied = await self.team.duplicate(event, user, settings)
        except ValueError as exc:  # BookingRefused is one
            return await self._page(
                request, record, user, event, error=str(exc), values=form, status=400
            )
        raise web.HTTPSeeOther(f"/dashboard/events/{format_event_id(copy.event_id)}?copied=1")

    @route("POST", "/dashboard/events/{event_id}/delete")
    async def delete(self, request: web.Request) -> web.Response:
        event, record, user, form = await self._form(request)
        typed = "".join(c for c in form.get("confirm", "") if c.isdigit())
        if typed != event.event_id:
            return await self._page(
                request,
                record,
                user,
                event,
                error=_("Type the event ID %(id)s to delete it.") % {"id": event.display_id},
                status=400,
            )
        try:
            await self.team.delete(event, user)
        except NotAllowed as exc:
            raise web.HTTPForbidden(text=str(exc)) from None
        except EventInUse as busy:
            return await self._page(request, record, user, event, error=busy_text(busy), status=409)
        except LookupError:
            raise web.HTTPNotFound(text=_("No such event of yours.")) from None
        raise web.HTTPSeeOther("/dashboard?notice=deleted")
