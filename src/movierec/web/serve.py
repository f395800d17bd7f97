"""``serve()``: bind, prepare data and model, then serve with waitress in N processes.

``movierec serve [--host] [--port]`` calls this. The first run fetches the data set
from the configured source and trains the default model (with a progress bar); later
runs load the saved model in about a second.

Why waitress, configured so: it reads each request whole in its asynchronous I/O loop
before a worker thread sees it, so a slow client costs one connection slot
(``connection_limit``, 1000 per process by default), never a thread. waitress closes a
connection after ``channel_timeout`` seconds (15) of silence only, so a client sending a
byte a second would keep its slot for ever; :mod:`movierec.web.connections` caps the
connections per client address and gives each request a deadline (2,200 such requests
from one address once kept every visitor waiting). Bodies over the largest cap (a ratings
file import, 5 MB) are refused with 413 while the headers are read (a chunked body: once
that much has come), and the app refuses others over ``max_body`` (waitress hands a
chunked body over whole, with its length, so the same check applies). (gunicorn's
gthread worker gives a readable socket to a thread, which then blocks on a trickled
request; gevent would need care with psycopg and numba.) Python runs one request at a
time per process, so the throughput of a machine with several cores comes from several
processes: the listening socket is bound once, the app is prepared (model loaded and
warm), then ``workers`` children are forked that share the socket, the model's memory
(copy-on-write) and nothing else. They are watched by the hand-written supervisor in
:mod:`movierec.web.supervisor` (why not gunicorn's: see there): restarted when they die,
killed when they hang (``MOVIEREC_WORKER_TIMEOUT``), replaced one by one on SIGHUP,
stopped on SIGTERM with no accepted request lost (the listening socket stops first, so
new connections are refused, not left queued), and gone when it is.

**New model files go live without a restart.** Each worker looks at its models' files
when it starts and every ``MOVIEREC_MODEL_CHECK_EVERY`` seconds (10, jittered by a fifth
so that workers do not all load at once; one ``stat`` a model when nothing changed), from
a thread of its own, off the request path; a newer good file is loaded memory-mapped and
swapped in atomically (:meth:`~movierec.web.services.Recommenders.refresh`), so it serves
within about 12 s of being renamed into place plus its load (about a second for
ml-latest-small on an idle machine; bench/swap.py measured 2.6-21 s in all on a 2-core
machine at a load average of 7-16, with 0 failed requests). SIGHUP swaps newer files
into the supervisor's own copy first, then replaces the workers one by one, so every
worker serves them once the SIGHUP's reload is done. ``MOVIEREC_MODEL_CHECK_EVERY=0``
leaves only SIGHUP (workers then never look by themselves, not even when they start), so
that hosts sharing the model files each take a new one when told, one host at a time
(deploy/). ``--retrain-every``
(:mod:`movierec.web.retrain`) retrains on a schedule in processes of their own.
"""

from __future__ import annotations

import logging
import os
import random
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from movierec import logs
from movierec.config import DEFAULT_MODEL_CHECK_EVERY, Settings, load_settings
from movierec.errors import MovierecError
from movierec.training import ensure_model
from movierec.web.observe import REQUEST_ID_HEADER, SANE_ID, access_log
from movierec.web.supervisor import Supervisor, WorkerWatch
from movierec.web.turns import ComputeTurns

if TYPE_CHECKING:
    from flask import Flask

    from movierec.data import Dataset
    from movierec.models.base import Recommender

log = logging.getLogger(__name__)

CLEANUP_INTERVAL = 2  # seconds between waitress's sweeps for timed-out connections
BACKLOG = 1024  # connections the kernel queues before waitress accepts them
#: seconds between a serving process's looks at its models' files (see the module doc)
MODEL_CHECK_EVERY = float(DEFAULT_MODEL_CHECK_EVERY)  # seconds (the setting's default)


