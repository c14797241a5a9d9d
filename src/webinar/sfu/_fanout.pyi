"""The native fan-out compiled from ``_fanout.c`` (see :mod:`webinar.sfu.native`)."""

from typing import Any

def setup(srtp_protect_address: int, consumer_type: type, connected_state: object, /) -> None: ...
def forward(batch: list[Any], consumers: tuple[Any, ...], /) -> tuple[Any, ...]: ...
def rewrite(consumer: Any, packet: Any, /) -> bytes: ...
def counters() -> dict[str, int]: ...
def set_gso(on: bool, /) -> None: ...

class Numbers:
    seq_offset: int
    base_seq: int
    highest_out: int
    ts_offset: int
    packets: int
    bytes: int
    last: Any
