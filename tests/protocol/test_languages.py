"""The language of pages, catalogs and server texts over HTTP and the WebSocket."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp

from tests.helpers import running_server
from webinar import i18n


def _in(language: str, message: str) -> str:
    with i18n.using(language):
        return i18n.gettext(message)


async def _page(
    http: aiohttp.ClientSession, url: str, *, accept: str | None = None, cookie: str | None = None
) -> tuple[str, str]:
    headers = {"Accept-Language": accept} if accept else {}
    if cookie:
        headers["Cookie"] = f"{i18n.COOKIE}={cookie}"
    async with http.get(url, headers=headers) as response:
        assert response.status == 200
        assert "Accept-Language" in response.headers.get("Vary", "")
        text = await response.text()
    lang = text.split('<html lang="', 1)[1].split('"', 1)[0]
    return lang, text


async def test_a_page_speaks_the_chosen_then_the_event_s_then_the_browser_s_language(
    tmp_path: Path,
) -> None:
    async with running_server(tmp_path / "data") as srv, aiohttp.ClientSession() as http:
        plain = await srv.create_event("Plain")
        czech = await srv.create_event("Czech event", language="cs")
        home = srv.base_url + "/"
        assert (await _page(http, home))[0] == "en"
        lang, text = await _page(http, home, accept="ru-RU,ru;q=0.9,en;q=0.5")
        assert lang == "ru"
        assert _in("ru", "Skip to content") in text
        assert (await _page(http, home, accept="de, cs;q=0.5"))[0] == "cs"
        assert (await _page(http, home, accept="ru", cookie="cs"))[0] == "cs"  # own choice first
        room = f"{srv.base_url}/e/{{}}"
        assert (await _page(http, room.format(plain.event_id), accept="ru"))[0] == "ru"
        # the organiser's language beats the browser's, the person's own choice beats both
        assert (await _page(http, room.format(czech.event_id), accept="ru"))[0] == "cs"
        assert (await _page(http, room.format(czech.event_id), cookie="en"))[0] == "en"


async def test_the_switcher_sets_the_cookie_and_goes_back_only_to_this_site(
    tmp_path: Path,
) -> None:
    async with running_server(tmp_path / "data") as srv, aiohttp.ClientSession() as http:
        url = srv.base_url + "/language"
        async with http.post(
            url, data={"lang": "cs", "next": "/e/1?x=2"}, allow_redirects=False
        ) as r:
            assert r.status == 303
            assert r.headers["Location"] == "/e/1?x=2"
            assert r.cookies[i18n.COOKIE].value == "cs"
        for foreign in (
            "//evil.example/",
            "https://evil.example/",
            "/\\evil.example",
            "javascript:x",
        ):
            async with http.post(
                url, data={"lang": "ru", "next": foreign}, allow_redirects=False
            ) as r:
                assert r.status == 303 and r.headers["Location"] == "/", foreign
        async with http.post(url, data={"lang": "xx"}, allow_redirects=False) as r:
            assert r.status == 400


async def test_the_browser_catalog_is_served_and_cached_by_version(tmp_path: Path) -> None:
    async with running_server(tmp_path / "data") as srv, aiohttp.ClientSession() as http:
        version = i18n.compiled("ru").version
        async with http.get(f"{srv.base_url}/i18n/ru.json?v={version}") as r:
            assert r.status == 200
            assert "immutable" in r.headers["Cache-Control"]
            data: dict[str, Any] = await r.json()
        assert data["lang"] == "ru"
        assert data["messages"]["Skip to content"] == _in("ru", "Skip to content")
        async with http.get(f"{srv.base_url}/i18n/ru.json") as r:
            assert r.headers["Cache-Control"] == "no-cache"
        async with http.get(f"{srv.base_url}/i18n/xx.json") as r:
            assert r.status == 404
        # the page names the catalog of its language
        async with http.get(srv.base_url + "/", headers={"Accept-Language": "cs"}) as r:
            assert f"/i18n/cs.json?v={i18n.compiled('cs').version}" in await r.text()


async def test_server_texts_follow_the_connection_s_language(tmp_path: Path) -> None:
    async with running_server(tmp_path / "data") as srv, aiohttp.ClientSession() as http:
        ws = await http.ws_connect(srv.base_url + "/ws", headers={"Accept-Language": "cs"})

        async def ask(message: dict[str, Any], rid: int) -> dict[str, Any]:
            await ws.send_json({**message, "id": rid})
            while True:
                reply = json.loads((await ws.receive()).data)
                if reply.get("id") == rid:
                    return reply

        refused = {"type": "set-language", "language": "xx"}
        await ask({"type": "hello", "protocol": 1}, 1)
        reply = await ask(refused, 2)  # no language in hello: the upgrade's Accept-Language
        assert reply["type"] == "error" and reply["code"] == "invalid-request"
        assert reply["message"] == _in("cs", "That language is not available.")
        assert (await ask({"type": "set-language", "language": "ru"}, 3))["type"] == "ok"
        reply = await ask(refused, 4)
        assert reply["message"] == _in("ru", "That language is not available.")
        assert reply["message"] != "That language is not available."
        await ws.close()

        ws = await http.ws_connect(srv.base_url + "/ws")
        await ask({"type": "hello", "protocol": 1, "language": "ru"}, 1)
        assert (await ask(refused, 2))["message"] == _in("ru", "That language is not available.")
        await ws.close()
