"""The waitress channel's per-address cap and request deadline, on socket pairs (no
server). The real server under 2,200 trickling requests: tests/hardening/test_slow_clients.py."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
from waitress.adjustments import Adjustments

from movierec.web.connections import MIN_BODY_RATE, client_key, guarded_channel


class FakeServer:
    """What a channel asks of waitress's server: its table of channels and its task queue."""

    def __init__(self) -> None:
        self.active_channels: dict = {}
        self.tasks: list = []

    def add_task(self, channel) -> None:  # type: ignore[no-untyped-def]
        self.tasks.append(channel)


@pytest.fixture
def opened() -> Iterator[list[socket.socket]]:
    """Client ends of the socket pairs a test opens; closed at the end."""
    ends: list[socket.socket] = []
    yield ends
    for end in ends:
        end.close()


def connect(channel_class, server, opened, client=("203.0.113.7", 40000)):  # type: ignore[no-untyped-def]
    ours, theirs = socket.socketpair()
    opened.append(theirs)
    return channel_class(server, ours, client, Adjustments(), map={})


@pytest.mark.parametrize(
    ("addr", "key"),
    [
        (("203.0.113.7", 5123), "203.0.113.7"),
        (("2001:db8:1:2:aaaa::1", 5123, 0, 0), "2001:db8:1:2::/64"),
        (("2001:db8:1:2:bbbb::9", 443, 0, 0), "2001:db8:1:2::/64"),
        (("2001:db8:1:3::9", 443, 0, 0), "2001:db8:1:3::/64"),
        (("::ffff:203.0.113.7", 5123, 0, 0), "203.0.113.7"),
        (("fe80::1%eth0", 5123, 0, 2), "fe80::/64"),
        ("/run/movierec.sock", "/run/movierec.sock"),
    ],
)
def test_a_client_is_its_ipv4_address_or_its_ipv6_64(addr, key):
    assert client_key(addr) == key


def test_connections_beyond_the_cap_are_closed_at_once(opened):
    server = FakeServer()
    channel_class = guarded_channel(per_address=2, read_timeout=10)
    first, second = (connect(channel_class, server, opened) for _ in range(2))
    third = connect(channel_class, server, opened)
    assert first.connected and second.connected
    assert not third.connected and third.socket is None
    assert opened[2].recv(1) == b""  # the client sees the close, nothing was read
    other = connect(channel_class, server, opened, client=("198.51.100.1", 1))
    assert other.connected  # another address has its own count
    first.handle_close()
    assert connect(channel_class, server, opened).connected  # a slot of its own is free again
    assert len(server.active_channels) == 3


def test_no_cap_with_zero(opened):
    channel_class = guarded_channel(per_address=0, read_timeout=10)
    server = FakeServer()
    assert all(connect(channel_class, server, opened).connected for _ in range(20))


def test_a_request_trickled_past_the_deadline_is_dropped(opened, monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    channel = connect(guarded_channel(per_address=5, read_timeout=10), FakeServer(), opened)
    assert channel.readable() and not channel.will_close  # idle: waitress's own timeout
    for byte in b"GET / HTTP/1.1\r\nHost: x\r\n":  # a byte a second, never silent
        channel.received(bytes([byte]))
        assert channel.readable()
        now[0] += 0.4
    now[0] += 10 - 0.4 * 25 + 0.01
    assert not channel.readable() and channel.will_close


def test_a_body_gets_time_for_its_size_and_a_finished_request_none(opened, monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    server = FakeServer()
    channel = connect(guarded_channel(per_address=5, read_timeout=10), server, opened)
    headers = b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 20000\r\n\r\n"
    channel.received(headers + b"a" * 5000)
    now[0] += 10 + (len(headers) + 5000) / MIN_BODY_RATE - 0.1
    assert channel.readable()  # 500 bytes a second after the first 10 s
    now[0] += 0.2
    assert not channel.readable() and channel.will_close

    channel = connect(guarded_channel(per_address=5, read_timeout=10), server, opened)
    channel.received(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /next HTTP/1.1\r\n")
    assert server.tasks == [channel]
    now[0] += 60  # the app answers the first request; the one sent behind it waits
    assert channel.requests and not channel.readable() and not channel.will_close
    channel.requests.clear()  # answered: the second request's clock starts now
    assert channel.readable()
    now[0] += 10.01
    assert not channel.readable() and channel.will_close
