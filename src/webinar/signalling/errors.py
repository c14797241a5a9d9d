"""Wire error codes for every domain refusal, from one table.

The room, interaction, SFU and ticketing layers refuse with their own enums
(``RoomErrorCode``, ``InteractionErrorCode``, ``SfuErrorCode``, ``RefusalCode``). A domain
code whose text is a wire code (:class:`webinar.signalling.schema.ErrorCode`) is sent as that
code; :data:`RENAMED` lists the few that are sent under another name.
``tests/unit/test_schema.py`` checks that every member of every domain enum has a wire code,
so a new domain code cannot reach a client unmapped.
"""

from __future__ import annotations

import enum

from webinar.rooms.interaction_errors import InteractionErrorCode
from webinar.rooms.state import RoomErrorCode
from webinar.sfu import SfuErrorCode
from webinar.ticketing.grants import RefusalCode

from .schema import ErrorCode

#: Domain codes the wire names differently (their text is no wire code).
RENAMED: dict[enum.StrEnum, ErrorCode] = {
    RoomErrorCode.DUPLICATE: ErrorCode.INVALID_REQUEST,
    RoomErrorCode.INVALID: ErrorCode.INVALID_REQUEST,
    SfuErrorCode.CLOSED: ErrorCode.NEGOTIATION_FAILED,
}

DOMAIN_CODES: tuple[type[enum.StrEnum], ...] = (
    RoomErrorCode,
    InteractionErrorCode,
    SfuErrorCode,
    RefusalCode,
)


def wire_code(code: enum.StrEnum) -> ErrorCode:
    """The code a client sees for a domain refusal."""
    renamed = RENAMED.get(code)
    return renamed if renamed is not None else ErrorCode(code.value)