def serve(
    host: str = "127.0.0.1",
    port: int = 5000,
    settings: Settings | None = None,
    train: bool = True,
    workers: int | None = None,
    retrain_every: float | None = None,
) -> None:
    """Serve the app on ``host:port`` until interrupted (Ctrl-C or SIGTERM).

    The address is bound first, so a port in use or a bad host fails at once
    (:class:`MovierecError` naming ``host:port``). ``train=False``: the default model
    must already be saved and valid. ``workers``: processes (default
    ``settings.workers``); 1 serves in this process. ``retrain_every``: seconds between
    retrainings of the served models with visitors' ratings (see
    :mod:`movierec.web.retrain`); None for none.
    """
    settings = settings or load_settings()
    workers = settings.workers if workers is None else max(1, int(workers))
    listener = bind(host, port)
    # waitress's warnings, the app's errors and the access log reach stderr, as text or JSON
    logs.configure(settings.log_format)
    metrics_dir = _metrics_dir(settings)
    retrainer = None
    try:
        app = prepare_app(settings, progress=True, train=train)
        where = f"http://{_address(host, port)}/"
        print(
            f"movierec: serving on {where} with {workers} process(es) x "
            f"{settings.threads} threads (Ctrl-C to stop)",
            flush=True,
        )
        if retrain_every is not None:
            retrainer = _retrainer(app, settings, retrain_every)
        if workers == 1:
            if settings.model_check_every:
                watch_model_files(app, settings.model_check_every)
            if retrainer is not None:
                _poll_in_thread(retrainer)
            watch = WorkerWatch.alone()
            app.wsgi_app = take_turns(app)  # type: ignore[method-assign]  # Flask: wrap wsgi_app
            with _drain_on_sigterm(watch):
                run_waitress(app, listener, settings, started=watch.serving)
        else:
            Supervisor(
                lambda watch: _worker_main(app, listener, settings, watch),
                workers,
                timeout=settings.worker_timeout,
                on_reload=lambda: refresh_models(app),
                every_turn=retrainer.poll if retrainer is not None else None,
            ).run()
    finally:
        if retrainer is not None:
            retrainer.stop()
        listener.close()
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def _metrics_dir(settings: Settings) -> str | None:
    """With ``/metrics`` on: a fresh directory for every process's metric values
    (``PROMETHEUS_MULTIPROC_DIR``, set before ``prometheus_client`` is imported; see
    :mod:`movierec.web.metrics`), removed when serving stops. None when off or already
    set by the operator (then theirs to empty between runs)."""
    if not settings.metrics_token or os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return None
    path = tempfile.mkdtemp(prefix="movierec-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    return path


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port``; ``MovierecError`` naming it if impossible."""
    where = _address(host, port)
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError, OverflowError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise MovierecError(f"cannot serve on {where}: unknown host ({reason})") from None
    family, kind, proto, _, address = found[0]
    listener = socket.socket(family, kind, proto)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(address)
        listener.listen(BACKLOG)
    except OSError as exc:
        listener.close()
        raise MovierecError(f"cannot serve on {where}: {exc.strerror or exc}") from None
    return listener


def run_waitress(
    app: Any,
    listener: socket.socket,
    settings: Settings,
    started: Callable[[Any], None] | None = None,
) -> None:
    """Serve ``app`` on ``listener`` in this process until SIGTERM/Ctrl-C.
    ``started``: given waitress's server just before it runs (a worker's watch)."""
    import waitress

    server = waitress.create_server(
        app,
        sockets=[listener],
        threads=settings.threads,
        connection_limit=settings.connection_limit,
        channel_timeout=settings.channel_timeout,
        cleanup_interval=CLEANUP_INTERVAL,
        max_request_body_size=largest_body(settings),
        asyncore_use_poll=True,  # select() cannot watch more than 1024 sockets
        backlog=BACKLOG,
        ident="movierec",
        # waitress drops X-Forwarded-* unless told its proxy; behind MOVIEREC_TRUSTED_PROXIES
        # they reach the app, whose ProxyFix trusts exactly that many (web/__init__.py)
        clear_untrusted_proxy_headers=not settings.trusted_proxies,
    )
    server.channel_class = _secure_channel(settings)
    if started is not None:
        started(server)
    server.run()  # returns after SIGTERM (SystemExit) or Ctrl-C, connections closed


def _secure_channel(settings: Settings) -> type:
    """waitress's connection class, its own error answers (413 while reading a body, 400
    for a malformed request) carrying the app's security headers too. Subclassing
    ``HTTPChannel.error_task_class`` is waitress's hook for this; it has no option. Built
    on :func:`~movierec.web.connections.guarded_channel`: connections per client address
    capped, requests given a deadline to arrive (one count per process: call per server)."""
    from waitress.task import ErrorTask

    from movierec.web import static_security_headers
    from movierec.web.connections import guarded_channel

    headers = static_security_headers(settings.https)

    class SecureErrorTask(ErrorTask):  # type: ignore[misc]  # waitress has no type information
        def execute(self) -> None:
            request_id = error_request_id(self.request.headers)
            self.response_headers.extend(headers)
            self.response_headers.append((REQUEST_ID_HEADER, request_id))
            super().execute()
            log_error_answer(self.channel.addr, self.request, self.status, request_id)

    guarded = guarded_channel(settings.connections_per_address, settings.request_read_timeout)

    class SecureChannel(guarded):  # type: ignore[valid-type,misc]  # a class made at run time
        error_task_class = SecureErrorTask

    return SecureChannel


def error_request_id(headers: dict[str, str]) -> str:
    """The id of a request waitress answers itself: the proxy's ``X-Request-Id`` when it
    looks like one (waitress keys headers as ``X_REQUEST_ID``), else a fresh one, as the
    app does (:mod:`movierec.web.observe`)."""
    incoming = headers.get("X_REQUEST_ID", "")
    return incoming if SANE_ID.fullmatch(incoming) else os.urandom(16).hex()


def log_error_answer(addr: Any, request: Any, status: str, request_id: str) -> None:
    """The access-log line of an answer waitress gave before the app saw the request
    (413 over the body cap, 400 for a malformed request), in the app's format."""
    if not access_log.isEnabledFor(logging.INFO):
        return
    remote = addr[0] if isinstance(addr, tuple) and addr else "-"
    method = (getattr(request, "command", None) or "-")[:16]
    path = (getattr(request, "path", None) or "-")[:200]
    code = int(status.split(" ", 1)[0]) if status[:3].isdigit() else 0
    access_log.info(
        '%s "%s %s" %d - B - ms route=<server> id=%s',
        remote,
        method,
        path,
        code,
        request_id,
        extra={
            "remote_addr": remote,
            "method": method,
            "path": path,
            "status": code,
            "route": "<server>",
            "request_id": request_id,
        },
    )


