"""`webinar event update --hls off|all|overflow --hls-overflow-after N`, shown by `event show`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import webinar.cli as cli


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in list(os.environ):
        if var.startswith("WEBINAR_"):
            monkeypatch.delenv(var)


def test_update_and_show(tmp_data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = str(tmp_data_dir)
    assert cli.main(["event", "create", "--title", "Big", "--json", "--data-dir", data]) == 0
    event_id = json.loads(capsys.readouterr().out)["event_id"]
    base = ["event", "update", event_id, "--data-dir", data]
    assert cli.main([*base, "--hls", "overflow", "--hls-overflow-after", "250", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["hls_mode"], shown["hls_overflow_after"]) == ("overflow", 250)
    assert cli.main(["event", "show", event_id, "--data-dir", data]) == 0
    assert "HLS:            attendees beyond the first 250" in capsys.readouterr().out
    assert cli.main([*base, "--hls-overflow-after", "-5"]) != 0
    assert "HLS threshold" in capsys.readouterr().err
    assert cli.main([*base, "--hls", "sometimes"]) != 0
