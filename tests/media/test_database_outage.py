"""PostgreSQL away for a moment under a running server (the store a cluster shares): media goes
on, joins and room commands are refused with ``unavailable`` and a clear message, nothing
that was stored is lost, and everything works again once it is back."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest

from tests import media_support
from tests.helpers import make_config, running_server
from tests.media_support import publish_camera_and_mic, until
from tests.postgres_server import PostgresServer, ensure_key
from webinar.client.peer import ClientError, WebinarClient

pytestmark = pytest.mark.media
clients = media_support.clients
client = media_support.client


async def test_postgresql_away_media_goes_on_joins_wait_nothing_is_lost(
    tmp_path: Path, own_postgres: PostgresServer, clients: list[WebinarClient]
) -> None:
    data = tmp_path / "data"
    ensure_key(data)
    config = make_config(data)
    config = dataclasses.replace(
        config,
        cluster=dataclasses.replace(config.cluster, database_url=own_postgres.url("webinar")),
    )
    async with running_server(data, config) as server:
        event = await server.store.create_event("Outage", None)
        pres = client(clients, server.base_url)
        await pres.join(event.event_id, "Pres", event.presenter_key)
        viewer = client(clients, server.base_url)
        await viewer.join(event.event_id, "Viewer")
        assert pres.signalling is not None
        await pres.signalling.request("sync-interaction")
        await pres.signalling.request("chat-send", text="before")
        await publish_camera_and_mic(pres)
        await until(lambda: viewer.stats.packets["video"] > 0)

        own_postgres.stop()
        before = viewer.stats.packets["video"]
        with pytest.raises(ClientError) as refused:
            await pres.signalling.request("chat-send", text="during")
        assert refused.value.code == "unavailable"
        assert "database" in refused.value.message
        late = client(clients, server.base_url)
        with pytest.raises(ClientError) as refused_join:
            await late.join(event.event_id, "Late")
        assert refused_join.value.code == "unavailable"
        await asyncio.sleep(2.0)
        assert viewer.stats.packets["video"] > before + 30  # the media never touched it

        own_postgres.start()
        for _ in range(50):  # the store reconnects at its next call
            try:
                await pres.signalling.request("chat-send", text="after")
                break
            except ClientError as exc:
                assert exc.code == "unavailable"
                await asyncio.sleep(0.2)
        again = client(clients, server.base_url)
        await again.join(event.event_id, "Again")
        texts = [m["text"] for m in (await pres.signalling.request("sync-interaction"))["messages"]]
        assert texts == ["before", "after"]
