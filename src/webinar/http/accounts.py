"""Accounts run from the browser.

- ``/dashboard/accounts`` (*People*, admins only): invite organisers and admins by e-mail,
  send an invitation again or withdraw it, change an account's role or e-mail address, send
  it a password link, remove it. The last admin can be neither demoted nor removed.
- ``/dashboard/account`` (every account): its own e-mail address and password (a new
  password ends the account's other sessions).
- Under ``/login`` (no session; the sign-in form's CSRF cookie): ``/login/forgot`` asks for
  a password link by e-mail, ``/login/reset`` sets a new password from it, ``/login/welcome``
  makes the invited account (user name and password), ``/login/link`` tells those two pages
  whose link they hold.

Links carry their token in the fragment (``#token=…``), so it never reaches a server or proxy
log; the page's script moves it into the form. A token is stored only as its SHA-256, works
once and expires (:mod:`webinar.storage.accounts`). Asking for a password link answers the
same whatever the address (no account enumeration, and the lookup and the e-mail happen after
the answer, so its timing tells nothing either); it is limited per client address, and per
account by the store (one e-mail a minute, five an hour). A reset ends every session of the
account.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from aiohttp import web

from webinar import i18n
from webinar.accounts import (
    PASSWORD_MAX_CHARS,
    PASSWORD_MIN_CHARS,
    hash_password_async,
    verify_password_async,
)
from webinar.http.inputs import json_error, read_json
from webinar.http.site import LOGIN_CSRF_COOKIE, Pages, Site, route
from webinar.i18n import N_, _, gettext, ngettext
from webinar.ids import format_event_id
from webinar.links import presenter_path
from webinar.storage import accounts
from webinar.storage.accounts import Invitation, LinkError, Presenter
from webinar.storage.store import Event, SessionRecord, User
from webinar.tasks import stop_tasks
from webinar.ticketing.books import Attempts, local_attempts
from webinar.ticketing.calendar import attach_calendar, event_calendar
from webinar.ticketing.desk import TicketDesk, mail_zone
from webinar.ticketing.grants import Refusal, RefusalCode
from webinar.ticketing.limiter import AttemptLimiter
from webinar.ticketing.mail import Mailer, MailError, Sent
from webinar.ticketing.shared import SharedTicketing

logger = logging.getLogger(__name__)

#: Password-link requests one client address may make in :data:`RESET_WINDOW_SECONDS`.
RESET_REQUESTS_PER_CLIENT = 5
RESET_WINDOW_SECONDS = 900.0
#: ``?notice=`` codes the pages understand, and what they say.
_PEOPLE_NOTICES = {
    "revoked": N_("Invitation withdrawn: its link no longer works."),
    "saved": N_("Account saved."),
    "removed": N_("Account removed. Its events stay; admins see them."),
    "reset-sent": N_("A password link is on its way to the account's e-mail address."),
    "reset-soon": N_(
        "A password link was sent a moment ago; wait a minute before sending another."
    ),
}
_ACCOUNT_NOTICES = {
    "email": N_("E-mail address saved."),
    "password": N_("Password changed. Your other sessions were signed out."),
}
LINK_KINDS = ("reset", "welcome")


def reset_limiter(shared: SharedTicketing | None = None) -> AttemptLimiter | Attempts:
    """At most N password-link requests per client address (IPv6 by /64) in 15 minutes;
    in Redis across workers with ``shared``."""
    if shared is not None:
        return shared.attempts(
            "password-reset", per_client=RESET_REQUESTS_PER_CLIENT, window=RESET_WINDOW_SECONDS
        )
    return AttemptLimiter(per_client=RESET_REQUESTS_PER_CLIENT, window=RESET_WINDOW_SECONDS)


def check_new_password(password: str, repeated: str) -> None:
    """ValueError (translated) unless the password is long enough and typed twice alike."""
    if not PASSWORD_MIN_CHARS <= len(password) <= PASSWORD_MAX_CHARS:
        raise ValueError(
            _("a password needs %(min)d to %(max)d characters")
            % {"min": PASSWORD_MIN_CHARS, "max": PASSWORD_MAX_CHARS}
        )
    if password != repeated:
        raise ValueError(_("the two passwords differ"))


# ----------------------------------------------------------------------------- e-mail


@dataclass
class AccountMail:
    """The e-mails of accounts and event teams, through the one :class:`Mailer` (templates in
    ``web/templates/email/``, an HTML and a plain-text part each)."""

    mailer: Mailer
    #: The ticket desk: its calendar entries (the event's current SEQUENCE) go with the
    #: presenters' e-mails.
    desk: TicketDesk | None = None

    async def invitation(
        self, invitation: Invitation, link: str, *, site: str, language: str | None
    ) -> Sent:
        return await self.mailer.send_template(
            "account_invitation",
            invitation.email,
            language=language,
            link=link,
            site=site,
            admin=invitation.role == "admin",
            invited_by=invitation.invited_by,
            expires_at=invitation.expires_at,
        )

    async def reset(
        self, to: str, username: str, link: str, *, site: str, language: str | None
    ) -> Sent:
        return await self.mailer.send_template(
            "password_reset",
            to,
            language=language,
            username=username,
            link=link,
            site=site,
            minutes=int(accounts.RESET_LIFETIME.total_seconds() // 60),
        )

    async def password_changed(
        self, to: str, username: str, *, site: str, language: str | None
    ) -> Sent:
        return await self.mailer.send_template(
            "password_changed",
            to,
            language=language,
            username=username,
            site=site,
            forgot=f"{site}/login/forgot",
        )

    async def co_organiser(
        self, to: str, username: str, event: Event, *, added_by: str, site: str
    ) -> Sent:
        return await self.mailer.send_template(
            "co_organiser",
            to,
            language=event.language,
            username=username,
            added_by=added_by,
            event=event,
            event_id=format_event_id(event.event_id),
            starts_at=event.starts_at,
            zone=mail_zone(event),
            link=f"{site}/dashboard/events/{format_event_id(event.event_id)}",
        )

    async def presenter(
        self, presenter: Presenter, event: Event, *, site: str, organiser: str
    ) -> Sent:
        """The presenter link of ``event``, with the event's ``.ics``."""
        link = site + presenter_path(event)
        message = self.mailer.compose(
            "presenter",
            presenter.email,
            language=event.language,
            name=presenter.name,
            organiser=organiser,
            event=event,
            event_id=format_event_id(event.event_id),
            starts_at=event.starts_at,
            zone=mail_zone(event),
            agenda=event.agenda,
            link=link,
        )
        if self.desk is not None:  # the event's current calendar entry
            await self.desk.attach_event_calendar(
                message, event, url=link, name=presenter.name, language=event.language
            )
        else:
            ics = event_calendar(
                event,
                sequence=0,
                organizer=self.mailer.config.from_address,
                attendee=presenter.email,
                attendee_name=presenter.name,
                url=link,
                description=event.agenda,
            )
            if ics is not None:
                attach_calendar(message, ics)
        return await self.mailer.send(message)


