"""Two app hosts behind HAProxy, sharing PostgreSQL, Redis and the model files (issue 19).

What runs here is what ships: ``deploy/haproxy.cfg``, ``deploy/movierec.service`` (its
``ExecStart``, ``ExecReload`` and ``KillMode=mixed`` stop) and ``deploy/movierec.env``,
with only addresses, ports and paths replaced. Each replaced text must occur in the
shipped file exactly once, so an edit in deploy/ cannot leave this test testing
something else.

The network, on one machine: two network namespaces (host-a, host-b), each joined to the
root namespace by a veth pair, each running ``movierec serve`` (``ip netns exec``) on its
own address; HAProxy in the root namespace on 127.0.0.1 (TLS with a certificate made
here); and a "database host" address (the root end of host-a's veth pair, which host-b
reaches by its default route), where ``forward.py`` passes connections on to the
PostgreSQL and Redis that listen only on the root namespace's 127.0.0.1 (which a
namespace cannot reach). Each run has a database and
a Redis database number of its own, and its clients connect from addresses of a
127.x.y.0/24 of their own, so their rate-limit counters are theirs.

Needs root (network namespaces, veth), ``ip``, ``haproxy``, ``openssl`` and the
PostgreSQL and Redis servers; skipped with the reason otherwise, a failure when
``MOVIEREC_REQUIRE_DEPLOY=1`` (as in ``.ci/run``).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import random
import re
import secrets
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from movierec.config import DEFAULT_MODEL_CHECK_EVERY, ENV_KEYS

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
FORWARD = Path(__file__).with_name("forward.py")
SITE = "movies.example.org"
APP_PORT = 8000  # LISTEN_PORT in deploy/movierec.env
PG = ("127.0.0.1", 5432)
REDIS = ("127.0.0.1", 6379)
REDIS_DB = 11  # the Redis database number of this test
BUDGET = 60  # MOVIEREC_RATE_LIMIT here: requests a minute per client address
START_TIMEOUT = 180.0  # seconds for a host to answer /readyz
UP_TIMEOUT = 30.0  # seconds for HAProxy to see a host up or down
STOP_TIMEOUT = 30.0  # TimeoutStopSec in deploy/movierec.service
LOAD_VISITORS = 6  # concurrent writers while a host stops
WRITES_PER_VISITOR = 40  # at most, per phase (under BUDGET)
AFTER_STOP = 3.0  # seconds the writers go on once the host is gone


def _require(reason: str) -> None:
    if os.environ.get("MOVIEREC_REQUIRE_DEPLOY") == "1":
        pytest.fail(f"MOVIEREC_REQUIRE_DEPLOY=1 but {reason}")
    pytest.skip(reason)


def _tcp_up(address: tuple[str, int]) -> bool:
    try:
        socket.create_connection(address, timeout=2).close()
    except OSError:
        return False
    return True


def _run(*argv: str, timeout: float = 30.0) -> str:
    """Run a command; its output, or a failure with its output."""
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{shlex.join(argv)}:\n{done.stdout}{done.stderr}"
    return done.stdout + done.stderr


def _wait(what: str, check: Callable[[], bool], within: float, log: Path | None = None) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-4000:] if log and log.exists() else ""
            pytest.fail(f"{what}: not within {within:g} s\n{tail}")
        time.sleep(0.2)


def templated(name: str, replacements: dict[str, str]) -> str:
    """deploy/``name`` with each key replaced by its value; each key must occur once."""
    text = (DEPLOY / name).read_text()
    for old, new in replacements.items():
        assert text.count(old) == 1, f"deploy/{name} should contain {old!r} exactly once"
        text = text.replace(old, new)
    return text


def unit_text(env_path: Path) -> str:
    """deploy/movierec.service with this venv's ``movierec`` and ``env_path``."""
    return templated(
        "movierec.service",
        {
            "ExecStart=/opt/movierec/venv/bin/movierec": f"ExecStart={sys.prefix}/bin/movierec",
            "EnvironmentFile=/etc/movierec/movierec.env": f"EnvironmentFile={env_path}",
        },
    )


