"""What makes a room command give the same result on every worker that applies it.

A room's state machines are pure but for two inputs: the time a command runs at and the
random IDs it makes (chat messages, questions, polls, calls-to-action, resume tokens). With
several workers, every worker applies the room's commands from one ordered log
(:mod:`webinar.signalling.replication`); the worker that runs a command first records its
time and a random seed in the log entry, and every worker applies the entry inside
:func:`fixed`, so the same entry makes the same IDs and uses the same time everywhere.
Outside :func:`fixed` (one worker; or a worker's own timers) IDs come from :mod:`secrets`.
"""

from __future__ import annotations

import base64
import contextlib
import random
import secrets
from collections.abc import Callable, Iterator
from contextvars import ContextVar

_NOW: ContextVar[float | None] = ContextVar("webinar_room_now", default=None)
_RANDOM: ContextVar[random.Random | None] = ContextVar("webinar_room_random", default=None)


def token_hex(nbytes: int) -> str:
    rng = _RANDOM.get()
    return secrets.token_hex(nbytes) if rng is None else rng.randbytes(nbytes).hex()


def token_urlsafe(nbytes: int) -> str:
    rng = _RANDOM.get()
    if rng is None:
        return secrets.token_urlsafe(nbytes)
    return base64.urlsafe_b64encode(rng.randbytes(nbytes)).rstrip(b"=").decode("ascii")


def now(clock: Callable[[], float]) -> float:
    """The command's time inside :func:`fixed`, else ``clock()``."""
    fixed_now = _NOW.get()
    return clock() if fixed_now is None else fixed_now


def new_seed() -> int:
    return secrets.randbits(63)


@contextlib.contextmanager
def fixed(at: float, seed: int) -> Iterator[None]:
    """Run one command at time ``at`` with IDs drawn from ``seed``."""
    now_token = _NOW.set(at)
    random_token = _RANDOM.set(random.Random(seed))
    try:
        yield
    finally:
        _RANDOM.reset(random_token)
        _NOW.reset(now_token)