# ----------------------------------------------------------------------------- pages


@dataclass
class AccountPages(Pages):
    site: Site
    mail: AccountMail
    #: Password-link requests per client address (in memory unless given a shared one).
    limiter: Attempts = field(default_factory=lambda: local_attempts(reset_limiter()))
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def close(self) -> None:
        """Stop the e-mails still being sent in the background."""
        await stop_tasks(list(self._tasks))

    def _spawn(self, job: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(job)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ signed out

    def _login_form(
        self, request: web.Request, template: str, status: int = 200, **context: Any
    ) -> web.Response:
        """A page of the sign-in family: its form carries the sign-in CSRF cookie's value."""
        csrf = request.cookies.get(LOGIN_CSRF_COOKIE, "")
        if not 20 <= len(csrf) <= 64:
            csrf = secrets.token_urlsafe(24)
        response = self.site.render(
            request,
            template,
            status=status,
            csrf=csrf,
            minutes=int(accounts.RESET_LIFETIME.total_seconds() // 60),
            **context,
        )
        response.set_cookie(
            LOGIN_CSRF_COOKIE,
            csrf,
            httponly=True,
            samesite="Strict",
            secure=request.secure,
            max_age=3600,
            path="/login",
        )
        # The link's token is in the fragment; no Referer may carry the page's address either.
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    async def _login_post(self, request: web.Request) -> Mapping[str, Any]:
        form = await request.post()
        self.site.check_csrf(request.cookies.get(LOGIN_CSRF_COOKIE, "") or "-", form)
        return form

    @route("GET", "/login/forgot")
    async def forgot_form(self, request: web.Request) -> web.Response:
        return self._login_form(request, "account_forgot.html", sent=False, email="", error=None)

    @route("POST", "/login/forgot")
    async def forgot(self, request: web.Request) -> web.Response:
        form = await self._login_post(request)
        given = str(form.get("email", "")).strip()[:254]
        try:  # every request counts: it sends an e-mail
            attempt = await self.limiter.reserve(
                request.remote or "unknown", None, time.monotonic()
            )
        except Refusal as refusal:
            unavailable = refusal.code is RefusalCode.UNAVAILABLE
            return self._login_form(
                request,
                "account_forgot.html",
                status=503 if unavailable else 429,
                sent=False,
                email=given,
                error=_("Sign-in is unavailable for a moment. Try again in a few seconds.")
                if unavailable
                else _("Too many requests for password links. Try again in %(seconds)s s.")
                % {"seconds": refusal.retry_after},
            )
        await attempt.failed(time.monotonic())
        if not given:
            return self._login_form(
                request,
                "account_forgot.html",
                status=400,
                sent=False,
                email="",
                error=_("Enter the e-mail address of your account."),
            )
        # The same answer whether or not an account has the address: the lookup and the
        # e-mail happen after it.
        self._spawn(self._send_reset(given, self.site.base_url(request), i18n.current()))
        return self._login_form(request, "account_forgot.html", sent=True, email=given, error=None)

    async def _send_reset(self, given: str, site: str, language: str) -> None:
        try:
            await self.send_reset(given, site, language)
        except (MailError, OSError) as exc:
            logger.warning("password link not sent: %s", exc)
        except Exception:
            logger.exception("password link not sent")

    async def send_reset(self, given: str, site: str, language: str | None) -> bool | None:
        """E-mail the account named by ``given`` (its e-mail address or user name) a
        password link: True when sent, False when one was sent too recently, None when no
        account with an e-mail address is called that."""
        user = await self.site.store.find_user(given)
        if user is None or user.email is None:
            return None
        user_id, now = user.user_id, self.clock()
        token = await self.site.store.run(
            lambda core: accounts.new_reset(core.connection, user_id, now=now)
        )
        if token is None:
            return False
        await self.mail.reset(
            user.email,
            user.username,
            f"{site}/login/reset#token={token}",
            site=site,
            language=language,
        )
        return True

    @route("GET", "/login/reset")
    async def reset_form(self, request: web.Request) -> web.Response:
        return self._password_page(request, "reset")

    @route("GET", "/login/welcome")
    async def welcome_form(self, request: web.Request) -> web.Response:
        return self._password_page(request, "welcome")

    def _password_page(
        self,
        request: web.Request,
        kind: str,
        *,
        token: str = "",
        username: str = "",
        error: str | None = None,
        link_error: str | None = None,
        status: int = 200,
    ) -> web.Response:
        return self._login_form(
            request,
            "account_password.html",
            status=status,
            kind=kind,
            token=token,
            username=username,
            error=error,
            link_error=link_error,
            min_chars=PASSWORD_MIN_CHARS,
        )

    @route("POST", "/login/reset")
    async def reset(self, request: web.Request) -> web.Response:
        form = await self._login_post(request)
        token = str(form.get("token", ""))[:100]
        password = str(form.get("password", ""))[: PASSWORD_MAX_CHARS + 1]
        try:
            check_new_password(password, str(form.get("password2", ""))[: PASSWORD_MAX_CHARS + 1])
        except ValueError as exc:
            return self._password_page(request, "reset", token=token, error=str(exc), status=400)
        digest = await hash_password_async(password)
        now = self.clock()
        try:
            user_id = await self.site.store.run(
                lambda core: accounts.use_reset(core.connection, token, digest, now=now)
            )
        except LinkError as exc:
            return self._password_page(request, "reset", link_error=str(exc), status=410)
        user = await self.site.store.run(lambda core: core.get_user(user_id))
        name = user.username if user else ""
        if user is not None and user.email is not None:
            email, site, language = user.email, self.site.base_url(request), i18n.current()
            self._spawn(self._tell_password_changed(email, name, site, language))
        logger.info("account %s set a new password from a reset link", user_id)
        raise web.HTTPSeeOther(f"/login?notice=password-set&username={quote(name)}")

    async def _tell_password_changed(
        self, email: str, username: str, site: str, language: str
    ) -> None:
        try:
            await self.mail.password_changed(email, username, site=site, language=language)
        except (MailError, OSError) as exc:
            logger.warning("password-changed notice not sent: %s", exc)

    @route("POST", "/login/welcome")
    async def welcome(self, request: web.Request) -> web.Response:
        form = await self._login_post(request)
        token = str(form.get("token", ""))[:100]
        username = str(form.get("username", "")).strip()[:64]
        password = str(form.get("password", ""))[: PASSWORD_MAX_CHARS + 1]
        try:
            check_new_password(password, str(form.get("password2", ""))[: PASSWORD_MAX_CHARS + 1])
        except ValueError as exc:
            return self._password_page(
                request, "welcome", token=token, username=username, error=str(exc), status=400
            )
        digest = await hash_password_async(password)
        now = self.clock()
        try:
            user_id = await self.site.store.run(
                lambda core: accounts.accept_invitation(
                    core.connection, token, username, digest, now=now
                )
            )
        except LinkError as exc:
            return self._password_page(request, "welcome", link_error=str(exc), status=410)
        except ValueError as exc:
            return self._password_page(
                request, "welcome", token=token, username=username, error=str(exc), status=400
            )
        logger.info("invited account %s (%s) made", user_id, username)
        raise web.HTTPSeeOther(f"/login?notice=welcome&username={quote(username)}")

    @route("POST", "/login/link")
    async def check_link(self, request: web.Request) -> web.Response:
        """``{"kind": "reset"|"welcome", "token": …}``: whose link it is (the e-mail address,
        and the user name of a reset), or 410 with why it cannot be used."""
        body = await read_json(request, json_error, max_bytes=1024)
        kind = body.get("kind") if isinstance(body, dict) else None
        token = body.get("token") if isinstance(body, dict) else None
        if kind not in LINK_KINDS or not isinstance(token, str) or not 1 <= len(token) <= 100:
            raise json_error(400, "invalid", _("send the kind of link and its token"))
        now = self.clock()
        try:
            if kind == "reset":
                _id, username, email = await self.site.store.run(
                    lambda core: accounts.check_reset(core.connection, token, now)
                )
                found: dict[str, Any] = {"email": email, "username": username}
            else:
                invitation = await self.site.store.run(
                    lambda core: accounts.check_invitation(core.connection, token, now)
                )
                found = {
                    "email": invitation.email,
                    "username": _suggested_name(invitation.email),
                    "role": invitation.role,
                }
        except LinkError as exc:
            raise json_error(410, "link-unusable", str(exc)) from None
        response = web.json_response(found)
        response.headers["Cache-Control"] = "no-store"
        return response

    # ------------------------------------------------------------------ People (admins)

    async def _admin(self, request: web.Request) -> tuple[SessionRecord, User]:
        record, user = await self.site.require(request)
        if not user.is_admin:
            raise web.HTTPForbidden(text=_("Only admins manage accounts."))
        return record, user

    async def _admin_form(
        self, request: web.Request
    ) -> tuple[SessionRecord, User, Mapping[str, Any]]:
        record, user = await self._admin(request)
        form = await request.post()
        self.site.check_csrf(record.csrf_token, form)
        return record, user, form

    async def _people(
        self,
        request: web.Request,
        record: SessionRecord,
        user: User,
        *,
        error: str | None = None,
        done: str | None = None,
        made_link: str | None = None,
        invite_email: str = "",
        status: int = 200,
    ) -> web.Response:
        def listing(core: Any) -> tuple[list[User], list[Invitation], dict[int, int]]:
            counts = {
                int(owner): int(n)
                for owner, n in core.connection.execute(
                    "SELECT owner_id, count(*) FROM events WHERE owner_id IS NOT NULL"
                    " GROUP BY owner_id"
                ).fetchall()
            }
            return core.list_users(), accounts.open_invitations(core.connection), counts

        users, invitations, counts = await self.site.store.run(listing)
        now = self.clock()
        notice = request.query.get("notice", "")
        return self.site.render(
            request,
            "accounts.html",
            status=status,
            user=user,
            csrf=record.csrf_token,
            accounts=[
                {
                    "id": u.user_id,
                    "username": u.username,
                    "email": u.email or "",
                    "role": u.role,
                    "events": counts.get(u.user_id, 0),
                    "me": u.user_id == user.user_id,
                }
                for u in users
            ],
            invitations=[
                {
                    "id": i.invitation_id,
                    "email": i.email,
                    "role": i.role,
                    "invited_by": i.invited_by or "",
                    "expires": i.expires_at.strftime("%Y-%m-%d %H:%M"),
                    "expired": i.expired(now),
                }
                for i in invitations
            ],
            error=error,
            done=done or (gettext(_PEOPLE_NOTICES[notice]) if notice in _PEOPLE_NOTICES else None),
            made_link=made_link,
            invite_email=invite_email,
        )

    @route("GET", "/dashboard/accounts")
    async def people(self, request: web.Request) -> web.Response:
        record, user = await self._admin(request)
        return await self._people(request, record, user)

    @route("POST", "/dashboard/accounts/invite")
    async def invite(self, request: web.Request) -> web.Response:
        record, user, form = await self._admin_form(request)
        email = str(form.get("email", "")).strip()[:254]
        role = str(form.get("role", "organiser"))
        now = self.clock()
        try:
            invitation, token = await self.site.store.run(
                lambda core: accounts.invite(
                    core.connection, email, role, invited_by=user.user_id, now=now
                )
            )
        except ValueError as exc:
            return await self._people(
                request, record, user, error=str(exc), invite_email=email, status=400
            )
        return await self._send_invitation(request, record, user, invitation, token)

    async def _send_invitation(
        self,
        request: web.Request,
        record: SessionRecord,
        user: User,
        invitation: Invitation,
        token: str,
    ) -> web.Response:
        site = self.site.base_url(request)
        link = f"{site}/login/welcome#token={token}"
        try:
            await self.mail.invitation(invitation, link, site=site, language=i18n.current())
        except MailError:
            return await self._people(
                request,
                record,
                user,
                error=_(
                    "The invitation is made, but the e-mail to %(email)s could not be sent."
                    " Give them the link below yourself, or send it again later."
                )
                % {"email": invitation.email},
                made_link=link,
                status=502,
            )
        logger.info("account invitation %s sent by %s", invitation.invitation_id, user.username)
        return await self._people(
            request,
            record,
            user,
            done=ngettext(
                "Invitation sent to %(email)s. The link works once, for %(num)d day; if the"
                " e-mail does not arrive, give them the link below yourself.",
                "Invitation sent to %(email)s. The link works once, for %(num)d days; if the"
                " e-mail does not arrive, give them the link below yourself.",
                accounts.INVITATION_LIFETIME.days,
            )
            % {"email": invitation.email, "num": accounts.INVITATION_LIFETIME.days},
            made_link=link,
        )

    def _path_int(self, request: web.Request, name: str) -> int:
        text = request.match_info[name]
        if not text.isdigit() or len(text) > 18:
            raise web.HTTPNotFound(text=_("No such account or invitation."))
        return int(text)

    @route("POST", "/dashboard/accounts/invitations/{invitation_id}/resend")
    async def resend_invitation(self, request: web.Request) -> web.Response:
        record, user, _form = await self._admin_form(request)
        invitation_id, now = self._path_int(request, "invitation_id"), self.clock()
        try:
            invitation, token = await self.site.store.run(
                lambda core: accounts.renew_invitation(core.connection, invitation_id, now=now)
            )
        except ValueError:
            raise web.HTTPNotFound(text=_("No such account or invitation.")) from None
        return await self._send_invitation(request, record, user, invitation, token)

    @route("POST", "/dashboard/accounts/invitations/{invitation_id}/revoke")
    async def revoke_invitation(self, request: web.Request) -> web.Response:
        await self._admin_form(request)
        invitation_id = self._path_int(request, "invitation_id")
        if not await self.site.store.run(
            lambda core: accounts.revoke_invitation(core.connection, invitation_id)
        ):
            raise web.HTTPNotFound(text=_("No such account or invitation."))
        raise web.HTTPSeeOther("/dashboard/accounts?notice=revoked")

    @route("POST", "/dashboard/accounts/{user_id}")
    async def save_account(self, request: web.Request) -> web.Response:
        record, user, form = await self._admin_form(request)
        user_id = self._path_int(request, "user_id")
        role = str(form.get("role", ""))
        email = str(form.get("email", "")).strip()[:254]
        try:
            if user_id == user.user_id and role != user.role:
                raise ValueError(_("you cannot change your own role: ask another admin"))
            await self.site.store.run(
                lambda core: accounts.update_account(
                    core.connection, user_id, email=email or None, role=role
                )
            )
        except ValueError as exc:
            return await self._people(request, record, user, error=str(exc), status=400)
        raise web.HTTPSeeOther("/dashboard/accounts?notice=saved")

    @route("POST", "/dashboard/accounts/{user_id}/reset")
    async def send_account_reset(self, request: web.Request) -> web.Response:
        record, user, _form = await self._admin_form(request)
        user_id = self._path_int(request, "user_id")
        target = await self.site.store.run(lambda core: core.get_user(user_id))
        if target is None:
            raise web.HTTPNotFound(text=_("No such account or invitation."))
        if target.email is None:
            return await self._people(
                request,
                record,
                user,
                error=_("%(name)s has no e-mail address: add one first.")
                % {"name": target.username},
                status=400,
            )
        try:
            sent = await self.send_reset(target.username, self.site.base_url(request), None)
        except MailError:
            return await self._people(
                request,
                record,
                user,
                error=_("The e-mail to %(email)s could not be sent.") % {"email": target.email},
                status=502,
            )
        raise web.HTTPSeeOther(
            f"/dashboard/accounts?notice={'reset-sent' if sent else 'reset-soon'}"
        )

    @route("POST", "/dashboard/accounts/{user_id}/remove")
    async def remove_account(self, request: web.Request) -> web.Response:
        record, user, _form = await self._admin_form(request)
        user_id = self._path_int(request, "user_id")
        if user_id == user.user_id:
            return await self._people(
                request,
                record,
                user,
                error=_("You cannot remove your own account: ask another admin."),
                status=400,
            )
        try:
            name = await self.site.store.run(
                lambda core: accounts.remove_account(core.connection, user_id)
            )
        except ValueError as exc:
            return await self._people(request, record, user, error=str(exc), status=400)
        logger.info("account %s (%s) removed by %s", user_id, name, user.username)
        raise web.HTTPSeeOther("/dashboard/accounts?notice=removed")

    # ------------------------------------------------------------------ one's own account

    async def _own(
        self,
        request: web.Request,
        record: SessionRecord,
        user: User,
        *,
        error: str | None = None,
        status: int = 200,
    ) -> web.Response:
        notice = request.query.get("notice", "")
        return self.site.render(
            request,
            "account.html",
            status=status,
            user=user,
            csrf=record.csrf_token,
            error=error,
            done=gettext(_ACCOUNT_NOTICES[notice]) if notice in _ACCOUNT_NOTICES else None,
            min_chars=PASSWORD_MIN_CHARS,
        )

    @route("GET", "/dashboard/account")
    async def account(self, request: web.Request) -> web.Response:
        record, user = await self.site.require(request)
        return await self._own(request, record, user)

    @route("POST", "/dashboard/account/email")
    async def account_email(self, request: web.Request) -> web.Response:
        record, user, form = await self.site.require_form(request)
        email = str(form.get("email", "")).strip()[:254]
        user_id = user.user_id
        try:
            await self.site.store.run(
                lambda core: accounts.set_email(core.connection, user_id, email or None)
            )
        except ValueError as exc:
            return await self._own(request, record, user, error=str(exc), status=400)
        raise web.HTTPSeeOther("/dashboard/account?notice=email")

    @route("POST", "/dashboard/account/password")
    async def account_password(self, request: web.Request) -> web.Response:
        record, user, form = await self.site.require_form(request)
        current = str(form.get("current", ""))[: PASSWORD_MAX_CHARS + 1]
        password = str(form.get("password", ""))[: PASSWORD_MAX_CHARS + 1]
        try:
            check_new_password(password, str(form.get("password2", ""))[: PASSWORD_MAX_CHARS + 1])
        except ValueError as exc:
            return await self._own(request, record, user, error=str(exc), status=400)
        if not await verify_password_async(current, user.password_hash or None):
            return await self._own(
                request, record, user, error=_("Your current password is not right."), status=400
            )
        digest = await hash_password_async(password)
        user_id, keep = user.user_id, record.token_hash
        await self.site.store.run(
            lambda core: accounts.change_password(
                core.connection, user_id, digest, keep_session=keep
            )
        )
        if user.email is not None:
            self._spawn(
                self._tell_password_changed(
                    user.email, user.username, self.site.base_url(request), i18n.current()
                )
            )
        raise web.HTTPSeeOther("/dashboard/account?notice=password")


def _suggested_name(email: str) -> str:
    """A user name to offer an invited person: the address's part before the @."""
    local = email.rpartition("@")[0]
    name = "".join(c for c in local if not c.isspace())[:64]
    return name or "organiser"
