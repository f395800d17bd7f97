"""Load on the real server over loopback: req/s and p50/p99 latency at 1-64 clients.

Starts ``movierec serve`` on a free loopback port (or targets ``--url``, which must be
loopback) and, for each endpoint and each number of concurrent clients, sends a fixed
number of requests (stopping early at a duration cap), each client on its own
keep-alive HTTP/1.1 connection:

- ``GET /``: the onboarding form;
- ``POST /api/v1/recommendations``: 15 ratings of popular movies (from
  ``/api/v1/onboarding``), a different set of stars per request;
- ``GET /api/v1/movies/<id>`` (``cheap``): one movie's JSON, the ceiling of the framework and
  middleware around every route; each route's req/s is printed against it;
- ``POST /recommendations``: the form, with the CSRF token and the session cookie
  each client got from its own ``GET /`` first, and the ``GET`` of the picks page its
  303 redirects to (Post/Redirect/Get): one submission as a browser makes it, timed whole.

Prints req/s, p50/p99 latency, errors (any answer but 200, or a broken connection),
the server's CPU per request, the client's own CPU (it shares the machine) and the
server's memory (RSS and PSS summed over all its processes) before and after.

    python bench/load.py [--workers 2] [--clients 1,8,32,64] [--requests 1000]
    python bench/load.py --url http://127.0.0.1:5000 --server-pid 1234
    python bench/load.py --home DIR --dataset synth-25m --no-train --clients 1,8

A started server's time to answer ``GET /`` (start-up: load, warm) and its first
process's peak RSS are printed too: with ``--no-train`` on a big saved model that is
the "ready in" figure.

The started server gets ``MOVIEREC_RATE_LIMIT=1000000/minute`` and
``MOVIEREC_NEW_VISITORS_PER_HOUR=1000000``: every request and every form visitor comes
from one address, which the default limits would throttle. TMDB keys are removed from
its environment, so no request leaves the machine.

The client is hand-written on asyncio streams rather than a library (aiohttp, httpx):
it must cost little CPU, because it shares the cores with the server it measures, and
it only needs Content-Length / chunked HTTP/1.1 responses from one known server.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import resource
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, default_source, percentiles, stopwatch, temp_home  # noqa: E402

LOOPBACK = ("127.0.0.1", "localhost", "::1")
BENCH_RATE_LIMIT = "1000000/minute"
BENCH_NEW_VISITORS = "1000000"  # an hour, from the one address every client has
ENDPOINTS = ("page", "api", "form", "cheap")
#: the ``cheap`` endpoint: one movie's JSON, almost no app work, so its req/s is the
#: ceiling of the framework, middleware and server around every route (set in ``bench``)
CHEAP_PATH = ["/api/v1/movies/1"]
STARS = [i / 2 for i in range(1, 11)]
PAYLOADS = 64  # distinct rating sets cycled through by the API clients
READY_TIMEOUT = 600.0  # seconds: the first start fetches data and trains the model


# -- a small keep-alive HTTP/1.1 client ---------------------------------------------
@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


class Connection:
    """One keep-alive connection; reconnects when the server closes it."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> Answer:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        if body or method == "POST":
            lines.append(f"Content-Length: {len(body)}")
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        assert self.reader is not None
        head = await self.reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        answer_headers: dict[str, str] = {}
        for line in header_lines:
            if ":" in line:
                name, value = line.split(":", 1)
                name = name.strip().lower()
                value = value.strip()
                if name == "set-cookie" and name in answer_headers:
                    value = answer_headers[name] + "\n" + value
                answer_headers[name] = value
        if "content-length" in answer_headers:
            content = await self.reader.readexactly(int(answer_headers["content-length"]))
        elif answer_headers.get("transfer-encoding", "").lower() == "chunked":
            content = await self._chunked()
        else:
            content = await self.reader.read()
            answer_headers["connection"] = "close"
        if answer_headers.get("connection", "").lower() == "close":
            await self.close()
        return Answer(status, answer_headers, content)

    async def _chunked(self) -> bytes:
        assert self.reader is not None
        parts = []
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await self.reader.readuntil(b"\r\n")
                return b"".join(parts)
            parts.append(await self.reader.readexactly(size))
            await self.reader.readexactly(2)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None