def largest_body(settings: Settings) -> int:
    """Bytes waitress reads of one body: the app's cap, or the ratings-file import's cap
    where that is larger (the app refuses anything else past ``max_body`` with 413)."""
    from movierec.web.ratings import IMPORT_MAX_BODY

    return max(settings.max_body, IMPORT_MAX_BODY)


def prepare_app(
    settings: Settings | None = None, progress: bool = True, train: bool = True
) -> Flask:
    """The app with every offered model loaded and one recommendation computed.

    Every model the page and the API offer (``Recommenders.choices``) is loaded here,
    before any worker forks; a missing one is trained first in its own spawned process
    (``ensure_model(isolate=True)``), never in this process or a worker. Workers then
    load nothing (:meth:`Recommenders.freeze`). ``train=False``: nothing is trained; a
    missing or unusable default model is a ``ModelError``, any other is left out of
    the offer with one line saying so.
    """
    from movierec.web import create_app
    from movierec.web.services import Recommenders

    settings = settings or load_settings()
    check_database(settings)  # a database behind the code: one line, before any model work
    started = time.perf_counter()
    print(
        f"movierec: preparing {settings.dataset} / {settings.model} in {settings.home}", flush=True
    )

    def loader(dataset: str, model: str, s: Settings) -> tuple[Recommender, Dataset]:
        return ensure_model(dataset, model, s, progress=progress, train=train, isolate=True)

    recommenders = Recommenders(settings, loader=loader)
    load_offered(recommenders)
    app = create_app({"SETTINGS": settings, "RECOMMENDERS": recommenders})
    warm(app)
    print(f"movierec: ready in {time.perf_counter() - started:.1f} s", flush=True)
    return app


def check_database(settings: Settings) -> None:
    """Refuse (``StoreError``, one line saying what to run) a database behind this
    code's schema revision; a brand-new empty one gets the tables."""
    from movierec.store import Store
    from movierec.store.migrate import ensure_current

    store = Store(settings.database_url)
    try:
        ensure_current(store)
    finally:
        store.dispose()


def load_offered(recommenders: Any) -> None:
    """Load every offered model, the default first, then freeze ``recommenders``.

    A model other than the default that cannot be loaded (``--no-train`` and no file,
    or a damaged one) is withdrawn from the offer with one line on stderr.
    """
    default = recommenders.settings.model
    for name in sorted(recommenders.choices, key=lambda n: n != default):
        try:
            recommenders.get(name)
        except MovierecError as exc:
            if name == default:
                raise
            recommenders.withdraw(name)
            print(f"movierec: {exc}; not offering {name!r}", file=sys.stderr, flush=True)
    recommenders.freeze()


def warm(app: Flask) -> None:
    """Load the default model, run one recommendation, draw every first page of cards to
    rate, and build the title search index, so the first visitor waits for none of them (and
    forked workers share them)."""
    from movierec.web.catalogue import get_catalogue
    from movierec.web.services import ONBOARDING_CARDS

    services = app.extensions["movierec"]
    service = services.recommender()
    pool = services.recommenders.onboarding_pool()
    service.recommend({pool[0].movie_id: 4.0, pool[1].movie_id: 2.5}, year="any", n=5)
    # every first page of cards a new visitor can get (also loads the onboarding
    # strategies' compiled kernels): the workers share them instead of each drawing up
    # to FIRST_PAGES of them in visitors' requests (~9 ms each)
    services.onboarding().prepare_first_pages(ONBOARDING_CARDS)
    with app.app_context():
        get_catalogue()


