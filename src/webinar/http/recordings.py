"""Dashboard pages for recordings: list with duration and size, download, trim, delete,
auto-start per event; the organiser sees their own events' recordings, an admin all.
Also the JSON list for the admin API (``GET /api/recordings``, the same sign-in)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from aiohttp import web

from webinar.http.branding import event_brand
from webinar.http.captions_vtt import VTT_NAME, has_captions, recording_vtt, vtt_response
from webinar.http.site import Pages, Site, route
from webinar.i18n import N_, _, format_date, gettext, ngettext
from webinar.ids import format_event_id, normalize_event_id
from webinar.recordings.library import MIB, RecordingInfo, RecordingService, media_type
from webinar.recordings.sharing import LINK_MAX_DAYS, LinkError, OpenedLink, Publisher, valid_email
from webinar.storage.store import User

VIEWER_COOKIE = "webinar_viewer_"
#: What ``?notice=`` codes say on the recordings page (other notices arrive translated).
_NOTICES = {
    "deleted": N_("deleted"),
    "trimmed": N_("trimmed"),
    "saved": N_("saved"),
    "link revoked": N_("link revoked"),
}
#: A recording file's kinds of track, as the list names them ("audio + video").
_KINDS = {"audio": N_("audio"), "video": N_("video")}


def _duration(seconds: float) -> str:
    s = round(seconds)
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _size(n: int) -> str:
    if n >= MIB:
        return _("%(size)s MiB") % {"size": f"{n / MIB:.1f}"}
    return _("%(size)s KiB") % {"size": max(1, n // 1024)}


def _until(when: datetime) -> str:
    """When a link expires, in UTC, in the language in effect (``6 December 2026, 14:00 UTC``)."""
    return _("%(date)s, %(time)s UTC") % {
        "date": format_date(when, format="long"),
        "time": when.astimezone(UTC).strftime("%H:%M"),
    }


class RecordingPages(Pages):
    def __init__(self, site: Site, service: RecordingService, publisher: Publisher) -> None:
        self.site = site
        self.service = service
        self.publisher = publisher

    async def _visible(self, user: User, recording_id: str) -> RecordingInfo:
        info = await self.service.get(recording_id)
        if info is not None and not user.is_admin:
            event = await self.site.store.get_event(info.event_id)
            if event is None or not user.manages(event):
                info = None
        if info is None:
            raise web.HTTPNotFound(text=_("No such recording of yours."))
        return info

    @route("GET", "/dashboard/recordings")
    async def list_page(self, request: web.Request) -> web.Response:
        record, user = await self.site.require(request)
        recordings = await self.service.list(owner_id=None if user.is_admin else user.user_id)
        events = {
            e.event_id: e
            for e in await self.site.store.list_events(None if user.is_admin else user.user_id)
        }
        rows = []
        for info in recordings:
            event = events.get(info.event_id)
            rows.append(
                {
                    "id": info.recording_id,
                    "title": event.title if event else info.event_id,
                    "event_id": format_event_id(info.event_id),
                    "started": info.started_at.strftime("%Y-%m-%d %H:%M UTC"),
                    "started_iso": info.started_at.isoformat(),
                    "duration": _duration(info.duration),
                    "duration_seconds": round(info.duration, 1),
                    "size": _size(info.size),
                    "captions": await has_captions(self.site.store, info),
                    "files": [
                        {
                            "name": f["name"],
                            "label": f.get("label") or f["feed"],
                            "kinds": " + ".join(_kind(s["kind"]) for s in f["streams"]),
                            "size": _size(int(f["size"])),
                            "offset": round(float(f["offset"]), 1),
                        }
                        for f in info.files
                    ],
                }
            )
        base = (self.site.public_url or str(request.url.origin())).rstrip("/")
        now = datetime.now(UTC)
        for row in rows:
            row["publications"] = [
                {
                    "id": p.publication_id,
                    "expires": p.expires.strftime("%Y-%m-%d %H:%M UTC"),
                    "expired": p.expires <= now,
                    "require_email": p.require_email,
                    "viewers": p.viewers,
                    "link": f"{base}/r/{await self.publisher.token(p)}",
                }
                for p in await self.publisher.publications(str(row["id"]))
            ]
        auto = {e.event_id: await self.service.auto_record(e) for e in events.values()}
        used = await self.service.usage(user.user_id) if not user.is_admin else None
        return self.site.render(
            request,
            "recordings.html",
            user=user,
            csrf=record.csrf_token,
            recordings=rows,
            events=[
                {"id": format_event_id(e.event_id), "title": e.title, "auto": auto[e.event_id]}
                for e in events.values()
            ],
            used=_size(used) if used is not None else None,
            quota=_("%(size)s MiB") % {"size": self.service.quota_bytes // MIB},
            over_quota=used is not None and used >= self.service.quota_bytes,
            error=request.query.get("error"),
            notice=_notice(request.query.get("notice")),
            max_days=LINK_MAX_DAYS,
        )

    @route("GET", "/dashboard/recordings/{recording_id}/files/{name}")
    async def download(self, request: web.Request) -> web.StreamResponse:
        _record, user = await self.site.require(request)
        info = await self._visible(user, request.match_info["recording_id"])
        path = self.service.file_path(info, request.match_info["name"])
        if path is None:
            raise web.HTTPNotFound(text=_("No such file in this recording."))
        return web.FileResponse(
            path,
            headers={
                "Content-Type": media_type(path.name),
                "Content-Disposition": f'attachment; filename="{info.recording_id}-{path.name}"',
            },
        )

    @route("GET", "/dashboard/recordings/{recording_id}/captions.vtt")
    async def captions(self, request: web.Request) -> web.Response:
        """The recording's live captions as WebVTT (``?file=`` one of its files: on that
        file's time); downloaded with ``?download=1``."""
        _record, user = await self.site.require(request)
        info = await self._visible(user, request.match_info["recording_id"])
        try:
            text = await recording_vtt(self.site.store, info, request.query.get("file"))
        except KeyError:
            raise web.HTTPNotFound(text=_("No such file in this recording.")) from None
        name = f"{info.recording_id}-{VTT_NAME}" if request.query.get("download") else None
        return vtt_response(text, download_name=name)

    @route("POST", "/dashboard/recordings/{recording_id}/delete")
    async def delete(self, request: web.Request) -> web.Response:
        _record, user, _form = await self.site.require_form(request)
        info = await self._visible(user, request.match_info["recording_id"])
        await self.service.delete(info.recording_id)
        raise web.HTTPSeeOther("/dashboard/recordings?notice=deleted")

    @route("POST", "/dashboard/recordings/{recording_id}/trim")
    async def trim(self, request: web.Request) -> web.Response:
        _record, user, form = await self.site.require_form(request)
        info = await self._visible(user, request.match_info["recording_id"])
        try:
            start = float(str(form.get("start", "0")) or 0)
            end = float(str(form.get("end", "")) or info.duration)
            await self.service.trim(info.recording_id, start, end)
        except ValueError as exc:
            raise web.HTTPSeeOther(
                "/dashboard/recordings?error="
                + quote(_("trim: %(reason)s") % {"reason": str(exc)[:200]})
            ) from None
        raise web.HTTPSeeOther("/dashboard/recordings?notice=trimmed")

    @route("POST", "/dashboard/events/{event_id}/auto-record")
    async def auto_record(self, request: web.Request) -> web.Response:
        _record, user, form = await self.site.require_form(request)
        event_id = normalize_event_id(request.match_info["event_id"]) or ""
        event = await self.site.store.get_event(event_id)
        if event is None or not user.manages(event):
            raise web.HTTPNotFound(text=_("No such event of yours."))
        await self.service.set_auto_record(event.event_id, form.get("auto_record") == "on")
        raise web.HTTPSeeOther("/dashboard/recordings?notice=saved")

    @route("GET", "/api/recordings")
    async def api_list(self, request: web.Request) -> web.Response:
        user = await self.site.api_user(request)
        event_id = request.query.get("event_id")
        recordings = await self.service.list(
            owner_id=None if user.is_admin else user.user_id,
            event_id=normalize_event_id(event_id) if event_id else None,
        )
        body: dict[str, Any] = {"recordings": [r.as_json() for r in recordings]}
        return web.json_response(body)

    # ------------------------------------------------------------------ publishing

    @route("POST", "/dashboard/recordings/{recording_id}/publish")
    async def publish(self, request: web.Request) -> web.Response:
        _record, user, form = await self.site.require_form(request)
        info = await self._visible(user, request.match_info["recording_id"])
        event = await self.site.store.get_event(info.event_id)
        try:
            days = int(str(form.get("days", "14")) or 14)
            recipients = [
                r for r in str(form.get("recipients", "")).replace(",", "\n").split() if r.strip()
            ]
            for r in recipients:
                valid_email(r)
            publication = await self.publisher.publish(
                info.recording_id, days=days, require_email=form.get("require_email") == "on"
            )
            sent = 0
            if recipients:
                sent = await self.publisher.send(
                    publication,
                    recipients,
                    base_url=self.site.public_url or str(request.url.origin()),
                    title=event.title if event else _("the event"),
                )
        except ValueError as exc:
            raise web.HTTPSeeOther(f"/dashboard/recordings?error={quote(str(exc)[:200])}") from None
        notice = quote(
            ngettext("published, %(num)d e-mail sent", "published, %(num)d e-mails sent", sent)
            % {"num": sent}
        )
        raise web.HTTPSeeOther(f"/dashboard/recordings?notice={notice}")

    @route("POST", "/dashboard/publications/{publication_id}/revoke")
    async def revoke(self, request: web.Request) -> web.Response:
        _record, user, _form = await self.site.require_form(request)
        publication_id = request.match_info["publication_id"]
        for publication in await self._publications_of(user):
            if publication == publication_id:
                await self.publisher.revoke(publication_id)
                raise web.HTTPSeeOther("/dashboard/recordings?notice=link%20revoked")
        raise web.HTTPNotFound(text=_("No such link of yours."))

    async def _publications_of(self, user: User) -> list[str]:
        out = []
        for info in await self.service.list(owner_id=None if user.is_admin else user.user_id):
            out += [p.publication_id for p in await self.publisher.publications(info.recording_id)]
        return out

    async def _opened(self, request: web.Request) -> OpenedLink:
        try:
            return await self.publisher.open(request.match_info["token"])
        except LinkError as exc:
            text = {
                "expired": _("This link has expired. Ask the organiser for a new one."),
                "revoked": _("This recording is no longer published."),
            }.get(exc.reason) or _("This link is not valid.")
            raise (
                web.HTTPGone(text=text) if exc.reason != "invalid" else web.HTTPNotFound(text=text)
            ) from None

    async def _viewer(self, request: web.Request, link: OpenedLink) -> str | None:
        """Who watches: the personal link's recipient, or the lead-capture cookie."""
        if link.recipient is not None:
            return link.recipient
        cookie = request.cookies.get(VIEWER_COOKIE + link.publication.publication_id)
        return await self.publisher.viewer_from_cookie(link.publication.publication_id, cookie)

    @route("GET", "/r/{token}")
    async def watch(self, request: web.Request) -> web.Response:
        link = await self._opened(request)
        viewer = await self._viewer(request, link)
        if link.recipient is not None:
            await self.publisher.viewed(link, link.recipient)
        event = await self.site.store.get_event(link.recording.event_id)
        gate = link.publication.require_email and viewer is None
        token = request.match_info["token"]
        captioned = not gate and await has_captions(self.site.store, link.recording)
        return self.site.render(
            request,
            "watch.html",
            title=event.title if event else _("Recording"),
            brand=await event_brand(self.site.store, event) if event else None,
            gate=gate,
            error=None,
            token=token,
            captions=captioned,
            expires=_until(link.publication.expires),
            files=[]
            if gate
            else [
                {
                    "url": f"/r/{token}/files/{f['name']}",
                    "captions": f"/r/{token}/captions.vtt?file={quote(str(f['name']))}",
                    "label": f.get("label") or f["feed"],
                    "video": any(s["kind"] == "video" for s in f["streams"]),
                    "offset": round(float(f["offset"]), 1),
                }
                for f in link.recording.files
            ],
        )

    @route("POST", "/r/{token}")
    async def lead(self, request: web.Request) -> web.Response:
        link = await self._opened(request)
        form = await request.post()
        try:
            email = valid_email(str(form.get("email", "")))
        except ValueError as exc:
            event = await self.site.store.get_event(link.recording.event_id)
            return self.site.render(
                request,
                "watch.html",
                status=400,
                title=event.title if event else _("Recording"),
                brand=await event_brand(self.site.store, event) if event else None,
                gate=True,
                error=str(exc),
                token=request.match_info["token"],
                expires=_until(link.publication.expires),
                files=[],
            )
        await self.publisher.viewed(link, email, gate=True)  # a lead
        response = web.HTTPSeeOther(f"/r/{request.match_info['token']}")
        response.set_cookie(
            VIEWER_COOKIE + link.publication.publication_id,
            await self.publisher.viewer_cookie(link.publication.publication_id, email),
            httponly=True,
            samesite="Lax",
            secure=request.secure,
            max_age=int(max(60, link.publication.expires_at - datetime.now(UTC).timestamp())),
            path="/r/",
        )
        raise response

    @route("GET", "/r/{token}/captions.vtt")
    async def watch_captions(self, request: web.Request) -> web.Response:
        link = await self._opened(request)
        if link.publication.require_email and await self._viewer(request, link) is None:
            raise web.HTTPForbidden(
                text=_("Give your e-mail address on the recording's page first.")
            )
        try:
            text = await recording_vtt(self.site.store, link.recording, request.query.get("file"))
        except KeyError:
            raise web.HTTPNotFound(text=_("No such file in this recording.")) from None
        return vtt_response(text)

    @route("GET", "/r/{token}/files/{name}")
    async def watch_file(self, request: web.Request) -> web.StreamResponse:
        link = await self._opened(request)
        if link.publication.require_email and await self._viewer(request, link) is None:
            raise web.HTTPForbidden(
                text=_("Give your e-mail address on the recording's page first.")
            )
        path = self.service.file_path(link.recording, request.match_info["name"])
        if path is None:
            raise web.HTTPNotFound(text=_("No such file in this recording."))
        return web.FileResponse(path, headers={"Content-Type": media_type(path.name)})


def _kind(kind: str) -> str:
    """A track's kind ("audio", "video") in the language in effect."""
    known = _KINDS.get(kind)
    return gettext(known) if known is not None else kind


def _notice(code: str | None) -> str | None:
    """The notice of ``?notice=``: a known code in the language in effect, else as given."""
    if code in _NOTICES:
        return gettext(_NOTICES[code])
    return code
