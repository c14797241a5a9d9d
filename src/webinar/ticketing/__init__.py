"""Ticketing: who may enter an event, and as what.

Signalling asks :meth:`Ticketing.admit` for every entry and hands the resulting
:class:`Grant` to the room; rooms and the SFU know nothing of passwords, tokens or codes.
"""

from .gate import Ticketing
from .grants import AccessType, Grant, Refusal, RefusalCode, SecondDevice

__all__ = ["AccessType", "Grant", "Refusal", "RefusalCode", "SecondDevice", "Ticketing"]
