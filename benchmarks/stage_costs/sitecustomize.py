"""Per-stage CPU of a running SFU server, timed inside it (``benchmarks/stage_costs``).

Put this folder on the server's ``PYTHONPATH`` (after ``src``) and set
``STAGE_COSTS_OUT=<file>``: in a process started as ``... webinar serve ...`` it wraps the
media path's stage functions with ``time.thread_time_ns()`` and appends one JSON line every
2 s to the file: the wall time, the main thread's CPU clock, ``{stage: [calls, ns]}`` totals
and the native fan-out's ``counters()``. ``fanout.py`` passes both variables on (it drops
only ``WEBINAR_*``). Each wrapper adds ~1-1.5 µs to what it wraps, and stages nest (a
parent's time includes its children's). ``summarize.py`` turns two lines into rates.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

_totals: dict[str, list[int]] = {}


def _wrap(
    owner: Any, name: str, key: str, split: Callable[[tuple[Any, ...]], str] | None = None
) -> None:
    raw = owner.__dict__[name]
    kind = type(raw) if isinstance(raw, staticmethod | classmethod) else None
    func = raw.__func__ if kind is not None else raw
    clock = time.thread_time_ns
    totals = _totals

    def timed(*args: Any, **kwargs: Any) -> Any:
        k = key if split is None else key + split(args)
        t0 = clock()
        try:
            return func(*args, **kwargs)
        finally:
            entry = totals.get(k)
            if entry is None:
                entry = totals[k] = [0, 0]
            entry[0] += 1
            entry[1] += clock() - t0

    setattr(owner, name, kind(timed) if kind is not None else timed)


def _install() -> None:
    import aioice.ice
    import aiortc.rate
    import aiortc.rtp
    import pylibsrtp

    from webinar.sfu import _aiortc, consumer, ingest, producer, tiers, transport

    _wrap(
        _aiortc.DirectReceive,
        "_handle",
        "DirectReceive._handle",
        lambda a: ".rtcp" if a[-2] else ".rtp",
    )
    _wrap(producer.Producer, "flush", "Producer.flush")
    _wrap(producer.Producer, "on_rtp", "Producer.on_rtp")
    _wrap(ingest.Ingest, "receive", "Ingest.receive")
    _wrap(_aiortc.IngressTap, "account", "IngressTap.account")
    _wrap(aiortc.rate.RemoteBitrateEstimator, "add", "RemoteBitrateEstimator.add")
    _wrap(aiortc.rtp.RtpPacket, "parse", "RtpPacket.parse")
    _wrap(aiortc.rtp.RtcpPacket, "parse", "RtcpPacket.parse")
    _wrap(pylibsrtp.Session, "unprotect", "Session.unprotect")
    _wrap(pylibsrtp.Session, "unprotect_rtcp", "Session.unprotect_rtcp")
    _wrap(transport.PublishTransport, "_route", "PublishTransport._route")
    _wrap(transport.SubscribeTransport, "_on_rtcp", "SubscribeTransport._on_rtcp")
    _wrap(transport.SubscribeTransport, "housekeeping", "SubscribeTransport.housekeeping")
    _wrap(consumer.Consumer, "on_report", "Consumer.on_report")
    _wrap(tiers.SubscriberTiers, "tick", "SubscriberTiers.tick")
    _wrap(aioice.ice.StunProtocol, "datagram_received", "stun in")


def _dump(path: str) -> None:
    main = threading.main_thread()
    clock = time.pthread_getcpuclockid(main.ident or 0)
    while True:
        time.sleep(2.0)
        native: dict[str, int] = {}
        module = sys.modules.get("webinar.sfu.native")
        if module is not None:
            loaded = module.module()
            if loaded is not None:
                native = loaded.counters()
        line = {
            "t": time.time(),
            "main_cpu_ns": time.clock_gettime_ns(clock),
            "stages": {k: list(v) for k, v in list(_totals.items())},
            "native": native,
        }
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps(line) + "\n")


_OUT = os.environ.get("STAGE_COSTS_OUT")
if _OUT and "serve" in sys.argv:
    _install()
    threading.Thread(target=_dump, args=(_OUT,), name="stage-costs", daemon=True).start()
