"""What protocol tests with signalling-only participants share: a server, the people a test lets
in, a typed ``enter`` and ``refused``.

A test module takes the two fixtures under its own names (pytest finds a fixture by the name it
has in the module): ``server = protocol_fixtures.server`` and ``people = protocol_fixtures.people``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic

import pytest

from tests import helpers
from tests.helpers import P, RunningServer, join_person, running_server
from webinar.client.peer import ClientError
from webinar.storage.store import Event


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    """A running server on a fresh data folder."""
    async with running_server(tmp_path / "data") as srv:
        yield srv


@pytest.fixture
async def people(server: RunningServer) -> AsyncIterator[list[Any]]:
    """The participants a test lets in (with an :class:`Entrance`), all closed at its end."""
    made: list[Any] = []
    yield made
    await asyncio.gather(*(p.close() for p in made))


class MatchingPerson(helpers.Person):
    """A person whose ``wait(type_, **match)`` takes the fields the message must have."""

    async def wait(  # type: ignore[override]
        self, type_: str, within: float = 5.0, **match: Any
    ) -> dict[str, Any]:
        return await self.client.wait_for(
            type_, within=within, where=lambda m: all(m.get(k) == v for k, v in match.items())
        )


@pytest.fixture
async def own_people() -> AsyncIterator[list[Any]]:
    """Like ``people`` but starts no server: for modules whose tests may run their own
    (``people = protocol_fixtures.own_people``); all closed at the test's end."""
    made: list[Any] = []
    yield made
    await asyncio.gather(*(p.close() for p in made))


@dataclass(frozen=True)
class Entrance(Generic[P]):
    """``enter = Entrance(Person)``; ``await enter(server, people, event, name, credential)``
    is a joined ``Person`` (:func:`tests.helpers.join_person`)."""

    cls: type[P]

    async def __call__(
        self,
        server: RunningServer,
        people: list[P],
        event: Event,
        name: str,
        credential: str | None = None,
        **extra: Any,
    ) -> P:
        return await join_person(server, people, self.cls, event, name, credential, **extra)


async def refused(code: str, call: Awaitable[Any]) -> ClientError:
    """Await ``call``, which must fail with the error ``code``; that error."""
    with pytest.raises(ClientError) as err:
        await call
    assert err.value.code == code, err.value
    return err.value


def _latest(person: helpers.Person, participant_id: str) -> dict[str, Any] | str | None:
    """What the person's messages last said of ``participant_id``: their record, or the
    reason they left; None when nothing was said."""
    latest: dict[str, Any] | str | None = None
    for m in person.seen:
        kind = m.get("type")
        if kind == "roster-delta":
            for p in [*m["joined"], *m["updated"]]:
                if p["participant_id"] == participant_id:
                    latest = p
            for gone in m["left"]:
                if gone["participant_id"] == participant_id:
                    latest = str(gone["reason"])
        elif kind in ("participant-joined", "participant-updated"):
            if m["participant"]["participant_id"] == participant_id:
                latest = m["participant"]
        elif kind == "participant-left" and m["participant_id"] == participant_id:
            latest = str(m["reason"])
    return latest


async def _until(check: Callable[[], Any], within: float) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while (found := check()) is None:
        if loop.time() > deadline:
            raise TimeoutError(f"not seen within {within} s")
        await asyncio.sleep(0.02)
    return found


async def roster_shows(
    person: helpers.Person, participant_id: str, within: float = 5.0, **fields: Any
) -> dict[str, Any]:
    """Wait until what someone who runs the floor was last told of ``participant_id`` (in a
    ``roster-delta`` off the stage, a ``participant-*`` message on it) has ``fields``."""

    def check() -> dict[str, Any] | None:
        p = _latest(person, participant_id)
        if isinstance(p, dict) and all(p.get(k) == v for k, v in fields.items()):
            return p
        return None

    found: dict[str, Any] = await _until(check, within)
    return found


async def roster_left(person: helpers.Person, participant_id: str, within: float = 5.0) -> str:
    """Wait until someone who runs the floor learns ``participant_id`` left; the reason."""

    def check() -> str | None:
        reason = _latest(person, participant_id)
        return reason if isinstance(reason, str) else None

    reason: str = await _until(check, within)
    return reason
