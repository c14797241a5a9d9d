"""Signing in and out of the dashboard.

The sign-in form carries a double-submit CSRF cookie (there is no session yet); failed sign-ins
are limited per client address; the session cookie is HttpOnly, SameSite=Lax and Secure behind
TLS, and only a hash of its token is stored. One signs in with the user name or the account's
e-mail address. Invitations and forgotten passwords are :mod:`webinar.http.accounts`'.
"""

from __future__ import annotations

import secrets
import time

from aiohttp import web

from webinar.accounts import new_session, verify_password_async
from webinar.http.site import LOGIN_CSRF_COOKIE, SESSION_COOKIE, Pages, Site, route
from webinar.i18n import N_, _, gettext
from webinar.storage.store import SessionRecord
from webinar.ticketing.books import Attempts, local_attempts
from webinar.ticketing.grants import Refusal, RefusalCode
from webinar.ticketing.limiter import AttemptLimiter
from webinar.ticketing.shared import SharedTicketing

LOGIN_FAILURES_PER_MINUTE = 5
#: ``/login?notice=`` codes (after a new password or a new account) and what they say.
_NOTICES = {
    "password-set": N_(
        "Your new password is set, and every session of your account ended. Sign in with it."
    ),
    "welcome": N_("Your account is ready. Sign in with your new password."),
}


def login_limiter(shared: SharedTicketing | None = None) -> AttemptLimiter | Attempts:
    """At most N failed sign-ins per client address (IPv6 by /64) per minute: the entry
    limiter's per-address count (counted before the password is checked, given back when
    it is right), with no event. With ``shared``, counted in Redis across workers."""
    if shared is not None:
        return shared.attempts("login", per_client=LOGIN_FAILURES_PER_MINUTE, window=60.0)
    return AttemptLimiter(per_client=LOGIN_FAILURES_PER_MINUTE, window=60.0)


class SignIn(Pages):
    """``/login`` and ``/logout``."""

    def __init__(self, site: Site, limiter: AttemptLimiter | Attempts | None = None) -> None:
        """``limiter``: the in-memory one by default; workers sharing Redis pass a
        :class:`webinar.ticketing.shared.RedisAttempts` with the same limits."""
        self.site = site
        self.limiter = local_attempts(limiter or login_limiter())

    @route("GET", "/login")
    async def login_form(self, request: web.Request) -> web.Response:
        if await self.site.session(request) is not None:
            raise web.HTTPSeeOther("/dashboard")
        notice = request.query.get("notice", "")
        return self._login_page(
            request,
            error=None,
            username=request.query.get("username", "")[:254],
            notice=gettext(_NOTICES[notice]) if notice in _NOTICES else None,
        )

    def _login_page(
        self,
        request: web.Request,
        *,
        error: str | None,
        username: str,
        status: int = 200,
        notice: str | None = None,
    ) -> web.Response:
        csrf = secrets.token_urlsafe(24)
        response = self.site.render(
            request,
            "login.html",
            status=status,
            csrf=csrf,
            error=error,
            username=username,
            notice=notice,
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
        return response

    @route("POST", "/login")
    async def login(self, request: web.Request) -> web.Response:
        form = await request.post()
        self.site.check_csrf(request.cookies.get(LOGIN_CSRF_COOKIE, "") or "-", form)
        client = request.remote or "unknown"
        username = str(form.get("username", "")).strip()[:254]
        try:  # counted before the check, given back on success
            attempt = await self.limiter.reserve(client, None, time.monotonic())
        except Refusal as refusal:
            unavailable = refusal.code is RefusalCode.UNAVAILABLE
            return self._login_page(
                request,
                error=_("Sign-in is unavailable for a moment. Try again in a few seconds.")
                if unavailable
                else _("Too many failed sign-ins. Try again in %(seconds)s s.")
                % {"seconds": refusal.retry_after},
                username=username,
                status=503 if unavailable else 429,
            )
        failed = True
        try:
            user = await self.site.store.find_user(username) if username else None
            password = str(form.get("password", ""))[:1024]
            failed = not await verify_password_async(
                password, (user.password_hash or None) if user else None
            )
        finally:
            if failed:
                await attempt.failed(time.monotonic())
            await attempt.forgive()
        if failed:
            return self._login_page(
                request,
                error=_("Wrong user name or password."),
                username=username,
                status=401,
            )
        assert user is not None
        session = new_session()
        await self.site.store.create_session(
            SessionRecord(
                token_hash=session.token_hash,
                user_id=user.user_id,
                csrf_token=session.csrf_token,
                created_at=session.created_at,
                expires_at=session.expires_at,
            )
        )
        response = web.HTTPSeeOther("/dashboard")
        response.set_cookie(
            SESSION_COOKIE,
            session.token,
            httponly=True,
            samesite="Lax",
            secure=request.secure,
            max_age=int((session.expires_at - session.created_at).total_seconds()),
            path="/",
        )
        response.del_cookie(LOGIN_CSRF_COOKIE, path="/login")
        raise response

    @route("POST", "/logout")
    async def logout(self, request: web.Request) -> web.Response:
        record, _user = await self.site.require(request)
        self.site.check_csrf(record.csrf_token, await request.post())
        await self.site.store.delete_session(record.token_hash)
        response = web.HTTPSeeOther("/login")
        response.del_cookie(SESSION_COOKIE, path="/")
        raise response
