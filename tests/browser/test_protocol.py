"""protocol.js on its own, imported into a page: typed errors, rollback, ping, leave."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.support import OpenPage
from tests.helpers import RunningServer

pytestmark = pytest.mark.browser

SCRIPT = """
async ({eventId, key}) => {
  const {WebinarConnection, WebinarError} = await import("/static/js/protocol.js");
  const out = {};
  const failure = async (promise) => {
    try { await promise; return "no error"; }
    catch (e) { return [e instanceof WebinarError, e.code]; }
  };

  const stranger = new WebinarConnection();
  await stranger.connect();
  out.unknownEvent = await failure(stranger.join({eventId: "000-000-000", name: "X"}));
  stranger.close();

  const impostor = new WebinarConnection();
  await impostor.connect();
  out.badKey = await failure(impostor.join({eventId, name: "X", credential: key + "x"}));
  impostor.close();

  const conn = new WebinarConnection({pingInterval: 200});
  const events = [];
  for (const type of ["bye", "close", "statechange"]) {
    conn.addEventListener(type, (e) => events.push(
      type === "bye" ? [type, e.detail.reason]
      : type === "close" ? [type, e.detail.bye] : [type, e.detail.state]));
  }
  await conn.connect();
  const joined = await conn.join({eventId: eventId.replace(/-/g, ""), name: "  Bea   Attendee "});
  out.joined = [joined.role, joined.event.event_id, joined.participants.map((p) => p.name)];

  // An attendee may not publish: refused, and the offer is rolled back.
  const media = await navigator.mediaDevices.getUserMedia({audio: true});
  out.publish = await failure(
    conn.publish([{track: media.getAudioTracks()[0], source: "microphone"}]));
  out.publishState = conn.publishConnection.signalingState;
  media.getTracks().forEach((t) => t.stop());

  out.unknownType = await failure(conn.request("no-such-message"));

  let pongs = 0;
  const request = conn.request.bind(conn);
  conn.request = (type, fields, options) => {
    const reply = request(type, fields, options);
    if (type === "ping") reply.then((m) => { if (m.type === "pong") pongs += 1; }, () => {});
    return reply;
  };
  await new Promise((r) => setTimeout(r, 750));
  out.pongs = pongs;

  await conn.leave();
  await new Promise((r) => setTimeout(r, 100));
  out.events = events;
  out.afterLeave = await failure(conn.request("ping"));
  return out;
}
"""


async def test_protocol_library(server: RunningServer, open_page: OpenPage) -> None:
    event = await server.create_event("Protocol")
    page = await open_page("protocol")
    await page.goto(server.base_url + "/")
    out: dict[str, Any] = await page.evaluate(
        SCRIPT, {"eventId": event.display_id, "key": event.presenter_key}
    )
    assert out["unknownEvent"] == [True, "unknown-event"]
    assert out["badKey"] == [True, "bad-credential"]
    assert out["joined"] == ["attendee", event.display_id, ["Bea Attendee"]]
    assert out["publish"] == [True, "forbidden"]
    assert out["publishState"] == "stable"
    assert out["unknownType"] == [True, "unknown-type"]
    assert out["pongs"] >= 2
    assert out["events"] == [
        ["statechange", "connecting"],
        ["statechange", "connected"],
        ["statechange", "joined"],
        ["bye", "left"],
        ["statechange", "closed"],
        ["close", "left"],
    ]
    assert out["afterLeave"] == [True, "not-connected"]