# -- what each endpoint sends ------------------------------------------------------
class Visitor:
    """A form visitor: the session cookie and CSRF token from its own ``GET /``."""

    def __init__(self) -> None:
        self.cookie = ""
        self.token = ""
        self.movie_ids: list[int] = []

    def remember(self, answer: Answer) -> None:
        for line in answer.headers.get("set-cookie", "").split("\n"):
            if line.startswith("movierec="):
                self.cookie = line.split(";", 1)[0]


async def open_visitor(conn: Connection) -> Visitor:
    visitor = Visitor()
    answer = await conn.request("GET", "/")
    if answer.status != 200:
        raise RuntimeError(f"GET / answered {answer.status}")
    visitor.remember(answer)
    page = answer.body.decode()
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    if not found or not visitor.cookie:
        raise RuntimeError("GET / gave no CSRF token or session cookie")
    visitor.token = found.group(1)
    visitor.movie_ids = sorted({int(m) for m in re.findall(r'name="rating-(\d+)"', page)})
    return visitor


def api_payloads(movie_ids: list[int], seed: int = 0) -> list[bytes]:
    rng = random.Random(seed)
    return [
        json.dumps(
            {"ratings": {str(m): rng.choice(STARS) for m in movie_ids}, "year": "any", "n": 5}
        ).encode()
        for _ in range(PAYLOADS)
    ]


async def one_request(
    endpoint: str, conn: Connection, visitor: Visitor | None, payload: bytes, rng: random.Random
) -> Answer:
    if endpoint == "page":
        return await conn.request("GET", "/")
    if endpoint == "cheap":
        return await conn.request("GET", CHEAP_PATH[0], headers={"Accept": "application/json"})
    if endpoint == "api":
        return await conn.request(
            "POST",
            "/api/v1/recommendations",
            payload,
            {"Content-Type": "application/json", "Accept": "application/json"},
        )
    assert visitor is not None
    fields = {"csrf_token": visitor.token, "year": rng.choice(["any", "old", "new"])}
    fields.update({f"rating-{m}": str(rng.choice(STARS)) for m in visitor.movie_ids})
    answer = await conn.request(
        "POST",
        "/recommendations",
        urlencode(fields).encode(),
        {"Content-Type": "application/x-www-form-urlencoded", "Cookie": visitor.cookie},
    )
    visitor.remember(answer)
    location = answer.headers.get("location")
    if answer.status != 303 or not location:
        return answer  # counted as an error by the caller
    # Post/Redirect/Get: the visitor's browser follows the 303 to the picks page
    picks = await conn.request("GET", location, headers={"Cookie": visitor.cookie})
    visitor.remember(picks)
    return picks


# -- one level: N clients, a fixed number of requests, a time cap ------------------------
@dataclass
class Level:
    endpoint: str
    clients: int
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    seconds: float = 0.0
    client_cpu_s: float = 0.0
    server_cpu_s: float | None = None

    @property
    def done(self) -> int:
        return len(self.latencies_ms) + self.errors

    def rate(self) -> float:
        """Requests answered a second."""
        return self.done / self.seconds if self.seconds else 0.0

    def row(self) -> str:
        p50, p99 = percentiles(self.latencies_ms)  # NaN without any
        rate = self.rate()
        server = (
            f"{1000 * self.server_cpu_s / self.done:6.2f}"
            if self.server_cpu_s is not None and self.done
            else "     -"
        )
        client = 100 * self.client_cpu_s / self.seconds if self.seconds else 0.0
        return (
            f"{self.endpoint:<5} {self.clients:>7} {self.done:>8} {self.errors:>6} "
            f"{rate:>7.0f} {p50:>7.1f} {p99:>7.1f} "
            f"{server}    {1000 * self.client_cpu_s / max(self.done, 1):6.2f} {client:>6.0f}"
        )


HEADER = (
    "where clients requests errors   req/s  p50 ms  p99 ms  srv CPU ms/req  "
    "cli CPU ms/req  cli %core"
)


