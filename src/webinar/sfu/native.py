"""The native fan-out (``_fanout.c``): loading it, and the switch to the pure-Python path.

``pip install`` (editable or wheel) compiles ``_fanout.c`` with the system C compiler
(``hatch_build.py`` calls :func:`webinar.sfu.build.build`); without a compiler it warns and
the SFU forwards in Python. In a source tree, ``python -m webinar.sfu.build`` compiles it in
place. ``WEBINAR_NATIVE_FANOUT=0`` in the environment turns the native path off (the tests
run both paths); :func:`use` switches it at run time. The same switch picks the receive path
for SRTP/SRTCP datagrams (:func:`receive`).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from typing import Any, cast

ENV = "WEBINAR_NATIVE_FANOUT"
# 1: a run of equal-sized packets to one subscriber as one UDP GSO message. Off by default:
# no gain measured on loopback at ~3.7 packets a frame (benchmarks/README.md).
GSO_ENV = "WEBINAR_NATIVE_GSO"

Forward = Callable[[list[Any], tuple[Any, ...]], tuple[Any, ...]]

_module: Any = None
_forward: Forward | None = None
_loaded = False
_chosen = False


def _env_on(name: str, default: str = "1") -> bool:
    return os.environ.get(name, default).strip().lower() not in {"0", "no", "off", "false", ""}


def enabled_by_env() -> bool:
    return _env_on(ENV)


def _load() -> Any:
    """Import and set up the compiled module; ``None`` when absent or unusable."""
    global _module, _loaded
    if _loaded:
        return _module
    _loaded = True
    try:
        module = importlib.import_module("webinar.sfu._fanout")
    except ImportError:
        return None
    from aiortc.rtp import (
        HeaderExtensions,
        RtcpPsfbPacket,
        RtcpReceiverInfo,
        RtcpRrPacket,
        RtcpRtpfbPacket,
        RtpPacket,
    )
    from pylibsrtp._binding import ffi, lib

    from . import _aiortc
    from .consumer import Consumer

    def address(name: str) -> int:
        return int(ffi.cast("uintptr_t", ffi.addressof(lib, name)))

    module.setup(address("srtp_protect"), Consumer, _aiortc.CONNECTED)
    module.setup_receive(
        address("srtp_unprotect"), address("srtp_unprotect_rtcp"), RtpPacket, HeaderExtensions
    )
    module.setup_rtcp(RtcpRrPacket, RtcpReceiverInfo, RtcpPsfbPacket, RtcpRtpfbPacket)
    module.set_gso(_env_on(GSO_ENV, default="0"))
    _module = module
    return module


def use(on: bool) -> bool:
    """Turn the native path on (if it is built) or off; returns whether it is on."""
    global _forward, _chosen
    module = _load() if on else None
    _forward = module.forward if module is not None else None
    _chosen = True
    return _forward is not None


def forward() -> Forward | None:
    """The native ``forward(batch, consumers) -> left to Python``, or ``None`` (not built,
    or off: ``WEBINAR_NATIVE_FANOUT=0``, :func:`use`)."""
    if not _chosen:
        use(enabled_by_env())
    return _forward


def receive() -> Any:
    """The compiled module when the native path is on (the same switch as :func:`forward`),
    for a publisher's datagrams: ``unprotect_rtp(ctx, data, ids)`` (an aiortc ``RtpPacket``,
    the unprotected bytes where aiortc's parse is left to read them, or ``None`` when libsrtp
    refuses the packet), ``unprotect_rtcp(ctx, data)`` and ``parse_rtcp(data)`` (aiortc's RTCP
    packets, or ``None`` where aiortc's parse is left to read them); ``None`` when off (the
    Python path: pylibsrtp's ``Session.unprotect`` and aiortc's ``RtpPacket.parse`` /
    ``RtcpPacket.parse``)."""
    if not _chosen:
        use(enabled_by_env())
    return _module if _forward is not None else None


def module() -> Any:
    """The loaded compiled module (``counters()``, ``rewrite()``), or ``None``."""
    return _load()


class Numbers:
    """A consumer's numbering and send counters: the pure-Python twin of the C struct
    ``_fanout.Numbers`` (what :func:`numbers` returns when the module is not built). The
    native path reads the offsets and writes the counters of the C one directly."""

    __slots__ = ("base_seq", "bytes", "highest_out", "last", "packets", "seq_offset", "ts_offset")

    def __init__(self) -> None:
        self.seq_offset = 0  # output minus input sequence number (extended)
        self.base_seq = 0  # first input sequence number forwarded
        self.highest_out = 0  # highest extended output sequence number sent
        self.ts_offset = 0  # output minus input timestamp
        self.packets = 0  # packets sent
        self.bytes = 0  # payload octets sent
        self.last: Any = None  # the last MediaPacket sent


def numbers() -> Numbers:
    """A new consumer's numbering: the C struct when the module is built (whether the
    native path is on or not: both paths use the same one), else :class:`Numbers`."""
    module = _load()
    if module is None:
        return Numbers()
    return cast(Numbers, module.Numbers())
