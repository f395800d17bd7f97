"""Helpers for tests and benchmarks of the web app (no network, small models).

- :class:`FakeTmdb`: a TMDB transport answering from memory, counting requests.
- :func:`fake_tmdb_server`: the same answers from a real HTTP server on loopback, for
  tests that point ``MOVIEREC_TMDB_URL`` at it (the client and its transport unpatched).
- :func:`prepare_home`: a ``MOVIEREC_HOME`` that reuses fetched data and holds
  quickly trained models, so an app starts in about a second.
- :func:`serve_process`: a real ``movierec serve`` subprocess on a free loopback port,
  waited for until it answers and stopped with SIGTERM.
- :func:`request_json` and :class:`BackgroundLoad`: JSON requests to such a server, one
  at a time or from client threads for as long as a ``with`` block lasts.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self
from urllib.parse import urlparse

from movierec import models
from movierec.config import load_settings
from movierec.data import load_dataset
from movierec.training import model_path, train_model

#: few epochs: good enough to rank sensibly, fast to train
QUICK_PARAMS: dict[str, dict[str, Any]] = {
    "svd": {"n_epochs": 8, "n_factors": 30, "seed": 1},
    "nmf": {"n_epochs": 8, "seed": 1},
    "popular": {},
}


#: the services :class:`FakeTmdb` knows: TMDB's provider ids and names
FAKE_SERVICES = {8: "Netflix", 337: "Disney Plus", 2: "Apple TV", 10: "Amazon Video"}


class FakeTmdb:
    """A TMDB transport for tests: every movie has a poster, an overview, a trailer and
    watch providers (:meth:`providers`: in US and GB, even TMDB ids stream on Netflix,
    multiples of 3 on Disney Plus, every movie rents on Apple TV and sells on Amazon).

    ``missing`` ids answer 404; ``delay`` seconds are slept per request; ``fail``
    raises as a network error would; ``posters=False`` gives no poster paths (a browser
    then loads nothing from image.tmdb.org). ``calls`` lists the paths asked, in order.
    """

    def __init__(
        self,
        missing: Iterable[int] = (),
        delay: float = 0.0,
        fail: bool = False,
        append_videos: bool = True,
        append_providers: bool = True,
        posters: bool = True,
    ) -> None:
        self.append_providers = append_providers
        self.posters = posters
        self.missing = set(missing)
        self.delay = delay
        self.fail = fail
        self.append_videos = append_videos
        self.calls: list[str] = []
        self.requests: list[tuple[str, dict[str, str], dict[str, str]]] = []
        self._lock = threading.Lock()

    def __call__(
        self, url: str, params: dict[str, str], headers: dict[str, str], timeout: float
    ) -> tuple[int, Any]:
        path = urlparse(url).path.removeprefix("/3")
        with self._lock:
            self.calls.append(path)
            self.requests.append((path, dict(params), dict(headers)))
        if self.delay:
            time.sleep(self.delay)
        if self.fail:
            raise ConnectionError("TMDB is unreachable (fake)")
        parts = path.strip("/").split("/")
        if parts == ["watch", "providers", "movie"]:
            return 200, self.region_services(params.get("watch_region", ""))
        if parts == ["watch", "providers", "regions"]:
            names = {"US": "United States of America", "GB": "United Kingdom", "FR": "France"}
            return 200, {
                "results": [{"iso_3166_1": c, "english_name": n} for c, n in names.items()]
            }
        if len(parts) < 2 or parts[0] != "movie" or not parts[1].isdigit():
            return 404, {"status_message": "not found"}
        tmdb_id = int(parts[1])
        if tmdb_id in self.missing:
            return 404, {"status_message": "The resource you requested could not be found."}
        if parts[2:] == ["videos"]:
            return 200, self.videos(tmdb_id)
        if parts[2:] == ["watch", "providers"]:
            return 200, self.providers(tmdb_id)
        if parts[2:]:
            return 404, {"status_message": "not found"}
        body = self.details(tmdb_id)
        appended = params.get("append_to_response", "").split(",")
        if self.append_videos and "videos" in appended:
            body["videos"] = self.videos(tmdb_id)
        if self.append_providers and "watch/providers" in appended:
            body["watch/providers"] = self.providers(tmdb_id)
        return 200, body

    def details(self, tmdb_id: int) -> dict[str, Any]:
        return {
            "id": tmdb_id,
            "poster_path": f"/poster{tmdb_id}.jpg" if self.posters else None,
            "overview": f"The overview of TMDB movie {tmdb_id}.",
        }

    @staticmethod
    def providers(tmdb_id: int) -> dict[str, Any]:
        """TMDB's ``/movie/{id}/watch/providers`` answer (see the class docstring)."""

        def offer(provider_id: int, priority: int) -> dict[str, Any]:
            name = FAKE_SERVICES[provider_id]
            return {"provider_id": provider_id, "provider_name": name, "display_priority": priority,
                    "logo_path": f"/logo{provider_id}.png"}  # fmt: skip

        flatrate = [offer(8, 1)] if tmdb_id % 2 == 0 else []
        if tmdb_id % 3 == 0:
            flatrate.append(offer(337, 2))
        country = {"rent": [offer(2, 5)], "buy": [offer(10, 6)]}
        if flatrate:
            country["flatrate"] = flatrate
        link = f"https://www.themoviedb.org/movie/{tmdb_id}/watch?locale="
        return {
            "id": tmdb_id,
            "results": {c: {"link": link + c, **country} for c in ("US", "GB")},
        }

    @staticmethod
    def region_services(region: str) -> dict[str, Any]:
        """TMDB's ``/watch/providers/movie?watch_region=`` answer: every fake service in
        US and GB, none elsewhere."""
        if region not in ("US", "GB"):
            return {"results": []}
        return {
            "results": [
                {"provider_id": p, "provider_name": n, "display_priorities": {region: k}}
                for k, (p, n) in enumerate(FAKE_SERVICES.items())
            ]
        }

    @staticmethod
    def videos(tmdb_id: int) -> dict[str, Any]:
        return {
            "id": tmdb_id,
            "results": [
                {"site": "YouTube", "type": "Teaser", "key": f"teaser{tmdb_id}", "official": True},
                {"site": "YouTube", "type": "Trailer", "key": f"yt{tmdb_id}", "official": True},
            ],
        }


