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