async def run_level(
    host: str,
    port: int,
    level: Level,
    requests: int,
    max_seconds: float,
    payloads: list[bytes],
) -> None:
    conns = [Connection(host, port) for _ in range(level.clients)]
    visitors: list[Visitor | None] = [None] * level.clients
    if level.endpoint == "form":  # untimed: each client's session and token
        visitors = list(await asyncio.gather(*(open_visitor(c) for c in conns)))
    remaining = requests
    deadline = time.perf_counter() + max_seconds

    async def client(index: int) -> None:
        nonlocal remaining
        rng = random.Random(index)
        conn = conns[index]
        sent = 0
        while remaining > 0 and time.perf_counter() < deadline:
            remaining -= 1
            payload = payloads[(index * 7 + sent) % len(payloads)]
            sent += 1
            try:
                with stopwatch() as watch:
                    answer = await one_request(level.endpoint, conn, visitors[index], payload, rng)
            except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
                level.errors += 1
                await conn.close()
                continue
            level.statuses[answer.status] = level.statuses.get(answer.status, 0) + 1
            if answer.status == 200:
                level.latencies_ms.append(watch.wall_ms)
            else:
                level.errors += 1

    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    with stopwatch() as watch:
        await asyncio.gather(*(client(i) for i in range(level.clients)))
    level.seconds = watch.wall
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    level.client_cpu_s = (cpu_after.ru_utime - cpu_before.ru_utime) + (
        cpu_after.ru_stime - cpu_before.ru_stime
    )
    for conn in conns:
        await conn.close()


# -- the server's processes: CPU and memory from /proc ------------------------------------
def server_pids(root: int) -> list[int]:
    """``root`` and its descendants (the pre-fork workers)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = [root], [root]
    while frontier:
        frontier = [pid for pid, ppid in parents.items() if ppid in frontier]
        found += frontier
    return found


def cpu_seconds(pids: list[int]) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def memory_mb(pids: list[int]) -> tuple[float, float]:
    """(RSS, PSS) in MB summed over ``pids``; PSS shares copy-on-write pages fairly."""
    rss = pss = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss += int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1])
        except OSError:
            continue
    return rss / 1024, pss / 1024


def peak_rss_mb(pid: int) -> float:
    """Peak RSS (``VmHWM``) of process ``pid`` so far, MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# -- starting and stopping the server --------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(home: Path, port: int, args: argparse.Namespace, log: Path) -> subprocess.Popen:
    """``movierec serve`` on 127.0.0.1:``port`` with ``args``' workers, model, data set
    and ``--no-train``."""
    env = {k: v for k, v in os.environ.items() if k not in ("TMDB_API_KEY", "TMDB_READ_TOKEN")}
    env.update(
        MOVIEREC_HOME=str(home),
        MOVIEREC_RATE_LIMIT=BENCH_RATE_LIMIT,
        MOVIEREC_NEW_VISITORS_PER_HOUR=BENCH_NEW_VISITORS,
    )
    env.pop("DATABASE_URL", None)
    source = default_source()
    if source:
        env["MOVIEREC_DATA_SOURCE"] = source
    if args.workers is not None:
        env["MOVIEREC_WORKERS"] = str(args.workers)
    if args.model:
        env["MOVIEREC_MODEL"] = args.model
    if args.dataset:
        env["MOVIEREC_DATASET"] = args.dataset
    command = [sys.executable, "-m", "movierec.cli", "serve", "--port", str(port)]
    command += ["--no-train"] if args.no_train else []
    with log.open("ab") as out:
        return subprocess.Popen(command, env=env, stdout=out, stderr=out, cwd=REPO)


async def wait_ready(host: str, port: int, server: subprocess.Popen | None) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if server is not None and server.poll() is not None:
            raise RuntimeError(f"the server exited with code {server.returncode}")
        conn = Connection(host, port)
        try:
            if (await conn.request("GET", "/")).status == 200:
                return
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            await conn.close()
        await asyncio.sleep(0.5)
    raise RuntimeError(f"the server did not answer within {READY_TIMEOUT:.0f} s")


def stop_server(server: subprocess.Popen) -> None:
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def print_ceiling_ratios(levels: list[Level]) -> None:
    """Each route's req/s against the cheap route's at the same clients, same run: how
    close a route comes to the framework's own ceiling."""
    cheap = {level.clients: level for level in levels if level.endpoint == "cheap"}
    for level in levels:
        ceiling = cheap.get(level.clients)
        if level.endpoint == "cheap" or ceiling is None or not ceiling.rate():
            continue
        print(
            f"ceiling: {level.endpoint} at {level.clients} clients: "
            f"{level.rate() / ceiling.rate():.2f}x the cheap route's req/s"
        )