def prepare_home(
    home: str | os.PathLike[str],
    data_home: str | os.PathLike[str],
    dataset: str = "ml-latest-small",
    params: Mapping[str, Mapping[str, Any]] | None = None,
) -> Path:
    """Make ``home`` a ``MOVIEREC_HOME`` using ``data_home``'s fetched data.

    ``home/data`` links to ``data_home/data``; each model in ``params`` (default
    :data:`QUICK_PARAMS`) not saved yet is trained with those parameters.
    """
    home = Path(home)
    home.mkdir(parents=True, exist_ok=True)
    data = home / "data"
    if not data.exists():
        data.symlink_to(Path(data_home).resolve() / "data", target_is_directory=True)
    settings = load_settings({"MOVIEREC_HOME": str(home)})
    loaded = None
    for name, model_params in (params or QUICK_PARAMS).items():
        if model_path(dataset, name, settings).exists():
            continue
        loaded = loaded or load_dataset(dataset, home=home)
        known = models.model_class(name).defaults
        kept = {k: v for k, v in model_params.items() if k in known or k == "seed"}
        train_model(loaded, name, settings, progress=False, **kept)
    return home


#: variables of the caller's environment a test server must not inherit
UNINHERITED = ("TMDB_API_KEY", "TMDB_READ_TOKEN", "DATABASE_URL", "REDIS_URL")


def free_port() -> int:
    """A loopback TCP port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]  # (host, port) for AF_INET
        return port


def serve_env(**settings: str) -> dict[str, str]:
    """This process's environment without TMDB, database or Redis settings, plus
    ``settings`` (e.g. ``MOVIEREC_HOME``, ``MOVIEREC_WORKERS``)."""
    env = {k: v for k, v in os.environ.items() if k not in UNINHERITED}
    env.update(settings)
    return env


@dataclass
class ServeProcess:
    """A running ``movierec serve`` subprocess: its process, port and log file."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path

    def status(self, path: str = "/healthz", timeout: float = 5.0) -> int:
        """The status of one GET on a fresh connection."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request("GET", path)
            answer = conn.getresponse()
            answer.read()
            return answer.status
        finally:
            conn.close()

    def workers(self) -> list[int]:
        """The worker processes' pids (children of the server process), sorted."""
        path = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return sorted(int(p) for p in path.read_text().split())