def env_file(text: str) -> dict[str, str]:
    """An EnvironmentFile's variables (KEY=value lines; # comments)."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";")):
            key, sep, value = line.partition("=")
            assert sep, f"not KEY=value: {line!r}"
            out[key.strip()] = value.strip()
    return out


def unit_service(text: str) -> dict[str, str]:
    """The [Service] section of a unit file (the last value of each key)."""
    section, out = None, {}
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line
        elif section == "[Service]" and line and not line.startswith(("#", ";")):
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def command_line(line: str, env: dict[str, str]) -> list[str]:
    """A unit's Exec line as systemd runs it: ``${VAR}`` is one word, ``$VAR`` splits."""
    words = []
    for word in shlex.split(line):
        if re.fullmatch(r"\$[A-Za-z_]\w*", word):
            words.extend(env[word[1:]].split())
        else:
            words.append(re.sub(r"\$\{(\w+)\}", lambda m: env[m.group(1)], word))
    return words


# --- the network -------------------------------------------------------------------------


@dataclass
class Network:
    """Two namespaces, each joined to the root namespace by a veth pair (a /30 each)."""

    tag: str
    prefix: str  # "10.a.b"
    namespaces: dict[str, str] = field(default_factory=dict)  # host -> namespace

    def address(self, host: str) -> str:
        """The host's own address, inside its namespace."""
        return f"{self.prefix}.{2 if host == 'host-a' else 6}"

    @property
    def services(self) -> str:
        """Where PostgreSQL and Redis are reached from both hosts: the root side of
        host-a's pair (host-b gets there by its default route)."""
        return f"{self.prefix}.1"

    def build(self) -> None:
        for host, gateway in (("host-a", 1), ("host-b", 5)):
            ns = f"mr{self.tag}{host[-1]}"
            self.namespaces[host] = ns
            outer, inner = f"mr{self.tag}{host[-1]}o", f"mr{self.tag}{host[-1]}i"
            _run("ip", "netns", "add", ns)
            _run("ip", "link", "add", outer, "type", "veth", "peer", "name", inner, "netns", ns)
            _run("ip", "addr", "add", f"{self.prefix}.{gateway}/30", "dev", outer)
            _run("ip", "link", "set", outer, "up")
            _run("ip", "-n", ns, "addr", "add", f"{self.address(host)}/30", "dev", inner)
            _run("ip", "-n", ns, "link", "set", inner, "up")
            _run("ip", "-n", ns, "link", "set", "lo", "up")
            _run("ip", "-n", ns, "route", "add", "default", "via", f"{self.prefix}.{gateway}")

    def tear_down(self) -> None:
        for host, ns in self.namespaces.items():
            subprocess.run(["ip", "link", "del", f"mr{self.tag}{host[-1]}o"], capture_output=True)
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def free_prefix() -> str:
    """A 10.a.b prefix no route of this machine uses."""
    routes = subprocess.run(["ip", "-4", "route"], capture_output=True, text=True).stdout
    for _ in range(100):
        prefix = f"10.{random.randint(200, 250)}.{random.randint(0, 255)}"
        if f"{prefix}." not in routes:
            return prefix
    raise AssertionError("no free 10.x.y.0/24")


# --- the app hosts -----------------------------------------------------------------------


