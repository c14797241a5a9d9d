"""Signing in and out of the dashboard.

The sign-in form carries a double-submit CSRF cookie (there is no session yet); failed sign-ins
are limited per client address; the session cookie is HttpOnly, SameSite=Lax and Secure behind
TLS, and only a hash of its token is stored.
"""

from __future__ import annotations

import secrets
import time
from collections import defaultdict, deque

from aiohttp import web

from webinar.accounts import new_session, verify_password_async
from webinar.http.site import LOGIN_CSRF_COOKIE, SESSION_COOKIE, Pages, Site, route
from webinar.ids import client_key
from webinar.storage.store import SessionRecord

LOGIN_FAILURES_PER_MINUTE = 5


class LoginLimiter:
    """At most N failed sign-ins per client address (IPv6 by /64) per minute.

    A sign-in is counted before its password is checked (:meth:`reserve`) and given back when
    it succeeds, so parallel attempts cannot all be checked before the first failure counts.
    """

    def __init__(self, limit: int = LOGIN_FAILURES_PER_MINUTE, window: float = 60.0) -> None:
        self._limit = limit
        self._window = window
        self._failures: dict[str, deque[float]] = defaultdict(deque)
        self._pending: dict[str, int] = defaultdict(int)

    def retry_after(self, key: str, now: float | None = None) -> int:
        now = time.monotonic() if now is None else now
        key = client_key(key)
        failures = self._failures[key]
        while failures and now - failures[0] > self._window:
            failures.popleft()
        pending = self._pending.get(key, 0)
        if len(failures) + pending < self._limit:
            if not failures:
                self._failures.pop(key, None)
            return 0
        if not failures:
            return 1  # only sign-ins in flight: they are answered within moments
        return int(self._window - (now - failures[0])) + 1

    def reserve(self, key: str, now: float | None = None) -> int:
        """Count a sign-in about to be checked; the seconds to wait instead (0: counted)."""
        wait = self.retry_after(key, now)
        if not wait:
            self._pending[client_key(key)] += 1
        return wait

    def settle(self, key: str, *, failed: bool, now: float | None = None) -> None:
        """The reserved sign-in was checked: a failure stays counted, a success does not."""
        key = client_key(key)
        left = self._pending.get(key, 0) - 1
        if left > 0:
            self._pending[key] = left
        else:
            self._pending.pop(key, None)
        if failed:
            self._failures[key].append(time.monotonic() if now is None else now)

    def failed(self, key: str, now: float | None = None) -> None:
        self._failures[client_key(key)].append(time.monotonic() if now is None else now)


class SignIn(Pages):
    """``/login`` and ``/logout``."""

    def __init__(self, site: Site, limiter: LoginLimiter | None = None) -> None:
        self.site = site
        self.limiter = limiter or LoginLimiter()

    @route("GET", "/login")
    async def login_form(self, request: web.Request) -> web.Response:
        if await self.site.session(request) is not None:
            raise web.HTTPSeeOther("/dashboard")
        return self._login_page(request, error=None, username="")

    def _login_page(
        self, request: web.Request, *, error: str | None, username: str, status: int = 200
    ) -> web.Response:
        csrf = secrets.token_urlsafe(24)
        response = self.site.render(
            request, "login.html", status=status, csrf=csrf, error=error, username=username
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
        wait = self.limiter.reserve(client)  # counted before the check, given back on success
        username = str(form.get("username", ""))[:64]
        if wait:
            return self._login_page(
                request,
                error=f"Too many failed sign-ins. Try again in {wait} s.",
                username=username,
                status=429,
            )
        failed = True
        try:
            user = await self.site.store.get_user_by_name(username) if username.strip() else None
            password = str(form.get("password", ""))[:1024]
            failed = not await verify_password_async(password, user.password_hash if user else None)
        finally:
            self.limiter.settle(client, failed=failed)
        if failed:
            return self._login_page(
                request, error="Wrong user name or password.", username=username, status=401
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
        record, _ = await self.site.require(request)
        self.site.check_csrf(record.csrf_token, await request.post())
        await self.site.store.delete_session(record.token_hash)
        response = web.HTTPSeeOther("/login")
        response.del_cookie(SESSION_COOKIE, path="/")
        raise response
