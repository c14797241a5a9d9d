"""Roles are capability sets; handlers check capabilities, never role names."""

from __future__ import annotations

import enum


class Role(enum.StrEnum):
    HOST = "host"
    PRESENTER = "presenter"
    ATTENDEE = "attendee"


class Capability(enum.StrEnum):
    PUBLISH_AUDIO = "publish-audio"  # a standing right, in every mode
    PUBLISH_VIDEO = "publish-video"
    PUBLISH_SCREEN = "publish-screen"
    SUBSCRIBE = "subscribe"
    SEE_BACKSTAGE = "see-backstage"  # receives media in presenters-only mode and in the lobby
    ENTER_EARLY = "enter-early"  # any time before the start, and into a locked room
    RAISE_HAND = "raise-hand"
    SWITCH_MODE = "switch-mode"
    START_EVENT = "start-event"
    MANAGE_FLOOR = "manage-floor"  # hands, grants, let next speak, mute
    MODERATE = "moderate"  # remove, ban, lock
    PROMOTE = "promote"  # make an attendee presenter and back
    END_FOR_ALL = "end-for-all"
    RECORD = "record"  # start and stop the room's recording


_PRESENTER = frozenset(
    {
        Capability.PUBLISH_AUDIO,
        Capability.PUBLISH_VIDEO,
        Capability.PUBLISH_SCREEN,
        Capability.SUBSCRIBE,
        Capability.SEE_BACKSTAGE,
        Capability.ENTER_EARLY,
        Capability.SWITCH_MODE,
        Capability.START_EVENT,
        Capability.MANAGE_FLOOR,
        Capability.MODERATE,
        Capability.RECORD,
    }
)

ROLE_CAPABILITIES: dict[Role, frozenset[Capability]] = {
    Role.HOST: _PRESENTER | {Capability.PROMOTE, Capability.END_FOR_ALL},
    Role.PRESENTER: _PRESENTER,
    Role.ATTENDEE: frozenset({Capability.SUBSCRIBE, Capability.RAISE_HAND}),
}


def capabilities(role: Role) -> frozenset[Capability]:
    return ROLE_CAPABILITIES[role]