class Host:
    """``movierec serve`` in a namespace, started and stopped as deploy/movierec.service says."""

    def __init__(self, name: str, ns: str, address: str, env: dict[str, str], log: Path):
        self.name, self.ns, self.address, self.env, self.log = name, ns, address, env, log
        unit = unit_service(unit_text(log.with_suffix(".env")))
        assert unit["KillMode"] == "mixed" and unit["KillSignal"] == "SIGTERM"
        self.exec_start = command_line(unit["ExecStart"], env)
        self.exec_reload = unit["ExecReload"]
        self.stop_timeout = float(unit["TimeoutStopSec"])
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                ["ip", "netns", "exec", self.ns, *self.exec_start],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, as its own cgroup would be
            )

    def get(self, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
        """One GET straight to this host (not through the proxy)."""
        conn = http.client.HTTPConnection(self.address, APP_PORT, timeout=timeout)
        try:
            conn.request("GET", path, headers={"Host": SITE})
            answer = conn.getresponse()
            return answer.status, answer.read()
        finally:
            conn.close()

    def ready(self) -> bool:
        assert self.process is not None and self.process.poll() is None, self.log.read_text()
        try:
            return self.get("/readyz")[0] == 200
        except OSError:
            return False

    def wait_ready(self) -> None:
        _wait(f"{self.name} ready", self.ready, START_TIMEOUT, self.log)

    def reload(self) -> None:
        """``systemctl reload``: the unit's ExecReload."""
        assert self.process is not None
        env = {**self.env, "MAINPID": str(self.process.pid)}
        _run(*command_line(self.exec_reload, env))

    def stop(self) -> float:
        """``systemctl stop`` with KillMode=mixed: SIGTERM to the main process, SIGKILL
        to the whole group after TimeoutStopSec (a failure here: the drain should end
        well before). The monotonic time the last process was gone."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        while _group_alive(self.process.pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        gone = time.monotonic()
        still = _group_alive(self.process.pid)
        self.kill()
        assert not still, f"{self.name} was still running {self.stop_timeout:g} s after SIGTERM"
        return gone

    def kill(self) -> float:
        """SIGKILL to every process of the host (a crash); the time they were all gone."""
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        deadline = time.monotonic() + 10
        while _group_alive(self.process.pid):
            assert time.monotonic() < deadline, f"{self.name}'s workers outlived it"
            time.sleep(0.02)
        return time.monotonic()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    for stat in Path("/proc").glob("[0-9]*/stat"):  # zombies only: already gone
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                return True
    return False


# --- the proxy ---------------------------------------------------------------------------


class Proxy:
    """HAProxy with deploy/haproxy.cfg, on 127.0.0.1."""

    def __init__(self, tmp: Path, net: Network):
        self.tmp = tmp
        self.cert = tmp / "site.pem"
        _run(
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", f"/CN={SITE}", "-addext", f"subjectAltName=DNS:{SITE},IP:127.0.0.1",
            "-keyout", str(tmp / "key.pem"), "-out", str(tmp / "cert.pem"),
        )  # fmt: skip
        self.cert.write_text((tmp / "cert.pem").read_text() + (tmp / "key.pem").read_text())
        self.http_port, self.https_port = _free_port(), _free_port()
        self.socket = tmp / "admin.sock"
        self.config = tmp / "haproxy.cfg"
        self.config.write_text(
            templated(
                "haproxy.cfg",
                {
                    "log /dev/log local0": "log stdout format raw local0",
                    "/run/haproxy/admin.sock": str(self.socket),
                    "    bind :80\n": f"    bind 127.0.0.1:{self.http_port}\n",
                    "bind :443 ssl crt /etc/haproxy/certs/movies.example.org.pem": (
                        f"bind 127.0.0.1:{self.https_port} ssl crt {self.cert}"
                    ),
                    f"server host-a 10.0.0.11:{APP_PORT}\n": (
                        f"server host-a {net.address('host-a')}:{APP_PORT}\n"
                    ),
                    f"server host-b 10.0.0.12:{APP_PORT}\n": (
                        f"server host-b {net.address('host-b')}:{APP_PORT}\n"
                    ),
                },
            )
        )
        self.log = tmp / "haproxy.log"
        self.process: subprocess.Popen | None = None

    def check(self) -> str:
        return _run(HAPROXY, "-c", "-f", str(self.config))

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [HAPROXY, "-db", "-f", str(self.config)], stdout=out, stderr=subprocess.STDOUT
            )

        def listening() -> bool:
            assert self.process and self.process.poll() is None, self.log.read_text()
            return _tcp_up(("127.0.0.1", self.https_port))

        _wait("HAProxy listening", listening, 20, self.log)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def command(self, line: str) -> str:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(5)
            s.connect(str(self.socket))
            s.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def status(self, server: str) -> str:
        """HAProxy's view of an app host: UP, DOWN, ..."""
        for row in self.command("show stat").splitlines():
            cells = row.split(",")
            if len(cells) > 17 and cells[0] == "movierec" and cells[1] == server:
                return cells[17].split()[0]
        return "?"

    def sessions(self, server: str) -> int:
        """Requests HAProxy has running on an app host now."""
        for row in self.command("show stat").splitlines():
            cells = row.split(",")
            if len(cells) > 4 and cells[0] == "movierec" and cells[1] == server:
                return int(cells[4] or 0)
        raise AssertionError(f"no server {server} in HAProxy's stats")

    def wait_status(self, server: str, wanted: str) -> None:
        _wait(f"HAProxy sees {server} {wanted}", lambda: self.status(server) == wanted, UP_TIMEOUT)


HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- a visitor's client ------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage  # names in any case (HAProxy sends lower case)
    body: bytes
    started: float  # monotonic
    ended: float


class Client:
    """A browser-like client of the site through the proxy, from its own source address:
    HTTPS with keep-alive, the site's Host name, and one cookie kept."""

    def __init__(self, proxy: Proxy, source: str, keep_cookie_updates: bool = True):
        self.proxy, self.source = proxy, source
        self.context = ssl.create_default_context(cafile=str(proxy.tmp / "cert.pem"))
        self.cookie: str | None = None
        self.keep_cookie_updates = keep_cookie_updates
        self.conn: http.client.HTTPSConnection | None = None

    def request(
        self, method: str, path: str, form: dict[str, str] | None = None, **headers: str
    ) -> Answer:
        """One request; a broken connection raises OSError (and is not reused)."""
        send = {"Host": SITE, **{k.replace("_", "-"): v for k, v in headers.items()}}
        body = None
        if form is not None:
            body = "&".join(f"{k}={v}" for k, v in form.items())
            send["Content-Type"] = "application/x-www-form-urlencoded"
            # as a browser does: over HTTPS, Flask-WTF wants a same-origin Referer
            send["Referer"] = f"https://{SITE}{path}"
        if self.cookie:
            send["Cookie"] = self.cookie
        started = time.monotonic()
        if self.conn is None:
            self.conn = http.client.HTTPSConnection(
                "127.0.0.1",
                self.proxy.https_port,
                timeout=30,
                context=self.context,
                source_address=(self.source, 0),
            )
        try:
            self.conn.request(method, path, body=body, headers=send)
            response = self.conn.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise OSError(f"{method} {path}: {exc!r}") from exc
        ended = time.monotonic()
        answer = Answer(response.status, response.msg, data, started, ended)
        set_cookie = response.getheader("Set-Cookie")
        if set_cookie and (self.keep_cookie_updates or self.cookie is None):
            self.cookie = set_cookie.split(";", 1)[0]
        if response.will_close:
            self.close()
        return answer

    def csrf_token(self, movie_id: int = 1) -> str:
        page = self.request("GET", f"/movies/{movie_id}")
        assert page.status == 200, page.body[:500]
        found = re.search(rb'name="csrf_token" value="([^"]+)"', page.body)
        assert found, "no CSRF token on the movie page"
        return found.group(1).decode()

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def visitor_of(cookie: str, secret: str) -> str:
    """The visitor id in a signed Flask session cookie (``movierec=...``)."""
    from flask import Flask
    from flask.sessions import SecureCookieSessionInterface

    app = Flask(__name__)
    app.secret_key = secret
    serializer = SecureCookieSessionInterface().get_signing_serializer(app)
    assert serializer is not None
    return serializer.loads(cookie.split("=", 1)[1])["visitor"]


def served_by(hosts: dict[str, Host], request_id: str) -> str:
    """Which host's access log has the request with this id."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        found = [name for name, host in hosts.items() if request_id in host.log.read_text()]
        if found:
            assert len(found) == 1, found
            return found[0]
        time.sleep(0.1)
    raise AssertionError(f"request {request_id} is in no host's log")


# --- the cluster -------------------------------------------------------------------------


@dataclass
class Cluster:
    net: Network
    hosts: dict[str, Host]
    proxy: Proxy
    home: Path
    database_url: str  # from the root namespace
    secret: str
    client_net: str  # "127.x.y": this run's client addresses
    movie_ids: list[int]
    env: dict[str, str]
    _next_client: int = 1

    def client(self, **kwargs: bool) -> Client:
        self._next_client += 1
        assert self._next_client < 255
        return Client(self.proxy, f"{self.client_net}.{self._next_client}", **kwargs)

    def stored(self, visitor: str) -> dict[int, float]:
        import psycopg

        with psycopg.connect(self.database_url) as conn:
            rows = conn.execute(
                "select movie_id, stars from ratings where visitor_id = %s", (visitor,)
            ).fetchall()
        return {int(m): float(s) for m, s in rows}


@pytest.fixture(scope="module")
def deploy_tools() -> None:
    """Skip (or, with MOVIEREC_REQUIRE_DEPLOY=1, fail) before anything is built when
    this machine cannot run the test."""
    if os.geteuid() != 0:
        _require("the two-host test needs root (ip netns, veth pairs)")
    for tool in ("ip", "openssl"):
        if not shutil.which(tool):
            _require(f"the two-host test needs {tool}")
    if not os.access(HAPROXY, os.X_OK):
        _require("the two-host test needs haproxy (apt install haproxy)")
    if not _tcp_up(PG) or not _tcp_up(REDIS):
        _require("the two-host test needs PostgreSQL on 127.0.0.1:5432 and Redis on :6379")


@pytest.fixture(scope="module")
def cluster(
    deploy_tools: None, web_home: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    import psycopg

    tmp = tmp_path_factory.mktemp("two-hosts")
    tag = f"{os.getpid() % 100000}"
    database = f"movierec_deploy_{tag}"
    admin_url = f"postgresql://postgres@{PG[0]}:{PG[1]}/postgres"
    client_net = f"127.{random.randint(100, 250)}.{random.randint(0, 255)}"
    with contextlib.ExitStack() as stack:
        net = Network(tag, free_prefix())
        stack.callback(net.tear_down)
        net.build()

        forwarder = subprocess.Popen(
            [
                sys.executable,
                str(FORWARD),
                f"{net.services}:{PG[1]}={PG[0]}:{PG[1]}",
                f"{net.services}:{REDIS[1]}={REDIS[0]}:{REDIS[1]}",
            ],
            stdout=subprocess.DEVNULL,
        )
        stack.callback(_end, forwarder)
        _wait("the forwarder", lambda: _tcp_up((net.services, PG[1])), 20)

        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f"drop database if exists {database} with (force)")
            conn.execute(f"create database {database}")
        stack.callback(_drop_database, admin_url, database)
        stack.callback(_forget_redis_keys, client_net)

        home = tmp / "home"  # the shared MOVIEREC_HOME (an NFS mount on real hosts)
        home.mkdir()
        (home / "data").symlink_to((web_home / "data").resolve(), target_is_directory=True)
        shutil.copytree(web_home / "models", home / "models")
        secret = secrets.token_hex(32)
        shipped = env_file((DEPLOY / "movierec.env").read_text())
        unknown = [k for k in shipped if k.startswith("MOVIEREC_") and k not in ENV_KEYS]
        assert not unknown, f"deploy/movierec.env sets unknown settings {unknown}"
        changed = {
            "MOVIEREC_HOME": str(home),
            "MOVIEREC_MODEL": "svd",  # the one the test home has (no ease)
            "DATABASE_URL": f"postgresql://postgres@{net.services}/{database}",
            "REDIS_URL": f"redis://{net.services}:{REDIS[1]}/{REDIS_DB}",
            "SECRET_KEY": secret,
        }
        assert set(changed) <= set(shipped), "deploy/movierec.env lacks a setting"
        assert shipped["MOVIEREC_MODEL_CHECK_EVERY"] == "0"  # new models only on reload
        # systemd gives a service only PATH, LANG and HOME besides its EnvironmentFile
        base = {"PATH": os.environ["PATH"], "LANG": "C.UTF-8", "HOME": str(home)}
        common = {
            **base,
            **shipped,
            **changed,
            "MOVIEREC_RATE_LIMIT": f"{BUDGET}/minute",  # small, to be reached here
        }
        database_url = f"postgresql://postgres@{PG[0]}:{PG[1]}/{database}"
        # the documented step before the first start: the schema, once
        upgraded = subprocess.run(
            [sys.executable, "-m", "movierec.cli", "db", "upgrade"],
            env={**common, "DATABASE_URL": database_url},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert upgraded.returncode == 0, upgraded.stdout + upgraded.stderr

        proxy = Proxy(tmp, net)
        hosts = {}
        for name in ("host-a", "host-b"):
            env = {**common, "LISTEN_HOST": net.address(name)}
            host = Host(name, net.namespaces[name], net.address(name), env, tmp / f"{name}.log")
            stack.callback(_stop_host, host)
            host.start()
            hosts[name] = host
        for host in hosts.values():
            host.wait_ready()

        stack.callback(proxy.stop)
        proxy.start()
        for name in hosts:
            proxy.wait_status(name, "UP")

        movie_ids = _movie_ids(home)
        yield Cluster(net, hosts, proxy, home, database_url, secret, client_net, movie_ids, common)


def _end(process: subprocess.Popen) -> None:
    process.kill()
    process.wait(timeout=10)


def _stop_host(host: Host) -> None:
    if host.process is not None and host.process.poll() is None:
        with contextlib.suppress(Exception):
            host.stop()
    if host.process is not None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(host.process.pid, signal.SIGKILL)


def _drop_database(admin_url: str, database: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"drop database if exists {database} with (force)")


def _forget_redis_keys(client_net: str) -> None:
    import redis

    server = redis.Redis(host=REDIS[0], port=REDIS[1], db=REDIS_DB, socket_timeout=5)
    keys = list(server.scan_iter(match=f"*{client_net}.*", count=1000))
    if keys:
        server.delete(*keys)


def _movie_ids(home: Path) -> list[int]:
    """Movie ids of the data set, in file order (enough for every writer)."""
    import csv

    path = next((home / "data").glob("ml-latest-small*/movies.csv"))
    with path.open(encoding="utf-8") as f:
        return [int(row["movieId"]) for row in csv.DictReader(f)][:1000]


# --- the tests ---------------------------------------------------------------------------


def test_the_shipped_configs_check_clean(cluster: Cluster, tmp_path: Path):
    checked = cluster.proxy.check()
    assert "WARNING" not in checked and "ALERT" not in checked, checked
    if not shutil.which("systemd-analyze") and os.environ.get("MOVIEREC_REQUIRE_DEPLOY") == "1":
        pytest.fail("MOVIEREC_REQUIRE_DEPLOY=1 but systemd-analyze is missing (apt: systemd)")
    if shutil.which("systemd-analyze"):  # else the unit is only run, not also checked
        unit = tmp_path / "movierec.service"
        unit.write_text(unit_text(tmp_path / "movierec.env"))
        (tmp_path / "movierec.env").write_text((DEPLOY / "movierec.env").read_text())
        _run("systemd-analyze", "verify", str(unit), timeout=60)
    # plain HTTP is sent to HTTPS
    conn = http.client.HTTPConnection("127.0.0.1", cluster.proxy.http_port, timeout=10)
    conn.request("GET", "/movies/1", headers={"Host": SITE})
    answer = conn.getresponse()
    assert answer.status == 301
    assert answer.getheader("Location") == f"https://{SITE}/movies/1"


def test_a_visitor_session_continues_on_either_host(cluster: Cluster):
    visitor = cluster.client()
    token = visitor.csrf_token()
    rated, hosts_seen, visitor_ids = {}, [], set()
    for movie_id, stars in zip(cluster.movie_ids[:8], (5, 4, 3, 4.5, 2, 1, 3.5, 5), strict=True):
        answer = visitor.request(
            "POST", f"/movies/{movie_id}/rate", {"stars": str(stars), "csrf_token": token}
        )
        assert answer.status == 303, answer.body[:500]
        rated[movie_id] = float(stars)
        visitor_ids.add(visitor_of(visitor.cookie or "", cluster.secret))
        hosts_seen.append(served_by(cluster.hosts, answer.headers["X-Request-Id"]))
        page = visitor.request("GET", "/ratings")  # a page in the same session
        assert page.status == 200
        hosts_seen.append(served_by(cluster.hosts, page.headers["X-Request-Id"]))
    print(f"one visitor's 16 requests went to: {' '.join(h[-1] for h in hosts_seen)}")
    assert set(hosts_seen) == {"host-a", "host-b"}  # both hosts served this one visitor
    assert len(visitor_ids) == 1  # one visitor throughout, whichever host answered
    assert cluster.stored(visitor_ids.pop()) == rated
    page = visitor.request("GET", "/ratings").body.decode()
    assert "8 movies" in page or page.count("/movies/") >= 8


def test_the_rate_limit_is_global(cluster: Cluster):
    client = cluster.client()
    statuses, hosts_seen = [], set()
    for i in range(BUDGET + 10):
        # a client-made X-Forwarded-For changes nothing: the proxy's own address entry is used
        answer = client.request("GET", "/api/v1/movies/1", X_Forwarded_For=f"198.51.100.{i}")
        statuses.append(answer.status)
        hosts_seen.add(served_by(cluster.hosts, answer.headers["X-Request-Id"]))
    assert hosts_seen == {"host-a", "host-b"}
    # with counters per process, 2 hosts x 2 workers would have let all through
    assert statuses == [200] * BUDGET + [429] * 10
    assert cluster.client().request("GET", "/api/v1/movies/1").status == 200  # others may


@dataclass
class LoadReport:
    confirmed: dict[str, dict[int, float]]  # visitor -> movie -> stars, answered 303
    failures: list[tuple[float, float, str]]  # (started, ended, what)
    sent: int
    gone_at: float  # monotonic: the stopped host's processes were all gone
    stop_at: float  # monotonic: the stop began


def write_load(cluster: Cluster, offset: int, stop: Callable[[], float]) -> LoadReport:
    """LOAD_VISITORS visitors each rate distinct movies as fast as answered; after each
    has a few writes confirmed, ``stop()`` takes a host away; the writers go on for
    AFTER_STOP seconds more."""
    confirmed: dict[str, dict[int, float]] = {}
    failures: list[tuple[float, float, str]] = []
    sent = [0]
    lock = threading.Lock()
    started = threading.Barrier(LOAD_VISITORS + 1)
    quit_at = [float("inf")]

    def writer(index: int) -> None:
        client = cluster.client()
        token = client.csrf_token()
        first = cluster.movie_ids[-1 - index]  # a rating that makes the visitor
        answer = client.request(
            "POST", f"/movies/{first}/rate", {"stars": "3", "csrf_token": token}
        )
        assert answer.status == 303, answer.body[:300]
        visitor = visitor_of(client.cookie or "", cluster.secret)
        client.keep_cookie_updates = False  # the visitor's cookie; its flashes never pile up
        mine: dict[int, float] = {}
        with lock:
            confirmed[visitor] = mine
        started.wait(timeout=60)
        for n in range(WRITES_PER_VISITOR):
            if time.monotonic() > quit_at[0]:
                break
            movie_id = cluster.movie_ids[offset + n]
            stars = float(1 + (index + n) % 5)
            begun = time.monotonic()
            try:
                answer = client.request(
                    "POST", f"/movies/{movie_id}/rate", {"stars": str(stars), "csrf_token": token}
                )
            except OSError as exc:
                with lock:
                    failures.append((begun, time.monotonic(), str(exc)))
                continue
            finally:
                with lock:
                    sent[0] += 1
            if answer.status == 303:
                mine[movie_id] = stars
            else:
                with lock:
                    failures.append((answer.started, answer.ended, f"HTTP {answer.status}"))
        client.close()

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(LOAD_VISITORS)]
    for thread in threads:
        thread.start()
    started.wait(timeout=60)
    _wait("writes before the stop", lambda: sent[0] >= 3 * LOAD_VISITORS, 60)
    stop_at = time.monotonic()
    gone_at = stop()
    quit_at[0] = gone_at + AFTER_STOP
    for thread in threads:
        thread.join(timeout=120)
        assert not thread.is_alive(), "a writer never finished"
    return LoadReport(confirmed, failures, sent[0], gone_at, stop_at)


#: after a crash, how long a request may still meet it: HAProxy closes each visitor's
#: connection whose request went to the dead host, and a request the visitor had just sent
#: on it (about 50 ms after the kill in CI, twice in 5 runs) meets that close without
#: reaching any host; it was on its way while the crash was being noticed
CRASH_NOTICED = 0.1


def check_load(cluster: Cluster, report: LoadReport, what: str, noticed_after: float = 0.0) -> None:
    writes = sum(len(m) for m in report.confirmed.values())
    print(
        f"{what}: {writes} writes confirmed of {report.sent} sent, "
        f"{len(report.failures)} failed; host gone {report.gone_at - report.stop_at:.1f} s "
        f"after the stop began"
    )
    for started, ended, what_failed in report.failures:
        print(
            f"  failed: {what_failed} (sent {started - report.stop_at:+.2f} s after the stop "
            f"began, ended {ended - report.stop_at:+.2f} s)"
        )
    after = [w for w in report.confirmed.values() for _ in w]
    assert len(after) == writes and writes > 3 * LOAD_VISITORS
    for visitor, mine in report.confirmed.items():
        stored = cluster.stored(visitor)
        lost = {m: s for m, s in mine.items() if stored.get(m) != s}
        assert not lost, f"{what}: confirmed writes lost: {lost}"
    # only requests in flight while the host went away may fail: each was sent before its
    # processes were all gone (and, after a crash, noticed), and ended after the stop began
    failed_here = [
        line for line in cluster.proxy.log.read_text().splitlines() if " /movies/" in line
    ]
    proxy_log = "\n".join(line for line in failed_here if not re.search(r" (200|303) ", line))
    gone = report.gone_at + noticed_after
    outside = [f for f in report.failures if f[0] > gone or f[1] < report.stop_at]
    assert not outside, f"{what}: requests not in flight failed: {outside}\n{proxy_log}"
    assert len(report.failures) <= 2 * LOAD_VISITORS, f"{report.failures}\n{proxy_log}"


def test_a_host_drained_then_stopped_under_write_load_fails_nothing(cluster: Cluster):
    host, proxy = cluster.hosts["host-a"], cluster.proxy

    def drain_then_stop() -> float:  # as docs/operating.md says, before maintenance
        assert proxy.command("set server movierec/host-a state drain").strip() == ""
        _wait("host-a drained", lambda: proxy.sessions("host-a") == 0, UP_TIMEOUT)
        return host.stop()

    report = write_load(cluster, 2 * WRITES_PER_VISITOR, drain_then_stop)
    check_load(cluster, report, "drain, then systemctl stop host-a")
    assert report.failures == []
    proxy.wait_status("host-a", "DOWN")
    host.start()
    host.wait_ready()
    proxy.command("set server movierec/host-a state ready")
    proxy.wait_status("host-a", "UP")


def test_a_host_stopped_under_write_load_fails_nothing(cluster: Cluster):
    """A plain ``systemctl stop`` (SIGTERM to the supervisor), not drained in HAProxy
    first: the host stops listening at once, answers what it had accepted, and HAProxy
    retries the connects it refuses on the other host (5-6 of about 240 failed when the
    socket stayed open, unaccepted, until the workers were gone)."""
    host = cluster.hosts["host-a"]
    report = write_load(cluster, 0, host.stop)
    check_load(cluster, report, "systemctl stop host-a")
    assert report.failures == []
    cluster.proxy.wait_status("host-a", "DOWN")
    host.start()
    host.wait_ready()
    cluster.proxy.wait_status("host-a", "UP")


def test_a_host_crashing_under_write_load_fails_only_requests_in_flight(cluster: Cluster):
    host = cluster.hosts["host-b"]
    report = write_load(cluster, WRITES_PER_VISITOR, host.kill)
    check_load(cluster, report, "kill -9 host-b", noticed_after=CRASH_NOTICED)
    cluster.proxy.wait_status("host-b", "DOWN")
    host.start()
    host.wait_ready()
    cluster.proxy.wait_status("host-b", "UP")


def _version(host: Host) -> str:
    """The model version a host reports (GET /api/v1/model). The test's own reads, all
    from one address, may go past the site's limit of BUDGET a minute (counted in Redis
    over the whole module): a 429 is waited out (the limit counts per minute)."""
    for _ in range(3):
        status, body = host.get("/api/v1/model")
        if status != 429:
            break
        time.sleep(61)
    assert status == 200, body[:300]
    return json.loads(body)["version"]


def _settled_version(host: Host, old: str) -> str | None:
    """The version every worker of ``host`` reports, once it is not ``old``; None while a
    reload is still replacing workers one by one (they answer with either version)."""
    seen = {_version(host) for _ in range(8)}
    return seen.pop() if len(seen) == 1 and old not in seen else None


def test_a_new_model_rolls_out_host_by_host(cluster: Cluster):
    a, b = cluster.hosts["host-a"], cluster.hosts["host-b"]
    old = _version(a)
    assert _version(b) == old
    # the training machine writes a new model file into the shared home
    done = subprocess.run(
        [sys.executable, "-m", "movierec.cli", "train", "--model", "svd",
         "-p", "n_epochs=8", "-p", "n_factors=30", "-p", "seed=7"],
        env={**cluster.env, "DATABASE_URL": cluster.database_url},
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    failures: list[str] = []
    stop = threading.Event()

    def browse() -> None:  # a visitor reading pages through the proxy all along
        client = cluster.client()
        while not stop.is_set():
            try:
                status = client.request("GET", "/api/v1/movies/1").status
            except OSError as exc:
                failures.append(str(exc))
            else:
                if status not in (200, 429):
                    failures.append(f"HTTP {status}")
            time.sleep(0.05)
        client.close()

    reader = threading.Thread(target=browse)
    reader.start()
    try:
        a.reload()
        _wait(
            "host-a serves the new model in every worker",
            lambda: _settled_version(a, old) is not None,
            120,
            a.log,
        )
        new = _version(a)
        # host-b would have taken the shared file by itself by now with the default
        # MOVIEREC_MODEL_CHECK_EVERY (10 s, jittered up to 12); deploy/'s 0 waits for reload
        time.sleep(DEFAULT_MODEL_CHECK_EVERY * 1.2 + 3)
        assert _version(b) == old  # one host at a time
        b.reload()
        _wait(
            "host-b serves the new model in every worker",
            lambda: _settled_version(b, old) == new,
            120,
            b.log,
        )
        assert _version(a) == new
    finally:
        stop.set()
        reader.join(timeout=30)
    assert failures == []
    print(f"model rolled out host by host: {old} -> {new}, 0 failed requests")