# -- newer model files and retraining --------------------------------------------------
def refresh_models(app: Any) -> list[str]:
    """Swap newer good model files into ``app`` (one line logged for each, and for each
    refused); then build what the new models' pages need (onboarding cards, similar
    movies) before a visitor asks. Returns the names swapped."""
    from movierec.web.catalogue import get_catalogue

    services = app.extensions["movierec"]
    swapped: list[str] = services.recommenders.refresh_all()
    if swapped:
        with app.app_context():
            if services.default_model in swapped:
                services.onboarding()
            extras = get_catalogue()
            for name in swapped:
                extras.similar_for(name, services.recommenders.get(name))
    return swapped


def watch_model_files(app: Any, every: float = MODEL_CHECK_EVERY) -> threading.Thread:
    """A daemon thread running :func:`refresh_models` now and then every ``every`` s
    (jittered by a fifth); an error is logged in one line and the next look goes on."""

    def run() -> None:
        while True:
            try:
                refresh_models(app)
            except Exception as exc:
                log.warning("model files: could not look for newer ones: %s", exc)
            time.sleep(every * random.uniform(0.8, 1.2))

    thread = threading.Thread(target=run, name="model-files", daemon=True)
    thread.start()
    return thread


def _retrainer(app: Any, settings: Settings, every: float) -> Any:
    """The schedule retraining every served model (the default first); after each new
    file this process swaps it into its own copy, from which later workers fork."""
    from movierec.web.retrain import Retrainer

    served = app.extensions["movierec"].recommenders.loaded
    ordered = sorted(served, key=lambda name: name != settings.model)
    print(
        f"movierec: retraining {', '.join(ordered)} with visitors' ratings every "
        f"{_duration(every)}, at low priority, in processes of their own",
        flush=True,
    )
    return Retrainer(every, settings, ordered, on_trained=lambda _model: refresh_models(app))


def _duration(seconds: float) -> str:
    """``21600`` -> ``6 h``, ``1800`` -> ``30 min``, ``90`` -> ``90 s``."""
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g} {unit}"
    return f"{seconds:g} s"


def _poll_in_thread(retrainer: Any) -> None:
    """Single-process serving: the retraining schedule polled from a daemon thread."""

    def run() -> None:
        while True:
            retrainer.poll(time.monotonic())
            time.sleep(1.0)

    threading.Thread(target=run, name="retrain", daemon=True).start()


# -- one worker process ---------------------------------------------------------------
def _worker_main(app: Any, listener: socket.socket, settings: Settings, watch: WorkerWatch) -> None:
    """A forked child: forget what was inherited but cannot be shared, then serve,
    watched by the supervisor through ``watch``."""
    services = app.extensions["movierec"]
    # Pooled database connections belong to the parent: drop them without closing
    # (closing would end the parent's sessions); this process opens its own.
    services.store.engine.dispose(close=False)
    # The TMDB thread pool is created on first use, so normally none exists yet; a
    # pool inherited from the parent has no threads here, so start afresh.
    services.tmdb.close()
    _limit_blas_threads()
    if settings.model_check_every:  # 0: only what the supervisor has (SIGHUP)
        watch_model_files(app, settings.model_check_every)  # a newer file, at start too
    # this process's copy of the app only: its requests compute in turns, timed while run
    app.wsgi_app = watch.track(take_turns(app))
    run_waitress(app, listener, settings, started=watch.serving)


def take_turns(app: Any) -> Any:
    """``app``'s WSGI callable with this process's requests computing one at a time
    (:mod:`movierec.web.turns`): the turn is given up while waiting for TMDB, and for
    each statement of a database across the network."""
    turns = ComputeTurns()
    services = app.extensions["movierec"]
    services.tmdb.waiting = turns.released
    if services.store.dialect != "sqlite":
        turns.release_during_queries(services.store.engine)
    return turns.wrap(app.wsgi_app)


def _limit_blas_threads() -> None:
    """One BLAS thread per worker: requests already run in parallel across processes
    and threads, and OpenBLAS's own pool only adds contention (and waits) on top."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - scikit-learn brings it
        return
    threadpool_limits(1, user_api="blas")


@contextmanager
def _drain_on_sigterm(watch: WorkerWatch) -> Iterator[None]:
    """While serving in-process: SIGTERM stops as it stops every worker of a supervisor
    (no new connection, the accepted ones answered, then waitress's loop ends); Ctrl-C
    stops at once."""
    previous = signal.signal(signal.SIGTERM, watch.on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _address(host: str, port: int) -> str:
    shown = host[:100]
    return f"[{shown}]:{port}" if ":" in shown else f"{shown}:{port}"
