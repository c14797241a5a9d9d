"""`webinar event create|update --external-url`: checked against the providers (and
``[content] external_providers``), shown by ``event show``, copied by ``event duplicate``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

import webinar.cli as cli

YOUTUBE = "https://www.youtube.com/watch?v=dQw4w9WgXcQ"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in list(os.environ):
        if var.startswith("WEBINAR_"):
            monkeypatch.delenv(var)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    return json.loads(out)


def show(capsys: pytest.CaptureFixture[str], data: Path, event_id: str) -> dict[str, Any]:
    shown = run_json(capsys, "event", "show", event_id, "--json", "--data-dir", str(data))
    assert isinstance(shown, dict)
    return shown


def test_create_update_show_and_duplicate(
    tmp_data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = str(tmp_data_dir)
    created = run_json(
        capsys,
        *("event", "create", "--title", "Launch", "--json", "--data-dir", data),
        *("--external-url", f"  {YOUTUBE} "),
    )
    event_id = created["event_id"]
    assert show(capsys, tmp_data_dir, event_id)["external_url"] == YOUTUBE
    code, out, _err = run(capsys, "event", "show", event_id, "--data-dir", data)
    assert code == 0 and f"External player: {YOUTUBE}" in out

    zoom = "https://us02web.zoom.us/w/81234567890?tk=abc"
    updated = run_json(
        capsys,
        *("event", "update", event_id, "--json", "--data-dir", data),
        *("--external-url", zoom),
    )
    assert updated["external_url"] == zoom
    copy = run_json(capsys, "event", "duplicate", event_id, "--json", "--data-dir", data)
    assert show(capsys, tmp_data_dir, copy["event_id"])["external_url"] == zoom

    cleared = run_json(
        capsys, "event", "update", event_id, "--json", "--data-dir", data, "--external-url", ""
    )
    assert cleared["external_url"] is None


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("javascript:alert(1)", "must be a web address starting with https://"),
        ("https://www.twitch.tv/x", "cannot be from www.twitch.tv"),
        ("https://www.youtube.com/about", "not a YouTube video"),
    ],
)
def test_links_that_cannot_be_shown_are_refused(
    tmp_data_dir: Path, capsys: pytest.CaptureFixture[str], url: str, words: str
) -> None:
    data = str(tmp_data_dir)
    code, out, err = run(
        capsys, "event", "create", "--title", "X", "--data-dir", data, "--external-url", url
    )
    assert (code, out) == (2, "") and "--external-url" in err and words in err
    created = run_json(capsys, "event", "create", "--title", "Y", "--json", "--data-dir", data)
    code, out, err = run(
        capsys, "event", "update", created["event_id"], "--data-dir", data, "--external-url", url
    )
    assert (code, out) == (2, "") and words in err
    assert show(capsys, tmp_data_dir, created["event_id"])["external_url"] is None


def test_the_administrators_extra_hosts(
    tmp_data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = str(tmp_data_dir)
    player = "https://live.cdn.example.org/player/42"
    code, _out, err = run(
        capsys, "event", "create", "--title", "X", "--data-dir", data, "--external-url", player
    )
    assert code == 2 and "ask the server's administrator to allow live.cdn.example.org" in err
    monkeypatch.setenv("WEBINAR_CONTENT_EXTERNAL_PROVIDERS", "*.cdn.example.org")
    created = run_json(
        capsys,
        *("event", "create", "--title", "X", "--json", "--data-dir", data),
        *("--external-url", player),
    )
    assert show(capsys, tmp_data_dir, created["event_id"])["external_url"] == player
