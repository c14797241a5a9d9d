"""An event's team, copying and deleting it, and accounts, in the API (docs/api.md).

The rules are :class:`webinar.http.team.EventTeam`'s, as on the dashboard: co-organisers
manage an event as its owner does; only the owner (or an admin) chooses them and deletes the
event; presenters get the presenter link by e-mail. ``/api/v1/accounts`` is for admin tokens.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from aiohttp import web
from msgspec import UNSET, Meta, Struct, UnsetType

from webinar import i18n
from webinar.formats import iso_time
from webinar.http.accounts import AccountMail
from webinar.http.api import schema as s
from webinar.http.api.auth import Authenticator, Caller
from webinar.http.api.errors import api_error
from webinar.http.api.events import TOKEN_ADMIN, EventsApi, no_such_event, visible_event
from webinar.http.api.paging import paginate
from webinar.http.api.table import PAGE_QUERY, ApiPages, Call, operation
from webinar.http.event_ops import EventInUse, settings_of
from webinar.http.team import EventTeam, NotAllowed, busy_text
from webinar.i18n import _
from webinar.ids import format_event_id
from webinar.storage import accounts
from webinar.storage.accounts import Organiser as OrganiserRecord
from webinar.storage.accounts import Presenter as PresenterRecord
from webinar.storage.api_tokens import Scope
from webinar.storage.store import Event, Store, User
from webinar.ticketing.mail import MailError
from webinar.ticketing.rules import BookingRefused

TAG = "Team"
ACCOUNTS_TAG = "Accounts"


# ----------------------------------------------------------------------------- types


class Organiser(Struct):
    """A co-organiser: an account that manages the event as its owner does."""

    user_id: int
    username: str
    email: str | None
    added_at: s.Time


class OrganiserPage(Struct):
    owner: Annotated[s.Account | None, Meta(description="null: an event nobody owns")]
    items: list[Organiser]
    next_cursor: str | None


class OrganiserAdd(Struct, forbid_unknown_fields=True):
    account: Annotated[
        str,
        Meta(
            min_length=1,
            max_length=254,
            description="The account's user name or e-mail address",
            examples=["olga"],
        ),
    ]


class Presenter(Struct):
    """Someone who presents at the event: they get its presenter link by e-mail."""

    presenter_id: int
    name: str
    email: str
    added_at: s.Time
    sent_at: Annotated[s.Time | None, Meta(description="When the link was last e-mailed")]


class PresenterPage(Struct):
    items: list[Presenter]
    next_cursor: str | None


class PresenterAdd(Struct, forbid_unknown_fields=True):
    name: Annotated[str, Meta(min_length=1, max_length=200, examples=["Linus"])]
    email: Annotated[str, Meta(min_length=3, max_length=254, examples=["linus@example.org"])]


class EventCopy(Struct, forbid_unknown_fields=True):
    """What the copy changes; the rest is the source's."""

    title: Annotated[str, Meta(min_length=1, max_length=200)] | UnsetType = UNSET
    starts_at: (
        Annotated[
            s.Time | None,
            Meta(description="ISO 8601 with an offset; null: no start time; absent: the same"),
        ]
        | UnsetType
    ) = UNSET


class CopiedParts(Struct):
    polls: int
    images: int
    calls_to_action: int
    interaction_settings: bool
    auto_record: bool
    co_organisers: int


class EventCopied(Struct):
    event: s.Event
    copied_from: s.EventId
    copied: CopiedParts


class EventDeleted(Struct):
    deleted: s.EventId
    title: str
    recordings: int
    recording_bytes: int


class AccountInfo(Struct):
    user_id: int
    username: str
    email: str | None
    role: Literal["admin", "organiser"]


class AccountPage(Struct):
    items: list[AccountInfo]
    next_cursor: str | None


class InvitationCreate(Struct, forbid_unknown_fields=True):
    email: Annotated[str, Meta(min_length=3, max_length=254, examples=["ann@example.org"])]
    role: Literal["admin", "organiser"] = "organiser"


