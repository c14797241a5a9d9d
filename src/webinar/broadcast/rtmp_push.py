"""The child process that talks RTMP for :class:`webinar.broadcast.rtmp.RtmpSink`:
``python -m webinar.broadcast.rtmp_push``.

Why a process: PyAV opens an output URL (FFmpeg's TCP connect, TLS and RTMP handshakes) while
holding Python's GIL and without FFmpeg's timeouts, so an ingest that is slow or silent would
freeze every thread of the server, its event loop included. Here it can only freeze this
process, which the sink kills when it stalls.

Protocol: stdin carries one line with the target URL (the stream key in it: never on the
command line, which other users of the machine can read), then an FLV stream; the child
remuxes it, packet by packet, to the target and writes ``connected`` on stdout once the first
packet went out. Errors go to stderr; the exit status is 0 when the input ended cleanly.
"""

from __future__ import annotations

import sys

import av


def main() -> int:
    stdin = sys.stdin.buffer
    target = stdin.readline().decode("utf-8").strip()
    if not target:
        print("no target", file=sys.stderr)
        return 2
    try:
        source = av.open(stdin, "r", format="flv")
        out = av.open(
            target, "w", format="flv", container_options={"flvflags": "no_duration_filesize"}
        )
        streams = {s.index: out.add_stream_from_template(s) for s in source.streams}
        told = False
        for packet in source.demux():
            if packet.dts is None or packet.stream.index not in streams:
                continue
            packet.stream = streams[packet.stream.index]
            out.mux(packet)
            if not told:
                sys.stdout.write("connected\n")
                sys.stdout.flush()
                told = True
        out.close()
    except (av.FFmpegError, OSError) as exc:
        print(str(exc).replace(target, "[target]"), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
