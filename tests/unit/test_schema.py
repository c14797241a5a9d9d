"""The signalling schema: parsing and validation, table by table."""

from __future__ import annotations

from typing import Any

import pytest

from webinar.signalling import schema as s


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"type": "hello", "protocol": 1}, s.Hello(protocol=1)),
        ({"type": "hello", "protocol": 1, "client": "x"}, s.Hello(protocol=1, client="x")),
        ({"type": "join", "event_id": "1", "name": "A"}, s.Join(event_id="1", name="A")),
        (
            {"type": "publish", "sdp": "v=0", "tracks": [{"mid": "0", "source": "camera"}]},
            s.Publish(sdp="v=0", tracks=[s.TrackInfo(mid="0", source="camera")]),
        ),
        (
            {"type": "ice-candidate", "target": "publish", "candidate": ""},
            s.IceCandidate(target="publish", candidate=""),
        ),
        ({"type": "ping"}, s.Ping()),
        ({"type": "leave", "id": "abc"}, s.Leave()),
    ],
)
def test_valid_messages(raw: dict[str, Any], expected: Any) -> None:
    message, request_id = s.parse_client_message(raw)
    assert message == expected
    assert request_id == raw.get("id")


@pytest.mark.parametrize(
    ("raw", "code", "fragment"),
    [
        ("text", s.ErrorCode.BAD_JSON, "object"),
        ({}, s.ErrorCode.BAD_MESSAGE, "type"),
        ({"type": 3}, s.ErrorCode.BAD_MESSAGE, "type"),
        ({"type": "x"}, s.ErrorCode.UNKNOWN_TYPE, "'x'"),
        ({"type": "ping", "id": True}, s.ErrorCode.BAD_MESSAGE, "id"),
        ({"type": "ping", "id": "x" * 65}, s.ErrorCode.BAD_MESSAGE, "id"),
        ({"type": "ping", "x": 1}, s.ErrorCode.BAD_MESSAGE, "unknown field 'x'"),
        ({"type": "hello"}, s.ErrorCode.BAD_MESSAGE, "missing field 'protocol'"),
        ({"type": "hello", "protocol": True}, s.ErrorCode.BAD_MESSAGE, "integer"),
        ({"type": "join", "event_id": "", "name": "a"}, s.ErrorCode.BAD_MESSAGE, "at least 1"),
        ({"type": "join", "event_id": "1", "name": "a" * 201}, s.ErrorCode.BAD_MESSAGE, "at most"),
        ({"type": "publish", "sdp": "v", "tracks": {}}, s.ErrorCode.BAD_MESSAGE, "list"),
        (
            {"type": "publish", "sdp": "v", "tracks": [{"mid": "0", "source": "tv"}]},
            s.ErrorCode.BAD_MESSAGE,
            "one of",
        ),
        (
            {"type": "publish", "sdp": "v", "tracks": [{"mid": "0"}] * 17},
            s.ErrorCode.BAD_MESSAGE,
            "at most 16",
        ),
        ({"type": "publish", "sdp": "v", "tracks": [1]}, s.ErrorCode.BAD_MESSAGE, "object"),
        (
            {"type": "ice-candidate", "target": "x", "candidate": ""},
            s.ErrorCode.BAD_MESSAGE,
            "one of",
        ),
        (
            {"type": "ice-candidate", "target": "publish", "candidate": "", "sdp_mline_index": -1},
            s.ErrorCode.BAD_MESSAGE,
            "0..64",
        ),
    ],
)
def test_refused_messages(raw: Any, code: s.ErrorCode, fragment: str) -> None:
    with pytest.raises(s.ProtocolError) as err:
        s.parse_client_message(raw)
    assert err.value.code == code
    assert fragment in err.value.message


def test_encode_carries_type_id_and_plain_values() -> None:
    out = s.encode(s.Error(code=s.ErrorCode.FORBIDDEN, message="no"), 7)
    assert out == {"type": "error", "id": 7, "code": "forbidden", "message": "no"}
    offer = s.SubscriberOffer(
        sdp="v=0",
        streams=[s.MidStream("0", "pr", "pa", "Ann", "camera", "video")],
    )
    assert s.encode(offer)["streams"][0]["mid"] == "0"


def test_every_client_type_is_documented() -> None:
    from pathlib import Path

    doc = (Path(__file__).parents[2] / "docs" / "protocol.md").read_text()
    for name in s.CLIENT_MESSAGES:
        assert f"`{name}`" in doc, name
    for code in s.ErrorCode:
        assert f"`{code.value}`" in doc, code


def test_every_domain_refusal_has_a_wire_code() -> None:
    """A room, interaction or SFU refusal always reaches the client as a documented code."""
    from webinar.signalling.errors import DOMAIN_CODES, wire_code

    for enum_type in DOMAIN_CODES:
        for code in enum_type:
            assert isinstance(wire_code(code), s.ErrorCode), code


def test_a_track_source_is_the_sfu_media_source() -> None:
    from webinar.sfu.types import MediaSource

    msg, _ = s.parse_client_message(
        {"type": "publish", "sdp": "v=0", "tracks": [{"mid": "0", "source": "screen-audio"}]}
    )
    assert isinstance(msg, s.Publish)
    assert msg.tracks[0].source is MediaSource.SCREEN_AUDIO
    with pytest.raises(s.ProtocolError, match="source must be one of 'microphone'"):
        s.parse_client_message(
            {"type": "publish", "sdp": "v=0", "tracks": [{"mid": "0", "source": "radio"}]}
        )