class AccountInvitation(Struct):
    invitation_id: int
    email: str
    role: Literal["admin", "organiser"]
    expires_at: s.Time
    link: Annotated[
        str,
        Meta(description="The link e-mailed to them (works once); shown only in this answer"),
    ]
    sent: Annotated[bool, Meta(description="false: the e-mail could not be sent")]


def _organiser(o: OrganiserRecord) -> Organiser:
    return Organiser(o.user_id, o.username, o.email, iso_time(o.added_at, zulu=True) or "")


def _presenter(p: PresenterRecord) -> Presenter:
    return Presenter(
        p.presenter_id,
        p.name,
        p.email,
        iso_time(p.added_at, zulu=True) or "",
        iso_time(p.sent_at, zulu=True),
    )


def _start(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise api_error(422, "invalid", _("starts_at must be ISO 8601"), at="$.starts_at") from None
    if parsed.tzinfo is None:
        raise api_error(
            422, "invalid", _("starts_at needs a UTC offset (or Z)"), at="$.starts_at"
        ) from None
    return parsed.astimezone(UTC)


@dataclass
class TeamApi(ApiPages):
    events: EventsApi
    team: EventTeam
    auth: Authenticator
    mail: AccountMail

    @property
    def store(self) -> Store:
        return self.team.site.store

    async def _event(self, request: web.Request, call: Call) -> Event:
        return await visible_event(self.store, request, call.who())

    @staticmethod
    def _actor(caller: Caller) -> User:
        return caller.user or TOKEN_ADMIN

    def _site(self, request: web.Request) -> str:
        return self.team.site.base_url(request)

    @staticmethod
    def _id(request: web.Request, name: str) -> int:
        text = request.match_info[name]
        if not text.isdigit() or len(text) > 18:
            raise api_error(404, "not-found", _("no such person on this event"))
        return int(text)

    # ------------------------------------------------------------------ copy and delete

    @operation(
        "POST",
        "/api/v1/events/{event_id}/duplicate",
        scope=Scope.WRITE,
        summary="Duplicate an event",
        description="A new event (new ID and links) with the source's settings, access "
        "settings and registration form, polls and tests as drafts with their images, "
        "prepared calls-to-action, chat and Q&A settings, automatic recording and "
        "co-organisers; the same owner. Registrations, invitees, presenters, chat, answers, "
        "attendance and recordings are not copied. The booking rules of a new event apply.",
        tag=TAG,
        status=201,
        response=EventCopied,
        body=EventCopy,
        errors=(404, 422),
    )
    async def duplicate(self, request: web.Request, call: Call) -> EventCopied:
        event = await self._event(request, call)
        body = call.body_as(EventCopy)
        settings = settings_of(event)
        changes: dict[str, Any] = {}
        if not isinstance(body.title, UnsetType):
            changes["title"] = body.title
        if not isinstance(body.starts_at, UnsetType):
            changes["starts_at"] = _start(body.starts_at)
        try:
            copy, copied = await self.team.duplicate(
                event, self._actor(call.who()), dataclasses.replace(settings, **changes)
            )
        except BookingRefused as refused:
            raise api_error(422, "booking-rule", str(refused), rule=refused.rule.value) from None
        except ValueError as exc:
            raise api_error(422, "invalid", str(exc)) from None
        return EventCopied(
            event=await self.events.event_json(request, copy),
            copied_from=format_event_id(event.event_id),
            copied=CopiedParts(
                polls=copied.polls,
                images=copied.images,
                calls_to_action=copied.calls_to_action,
                interaction_settings=copied.interaction_settings,
                auto_record=copied.auto_record,
                co_organisers=copied.co_organisers,
            ),
        )

    @operation(
        "DELETE",
        "/api/v1/events/{event_id}",
        scope=Scope.WRITE,
        summary="Delete an event",
        description="With everything it held: registrations, invitees, presenters, chat, "
        "questions, polls and answers, attendance, uploaded files and recordings. Only its "
        "owner or an admin (403 for a co-organiser); 409 while its room is open.",
        tag=TAG,
        response=EventDeleted,
        errors=(403, 404, 409),
    )
    async def delete(self, request: web.Request, call: Call) -> EventDeleted:
        event = await self._event(request, call)
        try:
            deleted = await self.team.delete(event, self._actor(call.who()))
        except NotAllowed as exc:
            raise api_error(403, "forbidden", str(exc)) from None
        except EventInUse as busy:
            raise api_error(409, "room-open", busy_text(busy)) from None
        except LookupError:
            raise no_such_event() from None
        return EventDeleted(
            deleted=format_event_id(event.event_id),
            title=event.title,
            recordings=len(deleted.recording_ids),
            recording_bytes=deleted.recording_bytes,
        )

    # ------------------------------------------------------------------ co-organisers

    @operation(
        "GET",
        "/api/v1/events/{event_id}/organisers",
        scope=Scope.READ,
        summary="List an event's co-organisers",
        description="Its owner, and the accounts that manage it besides, in the order added.",
        tag=TAG,
        response=OrganiserPage,
        query=PAGE_QUERY,
        errors=(404,),
    )
    async def list_organisers(self, request: web.Request, call: Call) -> OrganiserPage:
        event = await self._event(request, call)
        found = await self.team.organisers(event)
        page = paginate(request, found, lambda o: (o.added_at.isoformat(), o.user_id))
        owner = None
        if event.owner_id is not None:
            owner_id = event.owner_id
            user = await self.store.run(lambda core: core.get_user(owner_id))
            if user is not None:
                owner = s.Account(username=user.username, role=user.role)  # type: ignore[arg-type]
        return OrganiserPage(owner, [_organiser(o) for o in page.items], page.next_cursor)

    @operation(
        "POST",
        "/api/v1/events/{event_id}/organisers",
        scope=Scope.WRITE,
        summary="Add a co-organiser",
        description="An existing account, by user name or e-mail address; told by e-mail "
        "when it has an address. Only the event's owner or an admin.",
        tag=TAG,
        status=201,
        response=Organiser,
        body=OrganiserAdd,
        errors=(403, 404, 422),
    )
    async def add_organiser(self, request: web.Request, call: Call) -> Organiser:
        event = await self._event(request, call)
        body = call.body_as(OrganiserAdd)
        try:
            user, _told = await self.team.add_organiser(
                event, self._actor(call.who()), body.account, self._site(request)
            )
        except NotAllowed as exc:
            raise api_error(403, "forbidden", str(exc)) from None
        except ValueError as exc:
            raise api_error(422, "invalid", str(exc), at="$.account") from None
        for found in await self.team.organisers(event):
            if found.user_id == user.user_id:
                return _organiser(found)
        raise no_such_event()  # removed at once by someone else

    @operation(
        "DELETE",
        "/api/v1/events/{event_id}/organisers/{user_id}",
        scope=Scope.WRITE,
        summary="Remove a co-organiser",
        description="The owner or an admin removes anyone; a co-organiser may remove themselves.",
        tag=TAG,
        status=204,
        errors=(403, 404),
    )
    async def remove_organiser(self, request: web.Request, call: Call) -> None:
        event = await self._event(request, call)
        try:
            await self.team.remove_organiser(
                event, self._actor(call.who()), self._id(request, "user_id")
            )
        except NotAllowed as exc:
            raise api_error(403, "forbidden", str(exc)) from None
        except LookupError:
            raise api_error(404, "not-found", _("no such person on this event")) from None

    # ------------------------------------------------------------------ presenters

    @operation(
        "GET",
        "/api/v1/events/{event_id}/presenters",
        scope=Scope.READ,
        summary="List an event's presenters",
        description="The people e-mailed its presenter link, in the order added.",
        tag=TAG,
        response=PresenterPage,
        query=PAGE_QUERY,
        errors=(404,),
    )
    async def list_presenters(self, request: web.Request, call: Call) -> PresenterPage:
        event = await self._event(request, call)
        found = await self.team.presenters(event)
        page = paginate(request, found, lambda p: (p.presenter_id,))
        return PresenterPage([_presenter(p) for p in page.items], page.next_cursor)

    @operation(
        "POST",
        "/api/v1/events/{event_id}/presenters",
        scope=Scope.WRITE,
        summary="Add a presenter",
        description="They get the event's presenter link by e-mail, with its .ics (502 when "
        "the e-mail could not be sent: they stay on the list, to send again).",
        tag=TAG,
        status=201,
        response=Presenter,
        body=PresenterAdd,
        errors=(404, 422, 502),
    )
    async def add_presenter(self, request: web.Request, call: Call) -> Presenter:
        event = await self._event(request, call)
        body = call.body_as(PresenterAdd)
        try:
            added = await self.team.add_presenter(
                event, self._actor(call.who()), body.name, body.email, self._site(request)
            )
        except ValueError as exc:
            raise api_error(422, "invalid", str(exc)) from None
        except MailError as exc:
            raise api_error(502, "mail-failed", str(exc)) from None
        return _presenter(added)

    @operation(
        "POST",
        "/api/v1/events/{event_id}/presenters/{presenter_id}/resend",
        scope=Scope.WRITE,
        summary="E-mail a presenter the link again",
        tag=TAG,
        response=Presenter,
        errors=(404, 502),
    )
    async def resend_presenter(self, request: web.Request, call: Call) -> Presenter:
        event = await self._event(request, call)
        try:
            found = await self.team.presenter(event, self._id(request, "presenter_id"))
            sent = await self.team.send_presenter(
                event, self._actor(call.who()), found, self._site(request)
            )
        except LookupError:
            raise api_error(404, "not-found", _("no such person on this event")) from None
        except MailError as exc:
            raise api_error(502, "mail-failed", str(exc)) from None
        return _presenter(sent)

    @operation(
        "DELETE",
        "/api/v1/events/{event_id}/presenters/{presenter_id}",
        scope=Scope.WRITE,
        summary="Remove a presenter",
        description="From the list; the presenter link they were sent keeps working.",
        tag=TAG,
        status=204,
        errors=(404,),
    )
    async def remove_presenter(self, request: web.Request, call: Call) -> None:
        event = await self._event(request, call)
        try:
            await self.team.remove_presenter(event, self._id(request, "presenter_id"))
        except LookupError:
            raise api_error(404, "not-found", _("no such person on this event")) from None

    # ------------------------------------------------------------------ accounts

    @operation(
        "GET",
        "/api/v1/accounts",
        scope=Scope.ADMIN,
        summary="List accounts",
        description="Every dashboard account, by user name.",
        tag=ACCOUNTS_TAG,
        response=AccountPage,
        query=PAGE_QUERY,
    )
    async def list_accounts(self, request: web.Request, call: Call) -> AccountPage:
        users = await self.store.run(lambda core: core.list_users())
        page = paginate(request, users, lambda u: (u.username.lower(), u.user_id))
        return AccountPage(
            [AccountInfo(u.user_id, u.username, u.email, u.role) for u in page.items],  # type: ignore[arg-type]
            page.next_cursor,
        )

    @operation(
        "POST",
        "/api/v1/accounts/invitations",
        scope=Scope.ADMIN,
        summary="Invite someone to make an account",
        description="They get a link by e-mail to choose a user name and password (it works "
        "once, for 7 days); an open invitation of the same address is replaced.",
        tag=ACCOUNTS_TAG,
        status=201,
        response=AccountInvitation,
        body=InvitationCreate,
        errors=(422,),
    )
    async def invite(self, request: web.Request, call: Call) -> AccountInvitation:
        body = call.body_as(InvitationCreate)
        user = call.who().user
        invited_by = None if user is None else user.user_id
        now = datetime.now(UTC)
        try:
            invitation, token = await self.store.run(
                lambda core: accounts.invite(
                    core.connection, body.email, body.role, invited_by=invited_by, now=now
                )
            )
        except ValueError as exc:
            raise api_error(422, "invalid", str(exc), at="$.email") from None
        site = self._site(request)
        link = f"{site}/login/welcome#token={token}"
        try:
            await self.mail.invitation(invitation, link, site=site, language=i18n.current())
            sent = True
        except MailError:
            sent = False
        return AccountInvitation(
            invitation_id=invitation.invitation_id,
            email=invitation.email,
            role=invitation.role,  # type: ignore[arg-type]
            expires_at=iso_time(invitation.expires_at, zulu=True) or "",
            link=link,
            sent=sent,
        )
