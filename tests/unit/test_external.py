"""The external player's links (webinar.content.external): providers, embed URLs, refusals,
the CSP sources, the ``stage`` message's ``external``; the ``[content]`` configuration."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from webinar.config import ConfigError, ContentConfig, load_config
from webinar.content.external import (
    MAX_CHARS,
    ExternalLinkError,
    check_external,
    external_for,
    frame_sources,
    parse_external,
)
from webinar.storage.records import Event

NOCOOKIE = "https://www.youtube-nocookie.com/embed/"


@pytest.mark.parametrize(
    ("url", "embed"),
    [
        ("https://www.youtube.com/watch?v=dQw4w9WgXcQ", NOCOOKIE + "dQw4w9WgXcQ"),
        ("https://youtube.com/watch?feature=share&v=dQw4w9WgXcQ", NOCOOKIE + "dQw4w9WgXcQ"),
        ("https://m.youtube.com/watch?v=dQw4w9WgXcQ&t=90", NOCOOKIE + "dQw4w9WgXcQ?start=90"),
        ("https://youtu.be/dQw4w9WgXcQ?t=1m30s", NOCOOKIE + "dQw4w9WgXcQ?start=90"),
        ("http://youtu.be/dQw4w9WgXcQ", NOCOOKIE + "dQw4w9WgXcQ"),  # made https
        ("https://www.youtube.com/live/jfKfPfyJRdk?si=abc", NOCOOKIE + "jfKfPfyJRdk"),
        ("https://www.youtube.com/shorts/aqz-KE-bpKQ", NOCOOKIE + "aqz-KE-bpKQ"),
        ("https://www.youtube.com/embed/dQw4w9WgXcQ?start=5", NOCOOKIE + "dQw4w9WgXcQ?start=5"),
        ("https://www.youtube-nocookie.com/embed/dQw4w9WgXcQ", NOCOOKIE + "dQw4w9WgXcQ"),
        (
            "https://www.youtube.com/channel/UCSJ4gkVC6NrvII8umztf0Ow/live",
            NOCOOKIE + "live_stream?channel=UCSJ4gkVC6NrvII8umztf0Ow",
        ),
        (
            "https://www.youtube.com/playlist?list=PLBCF2DAC6FFB574DE",
            NOCOOKIE + "videoseries?list=PLBCF2DAC6FFB574DE",
        ),
    ],
)
def test_youtube_links_become_the_no_cookie_player(url: str, embed: str) -> None:
    player = parse_external(url)
    assert (player.provider, player.framable, player.embed_url, player.url) == (
        "youtube",
        True,
        embed,
        url,
    )


@pytest.mark.parametrize(
    ("url", "embed"),
    [
        ("https://vimeo.com/76979871", "https://player.vimeo.com/video/76979871"),
        ("https://vimeo.com/76979871/8272103f6e", "https://player.vimeo.com/video/76979871?h=8272103f6e"),
        ("https://player.vimeo.com/video/76979871", "https://player.vimeo.com/video/76979871"),
        (
            "https://player.vimeo.com/video/76979871?h=8272103f6e&badge=0",
            "https://player.vimeo.com/video/76979871?h=8272103f6e",
        ),
        ("https://vimeo.com/channels/staffpicks/76979871", "https://player.vimeo.com/video/76979871"),
        ("https://vimeo.com/event/1234567", "https://vimeo.com/event/1234567/embed"),
        ("https://vimeo.com/event/1234567/embed", "https://vimeo.com/event/1234567/embed"),
        ("https://vimeo.com/event/1234567/a1b2c3d4e5", "https://vimeo.com/event/1234567/embed/a1b2c3d4e5"),
    ],
)  # fmt: skip
def test_vimeo_links_become_vimeos_player(url: str, embed: str) -> None:
    player = parse_external(url)
    assert (player.provider, player.framable, player.embed_url) == ("vimeo", True, embed)


@pytest.mark.parametrize(
    ("url", "opens"),
    [
        ("https://zoom.us/j/91234567890?pwd=abc", "https://zoom.us/j/91234567890?pwd=abc"),
        ("https://us02web.zoom.us/w/81234567890", "https://us02web.zoom.us/w/81234567890"),
        ("http://us06web.zoom.us/j/81234567890#frag", "https://us06web.zoom.us/j/81234567890"),
        ("https://example.zoom.us/webinar/register/WN_abc-DEF_123", None),
        ("https://zoom.us/my/ada.lovelace", None),
    ],
)
def test_zoom_links_are_opened_not_framed(url: str, opens: str | None) -> None:
    player = parse_external(url)
    assert (player.provider, player.framable) == ("zoom", False)
    assert player.embed_url == (opens or url)


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("javascript:alert(1)", "https://"),
        ("data:text/html,<b>x</b>", "spaces or quotes"),
        ("data:text/plain,hello", "https://"),
        ("vbscript:msgbox", "https://"),
        ("ftp://youtube.com/watch?v=dQw4w9WgXcQ", "https://"),
        ("//www.youtube.com/watch?v=dQw4w9WgXcQ", "https://"),
        ("https://user:secret@www.youtube.com/watch?v=dQw4w9WgXcQ", "user name"),
        ("https://evil.example@www.youtube.com/watch?v=dQw4w9WgXcQ", "user name"),
        ("https://www.youtube.com/watch?v=dQw4w9WgXcQ extra", "spaces"),
        ("https://www.youtube.com\\@evil.example/", "spaces or quotes"),
        ("https://www.youtube.com/about", "YouTube"),
        ("https://www.youtube.com/watch?v=short", "YouTube"),
        ("https://vimeo.com/about", "Vimeo"),
        ("https://zoom.us/pricing", "Zoom"),
        ("https://zoom.us.evil.example/j/91234567890", "evil.example"),
        ("https://www.twitch.tv/somebody", "www.twitch.tv"),
        ("https://player.example.com/live", "player.example.com"),
        ("https://youtu.be/" + "a" * MAX_CHARS, "at most 2000"),
    ],
)
def test_anything_else_is_refused_with_a_reason(url: str, words: str) -> None:
    with pytest.raises(ExternalLinkError) as refused:
        parse_external(url)
    assert words in str(refused.value)


def test_extra_hosts_are_framed_as_they_are_https_only() -> None:
    extras = ("player.example.com", "*.stream.example.org")
    url = "https://player.example.com/embed/42?autoplay=0"
    player = parse_external(url, extras)
    assert (player.provider, player.framable, player.embed_url) == ("other", True, url)
    assert parse_external("https://eu.stream.example.org/x", extras).provider == "other"
    for bad, words in [
        ("http://player.example.com/embed/42", "https://"),
        ("https://player.example.com:8443/embed/42", "port"),
        ("https://stream.example.org/x", "stream.example.org"),  # *. is subdomains only
        ("https://other.example.com/x", "other.example.com"),
    ]:
        with pytest.raises(ExternalLinkError) as refused:
            parse_external(bad, extras)
        assert words in str(refused.value), bad


def test_check_external_strips_and_empty_is_none() -> None:
    assert check_external(None) is None and check_external("   ") is None
    assert check_external("  https://vimeo.com/76979871 \n") == "https://vimeo.com/76979871"


def _event(url: str | None) -> Event:
    now = datetime.now(UTC)
    return Event("123456789", "Launch", "key", None, now, external_url=url)


def test_external_for_is_the_stage_messages_shape() -> None:
    assert external_for(_event(None)) is None
    link = "https://youtu.be/dQw4w9WgXcQ"
    assert external_for(_event(link)) == {
        "url": NOCOOKIE + "dQw4w9WgXcQ",
        "provider": "youtube",
        "framable": True,
        "link": link,
    }
    zoom = "https://us02web.zoom.us/w/81234567890?tk=x"
    assert external_for(_event(zoom)) == {
        "url": zoom,
        "provider": "zoom",
        "framable": False,
        "link": zoom,
    }
    # a host the administrator took off the list since: not shown
    assert external_for(_event("https://player.example.com/x")) is None
    assert external_for(_event("https://player.example.com/x"), ["player.example.com"]) == {
        "url": "https://player.example.com/x",
        "provider": "other",
        "framable": True,
        "link": "https://player.example.com/x",
    }


def test_frame_sources_are_the_providers_and_the_extra_hosts() -> None:
    assert frame_sources() == (
        "'self'",
        "https://www.youtube-nocookie.com",
        "https://player.vimeo.com",
        "https://vimeo.com",
    )
    assert frame_sources(["player.example.com", "*.cdn.example.org"])[-2:] == (
        "https://player.example.com",
        "https://*.cdn.example.org",
    )


def test_content_config_takes_host_names_only() -> None:
    assert ContentConfig().external_providers == ()
    config = ContentConfig(external_providers=(" Player.Example.com ", "*.cdn.example.org"))
    assert config.external_providers == ("player.example.com", "*.cdn.example.org")
    for bad in ("https://player.example.com", "player.example.com/x", "*.com", "a b.example",
                "player.example.com:443", "localhost"):  # fmt: skip
        with pytest.raises(ConfigError, match=r"content\.external_providers"):
            ContentConfig(external_providers=(bad,))
    loaded = load_config(None, {"WEBINAR_CONTENT_EXTERNAL_PROVIDERS": "a.example.com, b.example"})
    assert loaded.content.external_providers == ("a.example.com", "b.example")
