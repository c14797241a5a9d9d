"""Roles are capability sets; handlers check capabilities, never role names."""

from __future__ import annotations

import enum


class Role(enum.StrEnum):
    HOST = "host"
    PRESENTER = "presenter"
    ATTENDEE = "attendee"


class Capability(enum.StrEnum):
    PUBLISH_AUDIO = "publish-audio"
    PUBLISH_VIDEO = "publish-video"
    PUBLISH_SCREEN = "publish-screen"
    SUBSCRIBE = "subscribe"


_PRESENTING = frozenset(
    {
        Capability.PUBLISH_AUDIO,
        Capability.PUBLISH_VIDEO,
        Capability.PUBLISH_SCREEN,
        Capability.SUBSCRIBE,
    }
)

ROLE_CAPABILITIES: dict[Role, frozenset[Capability]] = {
    Role.HOST: _PRESENTING,
    Role.PRESENTER: _PRESENTING,
    Role.ATTENDEE: frozenset({Capability.SUBSCRIBE}),
}


def capabilities(role: Role) -> frozenset[Capability]:
    return ROLE_CAPABILITIES[role]
