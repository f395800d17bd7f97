"""What bench scripts share: where MovieLens comes from by default, how seeds are given,
and the toolkit every script times with: a stopwatch (wall and CPU), repeated timed
calls, percentiles, a throw-away ``MOVIEREC_HOME``, the web app in process with one
visitor's ratings, and the markdown tables docs/benchmarks.md pastes, headed by the
command that printed them (:func:`header`).

Scripts run from ``bench/`` (``python bench/latency.py``), so they import this module as
``common``. Times are seconds unless a name says ``_ms``; percentiles are numpy's
(linear between the closest ranks).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import os
import re
import shlex
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
#: the rate limit of a benched app (every request comes from one address), as load.py's
BENCH_RATE_LIMIT = "1000000/minute"


def default_source() -> str | None:
    """``$MOVIEREC_DATA_SOURCE``, else ``../shared/data`` beside the repo if it exists."""
    source = os.environ.get("MOVIEREC_DATA_SOURCE")
    if source:
        return source
    fallback = REPO.parent / "shared" / "data"
    return str(fallback) if fallback.is_dir() else None


def seed_range(text: str) -> list[int]:
    """``"0-9"`` or ``"0,3,5"`` -> the seeds; anything else: argparse's error (exit 2)."""
    try:
        if "-" in text:
            first, last = (int(x) for x in text.split("-"))
            seeds = list(range(first, last + 1))
        else:
            seeds = [int(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: seeds as 0-9 or 0,3,5") from None
    if not seeds or min(seeds) < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: seeds as 0-9 or 0,3,5")
    return seeds


# -- timing ---------------------------------------------------------------------------------
@dataclass
class Stopwatch:
    """What :func:`stopwatch` measured: ``wall`` and ``cpu`` seconds (0 until it stops)."""

    wall: float = 0.0
    cpu: float = 0.0

    @property
    def wall_ms(self) -> float:
        return 1000 * self.wall

    @property
    def cpu_ms(self) -> float:
        return 1000 * self.cpu


@contextmanager
def stopwatch(cpu_clock: Callable[[], float] = time.process_time) -> Iterator[Stopwatch]:
    """Time the ``with`` block: wall seconds (``perf_counter``) and CPU seconds of
    ``cpu_clock`` (default the whole process's; ``time.thread_time`` for this thread
    alone), filled in when the block ends."""
    watch = Stopwatch()
    wall, cpu = time.perf_counter(), cpu_clock()
    try:
        yield watch
    finally:
        watch.wall = time.perf_counter() - wall
        watch.cpu = cpu_clock() - cpu


def time_calls(
    call: Callable[[], Any], repeat: int, warmup: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """``(wall_ms, cpu_ms)``, each ``(repeat,)`` float64: ``call()`` timed alone
    ``repeat`` times after ``warmup`` untimed calls; CPU is this thread's
    (``thread_time``: what the call cost, not other threads')."""
    for _ in range(warmup):
        call()
    wall = np.empty(repeat, dtype=np.float64)
    cpu = np.empty(repeat, dtype=np.float64)
    for i in range(repeat):
        with stopwatch(time.thread_time) as watch:
            call()
        wall[i], cpu[i] = watch.wall_ms, watch.cpu_ms
    return wall, cpu


def percentiles(
    values: Sequence[float] | np.ndarray, qs: Sequence[float] = (50, 99)
) -> list[float]:
    """The ``qs`` percentiles (0-100) of ``values``, numpy's linear interpolation."""
    if len(values) == 0:
        return [float("nan")] * len(qs)
    return [float(v) for v in np.percentile(np.asarray(values, dtype=np.float64), list(qs))]


# -- a throw-away home ------------------------------------------------------------------------
@contextmanager
def temp_home(prefix: str = "movierec-bench-") -> Iterator[Path]:
    """A temporary directory for ``MOVIEREC_HOME`` (data copies, models, a database),
    removed when the block ends."""
    with tempfile.TemporaryDirectory(prefix=prefix) as home:
        yield Path(home)


# -- the web app in process --------------------------------------------------------------------
def build_app(settings: Any) -> Any:
    """The Flask app for ``settings`` (a ``movierec.config.Settings``) with its model loaded
    (fetched / trained first if missing) and every movie's TMDB answer cached, TMDB
    answered by the in-process fake: the figures are the app's own work."""
    # imported here: most scripts never start the web app
    from movierec.store import repo
    from movierec.training import ensure_model
    from movierec.web import create_app
    from movierec.web.services import Recommenders
    from movierec.web.testing import FakeTmdb

    print(
        f"preparing {settings.dataset} / {settings.model} in {settings.home} ...",
        file=sys.stderr,
        flush=True,
    )
    recommenders = Recommenders(settings, loader=lambda d, m, s: ensure_model(d, m, s))
    if not (settings.tmdb_api_key or settings.tmdb_read_token):
        settings = dataclasses.replace(settings, tmdb_api_key="fake-key")  # the fake TMDB's
    fake = FakeTmdb()
    app = create_app(
        {
            "SETTINGS": settings,
            "RECOMMENDERS": recommenders,
            "TESTING": True,
            "SECRET_KEY": "bench",
            "TMDB_TRANSPORT": fake,
        }
    )
    services = app.extensions["movierec"]
    services.recommender()
    catalog = services.recommenders.catalog
    expires = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=1)
    with services.store.session() as db:
        for tmdb_id in catalog.frame["tmdb_id"].dropna().astype(int).unique():
            info = services.tmdb.client.movie_info(int(tmdb_id))
            repo.cache_put(db, int(tmdb_id), info.to_payload(), expires)
    fake.calls.clear()
    return app


def csrf_token(client: Any) -> str:
    """The CSRF token of ``client``'s session, read from the rating page (``GET /``)."""
    page = client.get("/").get_data(as_text=True)
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    if found is None:
        raise SystemExit("GET / has no csrf_token field")
    return found.group(1)


@dataclass
class RatedClient:
    """What :func:`build_rated_client` yields: the app, its settings (the temporary
    database's URL filled in), a test client whose visitor has rated, and its CSRF token."""

    app: Any
    settings: Any
    client: Any
    token: str


@contextmanager
def build_rated_client(
    settings: Any, ratings: Mapping[int, float], **changes: Any
) -> Iterator[RatedClient]:
    """The app of ``settings`` (rate limit raised, new visitors unlimited, ``changes``
    applied, a temporary SQLite database) and one visitor who submitted ``ratings``
    (movieId: stars) through the rating form, year "any". The store is closed and the
    temporary home removed when the block ends."""
    settings = dataclasses.replace(
        settings, rate_limit=BENCH_RATE_LIMIT, new_visitors_per_hour=1_000_000, **changes
    )
    with temp_home() as tmp:
        settings = dataclasses.replace(settings, database_url=f"sqlite:///{tmp / 'bench.db'}")
        app = build_app(settings)
        client = app.test_client()
        token = csrf_token(client)
        form = {"csrf_token": token, "year": "any"}
        form.update({f"rating-{m}": str(s) for m, s in ratings.items()})
        answer = client.post("/recommendations", data=form)
        if answer.status_code != 303:
            raise SystemExit(f"POST /recommendations answered {answer.status_code}, not 303")
        try:
            yield RatedClient(app, settings, client, token)
        finally:
            app.extensions["movierec"].store.dispose()


# -- tables -----------------------------------------------------------------------------------
def header(argv: Sequence[str] | None = None, script: str | None = None) -> str:
    """Print (and return) the line a pasted table starts with, then a blank line: the
    command that printed it (``argv`` default ``sys.argv[1:]``, ``script`` default
    ``sys.argv[0]``'s name), the date (UTC), the machine's cores and its 1-minute load
    average."""
    args = sys.argv[1:] if argv is None else list(argv)
    name = Path(sys.argv[0]).name if script is None else script
    command = shlex.join(["python", f"bench/{name}", *args])
    today = datetime.datetime.now(datetime.UTC).date().isoformat()
    load = os.getloadavg()[0]
    line = f"`{command}` ({today}, {os.cpu_count()} cores, load average {load:.1f})"
    print(line + "\n", flush=True)
    return line


def ratio(value: float, base: float, digits: int = 2) -> str:
    """``value / base`` as a table cell, ``"1.38x"``; ``"n/a"`` when ``base`` is 0."""
    return f"{value / base:.{digits}f}x" if base else "n/a"


def latency_rows(
    timed: Sequence[tuple[str, Sequence[float] | np.ndarray]], digits: int = 1
) -> list[tuple[str, str, str, str]]:
    """``(name, p50, p99, p50 / the first row's p50)`` per ``(name, milliseconds)`` of
    ``timed``: the rows of a "what it costs against the plain case" table."""
    base = percentiles(timed[0][1], [50])[0]
    rows = []
    for name, values in timed:
        p50, p99 = percentiles(values, [50, 99])
        rows.append((name, f"{p50:.{digits}f}", f"{p99:.{digits}f}", ratio(p50, base)))
    return rows


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A markdown table (what docs/benchmarks.md pastes): floats as given by the caller
    (format them first), numbers right-aligned, text left-aligned."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    numeric = [bool(cells) and all(_is_number(r[i]) for r in cells) for i in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ]
        return "| " + " | ".join(parts) + " |"

    rule = (
        "|"
        + "|".join(
            ("-" * (w + 1) + ":") if n else ("-" * (w + 2))
            for w, n in zip(widths, numeric, strict=True)
        )
        + "|"
    )
    return "\n".join([line(list(headers)), rule, *(line(r) for r in cells)])


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Print :func:`markdown_table` with a blank line before and after (so the lines
    around it stay out of the table when pasted into markdown)."""
    print(f"\n{markdown_table(headers, rows)}\n", flush=True)


def _is_number(text: str) -> bool:
    try:
        float(text.replace(",", "").rstrip("x%"))
    except ValueError:
        return False
    return True
