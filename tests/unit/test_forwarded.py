"""X-Forwarded-For parsing: who the client is behind a chain of proxies."""

from __future__ import annotations

from webinar.http.forwarded import client_address, forwarded_proto, parse_networks

TRUSTED = parse_networks(["10.0.0.0/8", "192.0.2.1", "::1"])


def test_untrusted_peer_is_not_believed() -> None:
    assert client_address("198.51.100.7", ["203.0.113.1"], TRUSTED) is None


def test_rightmost_untrusted_hop_is_the_client() -> None:
    assert client_address("10.1.1.1", ["203.0.113.1"], TRUSTED) == "203.0.113.1"
    # Two proxies of ours, then the client; anything the client wrote before is ignored.
    chain = ["6.6.6.6, 203.0.113.1, 10.2.2.2"]
    assert client_address("10.1.1.1", chain, TRUSTED) == "203.0.113.1"
    # Several headers count as one list.
    assert client_address("192.0.2.1", ["6.6.6.6", "203.0.113.4"], TRUSTED) == "203.0.113.4"


def test_ports_brackets_and_mapped_addresses() -> None:
    assert client_address("::1", ["[2001:db8::5]:4711"], TRUSTED) == "2001:db8::5"
    assert client_address("::ffff:10.0.0.1", ["203.0.113.2:5000"], TRUSTED) == "203.0.113.2"


def test_garbage_stops_the_walk() -> None:
    assert client_address("10.0.0.1", ["unknown"], TRUSTED) is None
    assert client_address("10.0.0.1", ["203.0.113.1, junk, 10.0.0.2"], TRUSTED) == "10.0.0.2"
    assert client_address("10.0.0.1", [], TRUSTED) is None


def test_all_hops_trusted_gives_the_leftmost() -> None:
    assert client_address("10.0.0.1", ["10.0.0.3, 10.0.0.2"], TRUSTED) == "10.0.0.3"


def test_forwarded_proto() -> None:
    assert forwarded_proto(["https"]) == "https"
    assert forwarded_proto(["HTTPS, http"]) == "https"
    assert forwarded_proto(["gopher"]) is None
    assert forwarded_proto([]) is None
