"""waitress connections that a trickling client cannot hold: a cap per client address and
a deadline for receiving a request.

Why: waitress's ``channel_timeout`` (15 s) restarts at every byte received, so a request
sent one byte a second is never dropped, and each costs one of ``connection_limit``
slots. From one address, 2,200 such requests filled both processes' 1,000 slots and a
visitor from another address waited 39 s, until the attacker let go (issue 19). So each
process now

- keeps at most ``MOVIEREC_CONNECTIONS_PER_ADDRESS`` connections open per client address
  (an IPv6 address counts with its whole /64, which one subscriber usually has) and
  closes any beyond that as soon as it is accepted, before reading from it;
- drops a request whose headers are not all in ``MOVIEREC_REQUEST_READ_TIMEOUT`` seconds
  after its first byte, or whose body comes slower than ``MIN_BODY_RATE`` after that (a
  request of ``b`` bytes gets ``timeout + b / MIN_BODY_RATE`` seconds in all, as Apache's
  ``mod_reqtimeout`` allows).

Both are checked in waitress's I/O thread, which asks every connection whether to read
from it at least once a second (``readable()``), so a late request is closed within a
second of its deadline. The time the app spends answering never counts.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from typing import Any

from waitress.channel import HTTPChannel

log = logging.getLogger(__name__)

#: bytes a second a request body must average once the read timeout has passed
MIN_BODY_RATE = 500
REPORT_EVERY = 60.0  # seconds: at most one log line per kind of refusal and process


def client_key(addr: Any) -> str:
    """What the per-address cap counts: the IPv4 address (also when IPv4-mapped), or the
    /64 network of an IPv6 address; a Unix socket's name as it is."""
    host = str(addr[0] if isinstance(addr, tuple) and addr else addr)
    if ":" not in host:
        return host
    try:
        ip = ipaddress.IPv6Address(host.split("%", 1)[0])
    except ValueError:
        return host
    if ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ipaddress.IPv6Network((ip, 64), strict=False))


class _Tally:
    """Counts refusals of one kind; logs them at most once a minute, so an attack costs a
    line a minute, not a line a connection."""

    def __init__(self, message: str) -> None:
        self.message = message
        self.count = 0
        self.next_at = 0.0

    def add(self, detail: str) -> None:
        self.count += 1
        now = time.monotonic()
        if now >= self.next_at:
            log.warning(self.message, self.count, detail)
            self.count, self.next_at = 0, now + REPORT_EVERY


def guarded_channel(per_address: int, read_timeout: float) -> type[HTTPChannel]:
    """A waitress channel class with its own count of open connections per client
    address (one per process: call this once per server). ``per_address``: most open
    connections per client (0: no cap); ``read_timeout``: seconds from a request's first
    byte until its headers must be complete."""
    open_by_client: dict[str, int] = {}
    lock = threading.Lock()  # channels open in the I/O thread; be safe if one closes elsewhere
    refused = _Tally(
        "refused %d connection(s) since the last such line: client already holding "
        f"{per_address} (MOVIEREC_CONNECTIONS_PER_ADDRESS), latest %s"
    )
    dropped = _Tally(
        "dropped %d request(s) since the last such line: not received within "
        f"{read_timeout:g} s (MOVIEREC_REQUEST_READ_TIMEOUT), latest from %s"
    )

    class GuardedChannel(HTTPChannel):  # type: ignore[misc]  # waitress has no type information
        client: str | None = None  # counted against this key while open
        read_started: float | None = None  # monotonic time of the unfinished request's first byte
        read_bytes = 0  # bytes of the unfinished request received so far

        def __init__(self, server: Any, sock: Any, addr: Any, adj: Any, map: Any = None) -> None:
            super().__init__(server, sock, addr, adj, map)
            if per_address <= 0:
                return
            client = client_key(addr)
            with lock:
                count = open_by_client.get(client, 0) + 1
                open_by_client[client] = count
            self.client = client
            if count > per_address:
                refused.add(client)
                self.handle_close()

        def del_channel(self, map: Any = None) -> None:
            super().del_channel(map)
            client, self.client = self.client, None
            if client is not None:
                with lock:
                    left = open_by_client[client] - 1
                    if left:
                        open_by_client[client] = left
                    else:
                        del open_by_client[client]

        def received(self, data: bytes) -> bool:
            unfinished = self.request
            result: bool = super().received(data)
            if self.request is None:  # nothing left half-received
                self.read_started = None
            elif self.request is not unfinished:  # a request began in this data
                self.read_started, self.read_bytes = time.monotonic(), len(data)
            else:
                self.read_bytes += len(data)
            return result

        def readable(self) -> bool:
            if self.read_started is not None:
                if self.requests:  # the app is answering; a request sent behind it waits
                    self.read_started = time.monotonic()
                elif self._late():
                    dropped.add(client_key(self.addr))
                    self.read_started = None
                    self.will_close = True  # closed at the loop's next turn, as on a timeout
            readable: bool = super().readable()
            return readable

        def _late(self) -> bool:
            started = self.read_started
            if started is None:  # not reading a request: never late
                return False
            allowed = read_timeout
            if self.request is not None and self.request.headers_finished:
                allowed += self.read_bytes / MIN_BODY_RATE
            return time.monotonic() - started > allowed

    return GuardedChannel
