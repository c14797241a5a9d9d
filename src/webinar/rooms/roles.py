"""Roles are capability sets; handlers check capabilities, never role names."""

from __future__ import annotations

import enum

from webinar.i18n import N_, gettext


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
    # Interaction (chat, Q&A, polls and tests, call-to-action).
    CHAT = "chat"  # post in chat while it is on
    MODERATE_CHAT = "moderate-chat"  # chat on/off, slow mode, delete, mute; exempt from both
    ASK_QUESTION = "ask-question"  # ask, mark one's own message, upvote
    MANAGE_QA = "manage-qa"  # mark anyone's message, answer/dismiss, publish, open/close Q&A
    ANSWER_POLL = "answer-poll"
    RUN_POLLS = "run-polls"  # prepare, launch, close, show results, see live results
    RUN_CTA = "run-cta"  # show and close a call-to-action
    REACT = "react"  # send emoji reactions (webinar.rooms.reactions)
    MODERATE_REACTIONS = "moderate-reactions"  # reactions on/off for attendees; exempt from it
    MANAGE_CAPTIONS = "manage-captions"  # captions on/off, send them, choose captioners
    RECORD = "record"  # start and stop the room's recording
    STREAM_OUT = "stream-out"  # start and stop the live stream out (RTMP to YouTube etc.)
    # Content on stage: presentation, shared video, files offered, whiteboard, layout.
    SHOW_CONTENT = "show-content"


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
        Capability.CHAT,
        Capability.MODERATE_CHAT,
        Capability.MANAGE_QA,
        Capability.RUN_POLLS,
        Capability.RUN_CTA,
        Capability.REACT,
        Capability.MODERATE_REACTIONS,
        Capability.MANAGE_CAPTIONS,
        Capability.RECORD,
        Capability.STREAM_OUT,
        Capability.SHOW_CONTENT,
    }
)

ROLE_CAPABILITIES: dict[Role, frozenset[Capability]] = {
    Role.HOST: _PRESENTER | {Capability.PROMOTE, Capability.END_FOR_ALL},
    Role.PRESENTER: _PRESENTER,
    Role.ATTENDEE: frozenset(
        {
            Capability.SUBSCRIBE,
            Capability.RAISE_HAND,
            Capability.CHAT,
            Capability.ASK_QUESTION,
            Capability.ANSWER_POLL,
            Capability.REACT,
        }
    ),
}


def capabilities(role: Role) -> frozenset[Capability]:
    return ROLE_CAPABILITIES[role]


#: "<a role> may not <do something>": one sentence per role (the article, and in other
#: languages the form of the noun, depends on it).
_MAY_NOT: dict[Role, str] = {
    # TRANSLATORS: %(action)s is what is refused, e.g. "change the mode", "chat".
    Role.HOST: N_("a host may not %(action)s"),
    # TRANSLATORS: %(action)s is what is refused, e.g. "change the mode", "chat".
    Role.PRESENTER: N_("a presenter may not %(action)s"),
    # TRANSLATORS: %(action)s is what is refused, e.g. "change the mode", "chat".
    Role.ATTENDEE: N_("an attendee may not %(action)s"),
}


#: How a role is named where people read it (the dashboard's attendee table).
_LABELS: dict[str, str] = {
    Role.HOST: N_("host"),
    Role.PRESENTER: N_("presenter"),
    Role.ATTENDEE: N_("attendee"),
}


def role_label(role: str) -> str:
    """The name of ``role`` in the language in effect (anything else as it is)."""
    label = _LABELS.get(role)
    return gettext(label) if label is not None else role


def may_not(role: Role, action: str) -> str:
    """The refusal of ``action`` to ``role`` in the language in effect: ``action`` is an
    ``N_()``-marked phrase ("change the mode"), translated here; translate such phrases as
    what follows "may not" (an infinitive in Russian and Czech)."""
    return gettext(_MAY_NOT[role]) % {"action": gettext(action)}
