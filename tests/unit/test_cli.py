from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import webinar.cli as cli
from webinar.config import Config
from webinar.storage.store import Store

EVENT_ID = r"[0-9]{3}-[0-9]{3}-[0-9]{3}"
KEY = r"[A-Za-z0-9_-]{24}"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in list(os.environ):
        if var.startswith("WEBINAR_"):
            monkeypatch.delenv(var)


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> object:
    assert cli.main(list(argv)) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1, out  # exactly one line
    return json.loads(out)


def test_event_create_json(tmp_data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data_dir = str(tmp_data_dir)
    created = run_json(
        capsys, "event", "create", "--title", "Launch", "--json", "--data-dir", data_dir
    )
    assert isinstance(created, dict)
    assert set(created) == {
        "event_id",
        "title",
        "starts_at",
        "attendee_url",
        "presenter_url",
        "host_url",
    }
    assert re.fullmatch(EVENT_ID, created["event_id"])
    assert created["title"] == "Launch"
    assert created["starts_at"] is None
    event_id = created["event_id"]
    assert created["attendee_url"] == f"http://localhost:8080/e/{event_id}"
    assert re.fullmatch(
        rf"http://localhost:8080/e/{event_id}/present\?key={KEY}", created["presenter_url"]
    )

    listed = run_json(capsys, "event", "list", "--json", "--data-dir", data_dir)
    assert listed == [created]


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        ("2030-01-31T18:00Z", "2030-01-31T18:00:00Z"),
        ("2030-01-31T19:00:00+01:00", "2030-01-31T18:00:00Z"),
        ("2030-01-31 13:30-04:30", "2030-01-31T18:00:00Z"),
    ],
)
def test_event_create_with_start(
    tmp_data_dir: Path, capsys: pytest.CaptureFixture[str], start: str, expected: str
) -> None:
    created = run_json(
        capsys,
        *("event", "create", "--title", "T", "--start", start, "--json"),
        *("--data-dir", str(tmp_data_dir)),
    )
    assert isinstance(created, dict)
    assert created["starts_at"] == expected


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--title", "T", "--start", "2030-01-31T18:00"], "has no UTC offset; add one"),
        (["--title", "T", "--start", "2030-01-31"], "has no UTC offset; add one"),
        (["--title", "T", "--start", "tomorrow"], "not an ISO-8601 date and time"),
        (["--title", "   "], "--title: title must have 1 to 200 characters"),
        (["--title", "x" * 201], "--title: title must have 1 to 200 characters"),
        ([], "the following arguments are required: --title"),
    ],
)
def test_event_create_bad_input(
    tmp_data_dir: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code = cli.main(["event", "create", *args, "--json", "--data-dir", str(tmp_data_dir)])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    assert message in captured.err
    assert not (tmp_data_dir / "webinar.sqlite3").exists()  # refused before touching the store


def test_event_create_human(tmp_data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["event", "create", "--title", "Launch", "--data-dir", str(tmp_data_dir)]) == 0
    out = capsys.readouterr().out
    assert re.search(rf"^{EVENT_ID}  Launch$", out, re.MULTILINE)
    assert re.search(rf"Attendee link:  http://localhost:8080/e/{EVENT_ID}$", out, re.MULTILINE)
    assert re.search(rf"Presenter link: http://localhost:8080/e/{EVENT_ID}/present\?key=", out)


def test_event_list_human(tmp_data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["event", "list", "--data-dir", str(tmp_data_dir)]) == 0
    assert "No events yet" in capsys.readouterr().out


def test_config_file_and_env(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config_file = tmp_path / "webinar.toml"
    config_file.write_text(
        f'data_dir = "{tmp_path / "from-file"}"\n[http]\npublic_url = "https://w.example/"\n'
    )
    created = run_json(
        capsys, "event", "create", "--title", "T", "--json", "--config", str(config_file)
    )
    assert isinstance(created, dict)
    assert created["attendee_url"] == f"https://w.example/e/{created['event_id']}"
    assert (tmp_path / "from-file" / "webinar.sqlite3").is_file()

    monkeypatch.setenv("WEBINAR_DATA_DIR", str(tmp_path / "from-env"))
    run_json(capsys, "event", "create", "--title", "T", "--json", "--config", str(config_file))
    assert (tmp_path / "from-env" / "webinar.sqlite3").is_file()


def test_bad_config_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config_file = tmp_path / "webinar.toml"
    config_file.write_text("[ice]\nfoo = 1\n")
    assert cli.main(["event", "list", "--config", str(config_file)]) == 2
    assert "unknown key 'ice.foo'" in capsys.readouterr().err


def test_serve_creates_demo_event_once(
    tmp_data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[Config, int]] = []

    def fake_run_app(config: Config, store: Store) -> None:
        assert store.is_open
        calls.append((config, asyncio.run(store.count_events())))

    monkeypatch.setattr(cli, "_load_run_app", lambda: fake_run_app)
    argv = ["serve", "--host", "127.0.0.1", "--port", "9123", "--data-dir", str(tmp_data_dir)]

    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "Created a demo event: Demo webinar" in out
    assert re.search(rf"Attendee link:  http://127\.0\.0\.1:9123/e/{EVENT_ID}\n", out)
    assert re.search(rf"Presenter link: http://127\.0\.0\.1:9123/e/{EVENT_ID}/present\?key=", out)
    config, count = calls[0]
    assert (config.http.host, config.http.port, config.data_dir) == (
        "127.0.0.1",
        9123,
        tmp_data_dir,
    )
    assert count == 1

    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "Demo webinar" not in out
    assert "1 event in" in out
    assert calls[1][1] == 1


def test_serve_bad_port(tmp_data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["serve", "--port", "0", "--data-dir", str(tmp_data_dir)]) == 2
    assert "http.port: must be between 1 and 65535" in capsys.readouterr().err


def test_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 2
    assert "usage: webinar" in capsys.readouterr().err
    assert cli.main(["--help"]) == 0
    assert "serve" in capsys.readouterr().out
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == "webinar 0.1.0"


def test_module_entry_point(tmp_data_dir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEBINAR_")}
    command = [sys.executable, "-m", "webinar", "event", "create", "--title", "Sub", "--json"]
    result = subprocess.run(
        [*command, "--data-dir", str(tmp_data_dir)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    created = json.loads(result.stdout)
    assert created["title"] == "Sub"
    assert re.fullmatch(EVENT_ID, created["event_id"])


def test_config_example_loads_and_names_every_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from webinar.config import config_keys, load_config

    assert cli.main(["config", "example"]) == 0
    text = capsys.readouterr().out
    path = tmp_path / "example.toml"
    path.write_text(text)
    assert load_config(path, {}) == load_config(None, {})  # the defaults, exactly
    for dotted, _env in config_keys():
        assert dotted.split(".")[-1] in text, dotted


def test_config_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.toml"
    good.write_text("[http]\nport = 9000\n[ice]\nudp_port_min = 40000\nudp_port_max = 40100\n")
    assert cli.main(["config", "check", "--config", str(good)]) == 0
    assert "Configuration OK" in capsys.readouterr().out
    bad = tmp_path / "bad.toml"
    bad.write_text("[ice]\nudp_port_min = 40000\n")
    assert cli.main(["config", "check", "--config", str(bad)]) == 2
    assert "ice.udp_port_min" in capsys.readouterr().err


def test_config_check_loads_the_tls_pair(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.serving import make_certificate

    cert, key = tmp_path / "fullchain.pem", tmp_path / "privkey.pem"
    monkeypatch.setenv("WEBINAR_TLS_CERT_FILE", str(cert))
    monkeypatch.setenv("WEBINAR_TLS_KEY_FILE", str(key))
    assert cli.main(["config", "check"]) == 2
    assert f"tls: cannot read {cert}: not found" in capsys.readouterr().err
    make_certificate(cert, key, serial=5)
    assert cli.main(["config", "check"]) == 0
    out = capsys.readouterr().out
    assert "TLS: CN=webinar test, valid until" in out
    assert "links use https://localhost:8080" in out
    other_key = tmp_path / "other.pem"
    make_certificate(tmp_path / "other-cert.pem", other_key, serial=6)
    monkeypatch.setenv("WEBINAR_TLS_KEY_FILE", str(other_key))
    assert cli.main(["config", "check"]) == 2
    assert "are not a matching PEM certificate and key" in capsys.readouterr().err