# -- main -------------------------------------------------------------------------------
async def bench(args: argparse.Namespace, host: str, port: int, root_pid: int | None) -> int:
    conn = Connection(host, port)
    onboarding = await conn.request("GET", "/api/v1/onboarding")
    await conn.close()
    if onboarding.status != 200:
        raise RuntimeError(f"GET /api/v1/onboarding answered {onboarding.status}")
    movie_ids = [m["movieId"] for m in json.loads(onboarding.body)["movies"]]
    payloads = api_payloads(movie_ids, seed=args.seed)
    CHEAP_PATH[0] = f"/api/v1/movies/{movie_ids[0]}"

    pids = server_pids(root_pid) if root_pid else []
    if pids:
        rss, pss = memory_mb(pids)
        print(f"server: {len(pids)} processes, RSS {rss:.0f} MB, PSS {pss:.0f} MB (before)")
    print(HEADER)
    errors = 0
    done: list[Level] = []
    for endpoint in args.endpoints:
        for clients in args.clients:
            level = Level(endpoint, clients)
            done.append(level)
            # warm-up: every connection's first requests, not timed
            await run_level(host, port, Level(endpoint, clients), clients * 2, 10.0, payloads)
            cpu_before = cpu_seconds(pids) if pids else None
            await run_level(host, port, level, args.requests, args.max_seconds, payloads)
            if cpu_before is not None:
                level.server_cpu_s = cpu_seconds(pids) - cpu_before
            print(level.row(), flush=True)
            if level.errors:
                print(f"      statuses: {dict(sorted(level.statuses.items()))}")
            errors += level.errors
    if pids:
        rss, pss = memory_mb(server_pids(root_pid))  # type: ignore[arg-type]
        print(f"server: RSS {rss:.0f} MB, PSS {pss:.0f} MB (after)")
    print_ceiling_ratios(done)
    print(f"errors: {errors}")
    return 1 if errors else 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running server (loopback only); default: start one")
    parser.add_argument("--server-pid", type=int, help="with --url: its pid, for CPU and RSS")
    parser.add_argument("--workers", type=int, help="MOVIEREC_WORKERS of the started server")
    parser.add_argument("--model", help="MOVIEREC_MODEL of the started server")
    parser.add_argument("--home", type=Path, help="MOVIEREC_HOME (default: a temporary one)")
    parser.add_argument("--dataset", help="MOVIEREC_DATASET of the started server")
    parser.add_argument(
        "--no-train", action="store_true", help="start from saved models only (serve --no-train)"
    )
    parser.add_argument("--clients", default="1,8,32,64", help="concurrent clients per level")
    parser.add_argument("--endpoints", default=",".join(ENDPOINTS), help="page,api,form,cheap")
    parser.add_argument("--requests", type=int, default=1000, help="requests per level")
    parser.add_argument("--max-seconds", type=float, default=15.0, help="cap per level")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    args.clients = [int(c) for c in args.clients.split(",")]
    args.endpoints = [e.strip() for e in args.endpoints.split(",") if e.strip()]
    if any(e not in ENDPOINTS for e in args.endpoints):
        parser.error(f"--endpoints: choose from {', '.join(ENDPOINTS)}")
    if any(c < 1 or c > 256 for c in args.clients) or args.requests < 1:
        parser.error("clients must be 1-256 and requests at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.url:
        target = urlsplit(args.url)
        if target.scheme != "http" or target.hostname not in LOOPBACK:
            print("bench/load.py: --url must be http:// on loopback", file=sys.stderr)
            return 2
        host, port = target.hostname, target.port or 80
        print(f"target {args.url} (its own rate limit applies)")
        return asyncio.run(bench(args, host, port, args.server_pid))

    with temp_home("movierec-load-") as tmp:
        home = args.home or tmp / "home"
        port = free_port()
        log = Path(tmp) / "server.log"
        started = time.monotonic()
        server = start_server(home, port, args, log)
        print(
            f"server: movierec serve on 127.0.0.1:{port}, MOVIEREC_HOME={home}, "
            f"workers={args.workers or 'default'}, MOVIEREC_RATE_LIMIT={BENCH_RATE_LIMIT}",
            flush=True,
        )
        try:
            asyncio.run(wait_ready("127.0.0.1", port, server))
            print(
                f"server: answered GET / {time.monotonic() - started:.1f} s after start; "
                f"its first process peaked at {peak_rss_mb(server.pid):.0f} MB RSS",
                flush=True,
            )
            return asyncio.run(bench(args, "127.0.0.1", port, server.pid))
        except RuntimeError as exc:
            print(f"bench/load.py: {exc}; server log:\n{log.read_text()[-3000:]}", file=sys.stderr)
            return 2
        finally:
            stop_server(server)


if __name__ == "__main__":
    sys.exit(main())
