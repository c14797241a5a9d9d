"""Why a participant's session ends: one name for each reason, used by the room, ticketing and
signalling alike.

The value is what the client reads in ``bye {reason}`` (docs/protocol.md), what the WebSocket
close carries, and the ``leave_reason`` attendance records. ``web/static/js/protocol.js`` mirrors
it once as ``ByeReason``; ``tests/unit/test_reasons.py`` keeps the two equal.
"""

from __future__ import annotations

import enum


class ByeReason(enum.StrEnum):
    LEFT = "left"  # the participant left
    REMOVED = "removed"  # a presenter removed them
    ENDED = "ended"  # the event was ended for everyone
    REPLACED = "replaced"  # the same participant resumed on another connection
    TAKEN_OVER = "taken-over"  # another device entered with the same single-use credential
    WINDOW_ENDED = "window-ended"  # the ticket's viewing window is over
    REVOKED = "revoked"  # the organiser revoked the invitation or code
    CANCELLED = "cancelled"  # the registration or the event was cancelled
    SLOW_CLIENT = "slow-client"  # the client did not read what it was sent in time
    PROTOCOL_VIOLATION = "protocol-violation"  # the client broke the protocol
    SHUTDOWN = "shutdown"  # the server is shutting down: come back in a moment
    NO_HELLO = "no-hello"  # the socket said no hello in time (signalling.hello_timeout_seconds)
    # No bye is sent for these two: the connection is already gone.
    DISCONNECTED = "disconnected"  # the socket closed without a leave
    SERVER_RESTART = "server-restart"  # sessions left open when the server stopped


#: Reasons after which a client should not come back by itself.
FINAL: frozenset[ByeReason] = frozenset(
    {
        ByeReason.LEFT,
        ByeReason.REMOVED,
        ByeReason.ENDED,
        ByeReason.REPLACED,
        ByeReason.PROTOCOL_VIOLATION,
        ByeReason.TAKEN_OVER,
        ByeReason.WINDOW_ENDED,
        ByeReason.REVOKED,
        ByeReason.CANCELLED,
    }
)
