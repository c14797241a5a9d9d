"""The live stream's sink (webinar.broadcast.rtmp) without a network: its bounded queue."""

from __future__ import annotations


def test_a_backlog_is_dropped_and_sending_resumes_at_a_keyframe() -> None:
    """The sink's queue (webinar.broadcast.rtmp): with nothing sending, it never grows past
    its bound, and what is left starts at a video keyframe."""
    import fractions

    import av

    from webinar.broadcast.encoder import StreamFormat
    from webinar.broadcast.rtmp import RtmpSink

    sink = RtmpSink("rtmp://127.0.0.1:9/live", "k")
    fmt = StreamFormat(
        320, 180, 30, "h264", fractions.Fraction(1, 90000), "aac", 48000, "stereo",
        fractions.Fraction(1, 48000),
    )  # fmt: skip
    sink._format = fmt  # as open() would, without starting the sending thread
    sink._max_queue = 50
    for n in range(200):
        keyframe = n % 30 == 0
        packet = av.Packet(b"\0" * 10)
        packet.pts = packet.dts = n * 3000
        packet.is_keyframe = keyframe
        sink.write(packet, "video")
        audio = av.Packet(b"\1" * 5)
        audio.pts = audio.dts = n * 1600
        sink.write(audio, "audio")
    queued = list(sink._queue)
    assert len(queued) <= 50
    assert queued[0].kind == "video" and queued[0].keyframe
    assert sink.status().dropped_packets == 400 - len(queued)