@contextmanager
def serve_process(
    env: Mapping[str, str],
    log: Path,
    command: Callable[[int], list[str]] | None = None,
    start_timeout: float = 120.0,
) -> Iterator[ServeProcess]:
    """``movierec serve`` (or ``command(port)``) with ``env``, output in ``log``, once
    ``/healthz`` answers 200; on exit SIGTERM and up to 20 s to stop (then SIGKILL and an
    error), unless the test already ended it. ``process.returncode`` says how it ended."""
    port = free_port()
    argv = (command or _serve_command)(port)
    with log.open("wb") as out:
        process = subprocess.Popen(argv, env=dict(env), stdout=out, stderr=subprocess.STDOUT)
    running = ServeProcess(process, port, log)
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            assert process.poll() is None, f"serve exited early:\n{log.read_text()}"
            try:
                if running.status() == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, f"serve never answered:\n{log.read_text()}"
            time.sleep(0.2)
        yield running
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                raise


def _serve_command(port: int) -> list[str]:
    return [sys.executable, "-m", "movierec.cli", "serve", "--port", str(port)]


def request_json(port: int, method: str, path: str, body: Any = None, timeout: float = 30.0) -> Any:
    """One request to ``127.0.0.1:port`` on a fresh connection (so a server's workers each
    get some); ``body``, if not None, is sent as JSON. The answer's JSON; a status other
    than 200 raises :class:`AssertionError` with the first 200 bytes of the answer."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        payload = json.dumps(body) if body is not None else None
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, path, payload, headers)
        answer = conn.getresponse()
        text = answer.read()
        if answer.status != 200:
            raise AssertionError(f"{method} {path}: {answer.status} {text[:200]!r}")
        return json.loads(text)
    finally:
        conn.close()


#: one request of :class:`BackgroundLoad`: (method, path, JSON body or None)
LoadRequest = tuple[str, str, Any]


class BackgroundLoad:
    """``clients`` threads sending ``requests`` in turn with :func:`request_json` to
    ``127.0.0.1:port``, from entering the ``with`` block until leaving it; leaving waits
    up to ``join_timeout`` seconds for each thread's request in flight to end.

    ``done`` counts the requests answered 200; ``failed`` says what went wrong with each
    other one (a status other than 200 or any exception: refused, reset, timed out), and
    names a client still running after ``join_timeout``.
    """

    def __init__(
        self,
        port: int,
        requests: Sequence[LoadRequest],
        clients: int = 4,
        join_timeout: float = 60.0,
    ) -> None:
        if not requests or clients < 1:
            raise ValueError("a load needs at least one request and one client")
        self.port = port
        self.requests = list(requests)
        self.join_timeout = join_timeout
        self.done = 0
        self.failed: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._run, name=f"load-{k}", daemon=True)
            for k in range(clients)
        ]

    def _run(self) -> None:
        while not self._stop.is_set():
            for method, path, body in self.requests:
                try:
                    request_json(self.port, method, path, body)
                except Exception as exc:  # every failure counts, whatever its kind
                    with self._lock:
                        self.failed.append(f"{type(exc).__name__}: {exc}")
                else:
                    with self._lock:
                        self.done += 1

    def __enter__(self) -> Self:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self.join_timeout)
            if thread.is_alive():
                self.failed.append(f"{thread.name} still running after {self.join_timeout} s")


@contextmanager
def fake_tmdb_server(fake: FakeTmdb | None = None) -> Iterator[str]:
    """A threaded HTTP server on loopback answering like TMDB's v3 API from ``fake``
    (default ``FakeTmdb(posters=False, append_providers=False)``, so the providers come
    from their own endpoint); yields the base URL for ``MOVIEREC_TMDB_URL``
    (``http://127.0.0.1:<port>/3``). A request without ``api_key`` or a bearer token
    answers 401, as TMDB does."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from urllib.parse import parse_qsl

    answers = fake or FakeTmdb(posters=False, append_providers=False)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            parts = urlparse(self.path)
            params = dict(parse_qsl(parts.query))
            headers = {k: v for k, v in self.headers.items()}
            if "api_key" not in params and not headers.get("Authorization", "").startswith(
                "Bearer "
            ):
                status, body = 401, {"status_message": "Invalid API key"}
            else:
                try:
                    status, body = answers(parts.path, params, headers, 5.0)
                except ConnectionError:
                    self.close_connection = True
                    return
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json;charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/3"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
