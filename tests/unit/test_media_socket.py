"""The media sockets' options: a large receive buffer, and Don't Fragment on IPv4."""

from __future__ import annotations

import socket
import sys

import pytest

from webinar.sfu._aiortc import _IP_MTU_DISCOVER, _IP_PMTUDISC_PROBE, _tune_media_socket

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="Linux socket options")


def test_ipv4_media_socket_sends_with_dont_fragment() -> None:
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx,
    ):
        rx.bind(("127.0.0.1", 0))
        rx.settimeout(2)
        assert tx.getsockopt(socket.IPPROTO_IP, _IP_MTU_DISCOVER) != _IP_PMTUDISC_PROBE
        _tune_media_socket(tx)
        assert tx.getsockopt(socket.IPPROTO_IP, _IP_MTU_DISCOVER) == _IP_PMTUDISC_PROBE
        # the largest datagram WebRTC sends still goes out whole
        tx.sendto(b"\x80" * 1400, rx.getsockname())
        assert len(rx.recv(2048)) == 1400


def test_ipv6_media_socket_is_left_to_ipv6_rules() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    except OSError:
        pytest.skip("no IPv6 sockets")
    with sock:
        _tune_media_socket(sock)  # no IPv4 option on an IPv6 socket: no error


async def test_the_sockets_gathering_binds_send_with_dont_fragment() -> None:
    """Not only the helper: every socket our candidate gathering binds for a peer
    connection sends with DF."""
    from aiortc import RTCPeerConnection

    from webinar.sfu._aiortc import configure_gathering, release_sockets

    pc = RTCPeerConnection()
    configure_gathering(
        pc, host_addresses=["127.0.0.1"], port_min=None, port_max=None, announced_ip=None
    )
    try:
        pc.addTransceiver("video", direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        transports = pc._webinar_sockets._transports  # type: ignore[attr-defined]
        assert transports
        for transport in transports:
            sock = transport.get_extra_info("socket")
            assert sock.getsockopt(socket.IPPROTO_IP, _IP_MTU_DISCOVER) == _IP_PMTUDISC_PROBE
    finally:
        await pc.close()
        release_sockets(pc)
