"""``movierec`` command line: data | train | recommend | evaluate | serve | store | db | catalog.

Errors a user can fix (bad arguments or environment, unknown movie, corrupt data, a
database or folder that cannot be used, a port in use) print one line
``movierec: error: ...`` naming the path or URL at fault and exit with code 2; never
a traceback. Settings are read from the environment once, in :func:`main`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from movierec import __version__
from movierec.config import DEFAULT_DATASET, DEFAULT_MODEL, Settings, load_settings
from movierec.errors import InvalidInput, MovierecError, quoted
from movierec.inputs import STARS_RULE, movie_id_text, stars_text

if TYPE_CHECKING:
    from movierec.visitor_ratings import Merged

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse, but errors are one line (no usage dump) with exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def _rating(text: str) -> tuple[int, float]:
    """Parse ``MOVIEID=STARS`` (e.g. ``260=4.5``) by the rules every input follows
    (:mod:`movierec.inputs`: one spelling of a movieId, stars 0.5-5 in half steps)."""
    movie, sep, stars = text.partition("=")
    movie_id = movie_id_text(movie)
    if not sep or movie_id is None:
        raise argparse.ArgumentTypeError(
            f"bad rating {quoted(text)}: expected MOVIEID=STARS, e.g. 260=4.5"
        )
    value = stars_text(stars)
    if value is None:
        raise argparse.ArgumentTypeError(
            f"bad rating {quoted(text)}: stars must be {STARS_RULE}, got {quoted(stars)}"
        )
    return movie_id, value


def _param(text: str) -> tuple[str, object]:
    """Parse ``NAME=VALUE`` model parameters; VALUE as JSON when it parses (numbers, bools)."""
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"bad parameter {text!r}: expected NAME=VALUE")
    try:
        return name, json.loads(value)
    except json.JSONDecodeError:
        return name, value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return value


def _duration(text: str) -> float:
    """Seconds of ``30m`` / ``6h`` / ``1d`` (``--retrain-every``)."""
    from movierec.web.retrain import parse_every

    try:
        return parse_every(text)
    except InvalidInput as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--retrain-every ")) from None


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text[:100]!r}")
    return value


def _port(text: str) -> int:
    value = _positive_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"port must be 1-65535, got {text!r}")
    return value


def build_parser(settings: Settings | None = None) -> argparse.ArgumentParser:
    """The argument parser; ``--help`` shows defaults from ``settings`` (``None``: the
    built-in ones, as when the environment is malformed)."""
    home = f"; now {settings.home}" if settings is not None else ""
    parser = _Parser(
        prog="movierec",
        description="Movie recommendations from MovieLens ratings, with instant fold-in.",
        epilog=f"Environment: MOVIEREC_HOME (data, models, database{home}), "
        "MOVIEREC_DATA_SOURCE (mirror dir/zip/URL), TMDB_API_KEY, DATABASE_URL, SECRET_KEY "
        "and the operating settings in the README.",
    )
    parser.add_argument("--version", action="version", version=f"movierec {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    # data
    data = commands.add_parser("data", help="fetch and inspect MovieLens data sets")
    data_commands = data.add_subparsers(dest="data_command", required=True, parser_class=_Parser)
    fetch = data_commands.add_parser(
        "fetch", help="download (or copy from a mirror) and verify a data set"
    )
    fetch.add_argument(
        "name", help="ml-latest-small, ml-100k, ml-1m, ml-10m, ml-20m, ml-25m, ml-32m or ml-latest"
    )
    fetch.add_argument(
        "--source",
        help="a directory holding <name>/ or <name>.zip, a zip file, or a base URL "
        "(default: $MOVIEREC_DATA_SOURCE, else the official GroupLens site)",
    )
    fetch.add_argument("--force", action="store_true", help="fetch again even if present")
    data_commands.add_parser(
        "list", help="known data sets (releases and synthetic), their sizes and whether fetched"
    )
    synth = data_commands.add_parser(
        "synth",
        help="write a synthetic MovieLens-shaped data set (for tests and benchmarks)",
        description="Write a synthetic data set in ml-25m's CSV layout under "
        "$MOVIEREC_HOME/data/NAME; then --dataset NAME works like a release.",
    )
    synth.add_argument("name", help="name of the new data set, e.g. synth-5m")
    synth.add_argument(
        "--like", default="ml-25m", help="ml-25m (default) or ml-latest-small: catalogue and shape"
    )
    synth.add_argument(
        "--ratings", type=_positive_int, required=True, help="number of ratings (e.g. 25000000)"
    )
    synth.add_argument("--seed", type=_non_negative_int, default=0, help="random seed (default 0)")
    synth.add_argument(
        "--movies", type=_positive_int, help="catalogue size (default: the real set's)"
    )
    synth.add_argument("--force", action="store_true", help="replace an existing set of that name")

    # train
    train = commands.add_parser("train", help="fit a model on a whole data set and save it")
    _dataset_model_args(train, settings)
    train.add_argument(
        "--param",
        "-p",
        action="append",
        type=_param,
        default=[],
        metavar="NAME=VALUE",
        help="model hyper-parameter, e.g. -p n_factors=100 (repeatable)",
    )
    train.add_argument(
        "--engine",
        choices=["local", "spark"],
        default="local",
        help="local: this machine (default); spark: the als model on Spark MLlib "
        "(pip install -e '.[spark]' and Java 17; see docs/spark.md)",
    )
    train.add_argument(
        "--master",
        help="with --engine spark: local[N] (default local[2]) or spark://HOST:7077",
    )
    train.add_argument(
        "--with-visitors",
        action="store_true",
        help="also learn from the site's visitors (DATABASE_URL, as serve uses): each "
        "visitor with 2+ ratings of catalogue movies is one more user; visitors who opted "
        "out are left out; a movie takes visitors' ratings from at most 5%% of all users "
        "(or as many as the data set has of it)",
    )
    train.set_defaults(model=None)  # --engine spark trains als unless told otherwise

    # recommend
    rec = commands.add_parser("recommend", help="recommend movies for a set of ratings")
    _dataset_model_args(rec, settings)
    rec.add_argument(
        "--rate",
        "-r",
        action="append",
        type=_rating,
        default=[],
        metavar="MOVIEID=STARS",
        help="a rating, e.g. --rate 260=4.5 (repeatable; stars 0.5-5 in half steps)",
    )
    rec.add_argument("--year", default="any", help="old (before 2010), new or any")
    rec.add_argument("-n", type=_positive_int, default=5, help="how many movies (default 5)")
    rec.add_argument("--json", action="store_true", help="print JSON instead of a table")

    # evaluate
    ev = commands.add_parser("evaluate", help="measure models (and peers) on standard splits")
    ev.add_argument("--dataset", default="ml-100k", help="data set (default ml-100k)")
    ev.add_argument(
        "--split",
        help="official (ml-100k u1-u5), kfold:K or holdout:FRACTION (default: official for "
        "ml-100k with the rating protocol, else kfold:5)",
    )
    ev.add_argument("--models", default="svd,nmf,popular", help="comma-separated model names")
    ev.add_argument(
        "--peers",
        action="store_true",
        help="add Surprise SVD, SVD++, NMF, KNNBaseline and the original app's method",
    )
    ev.add_argument(
        "--protocol",
        default="rating",
        choices=["rating", "onboarding", "temporal"],
        help="rating: RMSE/MAE + top-N on the split; onboarding: the web app's flow "
        "simulated; temporal: train before --cutoff, fold in later arrivals' first "
        "--first-k ratings, with and without retraining on earlier arrivals (the loop)",
    )
    ev.add_argument(
        "--cutoff",
        default="0.8",
        help="temporal: a date (2015-01-01, UTC) or a fraction of the timeline from the "
        "first to the last rating (default 0.8)",
    )
    ev.add_argument(
        "--first-k",
        type=_positive_int,
        default=5,
        help="temporal: each arriving visitor's first ratings folded in (default 5)",
    )
    ev.add_argument(
        "--steps",
        type=_positive_int,
        default=4,
        help="temporal: equal stretches of time after the cutoff; the loop retrains at "
        "each one's start (default 4)",
    )
    ev.add_argument(
        "--min-ratings",
        type=int,
        default=0,
        help="never recommend movies with fewer training ratings (the web app uses 20)",
    )
    ev.add_argument(
        "--strategy",
        help="onboarding strategies to compare, comma-separated (random-top, popular, "
        "pop-entropy, adaptive): asks --per-round movies per round for --rounds rounds",
    )
    ev.add_argument(
        "--rounds", type=_positive_int, default=3, help="rounds asked per user (default 3)"
    )
    ev.add_argument(
        "--per-round", type=_positive_int, default=5, help="movies asked per round (default 5)"
    )
    ev.add_argument("--out", type=Path, help="write report.md, results.json and plots here")
    ev.add_argument("--seed", type=int, default=0, help="random seed for splits and models")

    # serve
    serve = commands.add_parser(
        "serve",
        help="start the web app (fetches data and trains the model on first run; gives an "
        "empty database its tables, refuses one behind this code: see db upgrade)",
        description="Serve the web app with waitress in --workers processes. Operators: "
        "GET /healthz, GET /readyz, and GET /metrics when MOVIEREC_METRICS_TOKEN is set; "
        "one access-log line per request (MOVIEREC_LOG_FORMAT=json for JSON).",
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=_port, default=5000)
    serve.add_argument(
        "--no-train",
        dest="train",
        action="store_false",
        help="never train at start: exit 2 if the default model's file is missing or "
        "damaged; other models without a file are not offered",
    )
    serve.add_argument(
        "--workers",
        type=_positive_int,
        help="server processes (default $MOVIEREC_WORKERS"
        + (f", now {settings.workers})" if settings is not None else ")"),
    )
    serve.add_argument(
        "--retrain-every",
        type=_duration,
        metavar="DURATION",
        help="retrain the served models with visitors' ratings this often (30m, 6h, 1d), "
        "each in its own low-priority process; workers take a new model within seconds, "
        "without a restart, and a failed training keeps the old one (default: never)",
    )

    # store
    store = commands.add_parser("store", help="look after the database of visitors")
    store_commands = store.add_subparsers(dest="store_command", required=True, parser_class=_Parser)
    prune = store_commands.add_parser(
        "prune",
        help="forget visitors idle for $MOVIEREC_RETENTION_DAYS days (with their ratings) "
        "and shown picks beyond $MOVIEREC_SHOWN_PER_VISITOR per visitor",
    )
    prune.add_argument("--dry-run", action="store_true", help="only count what would be removed")

    # db
    db = commands.add_parser(
        "db",
        help="schema migrations of the database (DATABASE_URL, else the SQLite file in "
        "MOVIEREC_HOME)",
    )
    db_commands = db.add_subparsers(dest="db_command", required=True, parser_class=_Parser)
    db_commands.add_parser(
        "upgrade",
        help="run the migrations the database lacks (a database made before migrations is "
        "adopted as it is); serve refuses a database behind this code until this is run",
    )
    db_commands.add_parser(
        "current",
        help="print the database's schema revision and whether it is this code's; exit 0 "
        "when current, 1 when the database needs `movierec db upgrade` (or is newer)",
    )

    # catalog
    dataset = settings.dataset if settings is not None else DEFAULT_DATASET
    catalog = commands.add_parser(
        "catalog",
        help="add movies the data set lacks (kept in MOVIEREC_HOME/data/<dataset>.added.csv; "
        "a running serve picks them up within seconds)",
    )
    catalog_commands = catalog.add_subparsers(
        dest="catalog_command", required=True, parser_class=_Parser
    )
    add = catalog_commands.add_parser(
        "add",
        help="add movies from TMDB (needs TMDB_API_KEY or TMDB_READ_TOKEN) or from a CSV with "
        "the columns title,year,genres,imdbId,tmdbId (genres pipe-separated, as MovieLens's); "
        "all or nothing: a duplicate or a bad row adds none",
    )
    source = add.add_mutually_exclusive_group(required=True)
    source.add_argument("--tmdb", type=_positive_int, action="append", metavar="ID",
                        help="a TMDB movie id (repeat for more)")  # fmt: skip
    source.add_argument("--csv", type=Path, metavar="FILE", help="a CSV of movies to add")
    add.add_argument("--dataset", "-d", default=dataset, help=f"data set (default {dataset})")
    listed = catalog_commands.add_parser("list-added", help="the movies added to a data set")
    listed.add_argument("--dataset", "-d", default=dataset, help=f"data set (default {dataset})")
    return parser


def _dataset_model_args(parser: argparse.ArgumentParser, settings: Settings | None) -> None:
    dataset = settings.dataset if settings is not None else DEFAULT_DATASET
    model = settings.model if settings is not None else DEFAULT_MODEL
    parser.add_argument("--dataset", "-d", default=dataset, help=f"data set (default {dataset})")
    parser.add_argument("--model", "-m", default=model, help=f"model name (default {model})")


# -- commands ---------------------------------------------------------------------
def _cmd_data(args: argparse.Namespace, settings: Settings) -> int:
    from movierec.data import dataset_dir, fetch_dataset, get_spec, is_fetched
    from movierec.data.movielens import available_datasets, synthetic_datasets

    if args.data_command == "list":
        print(f"{'name':18} {'ratings':>11} {'users':>8} {'movies':>7} {'state':11} folder")
        for name in available_datasets() + synthetic_datasets(settings.home):
            spec = get_spec(name, home=settings.home)
            folder = dataset_dir(name, settings.home)
            state = "fetched" if is_fetched(spec, folder) else "not fetched"
            state = "synthetic" if spec.synthetic else state
            counts = [f"{n:,}" if n else "-" for n in (spec.ratings, spec.users, spec.movies)]
            print(f"{name:18} {counts[0]:>11} {counts[1]:>8} {counts[2]:>7} {state:11} {folder}")
        return 0
    if args.data_command == "synth":
        from movierec.data.synth import synthesize

        made = synthesize(
            args.name,
            args.ratings,
            like=args.like,
            seed=args.seed,
            home=settings.home,
            n_movies=args.movies,
            force=args.force,
        )
        print(
            f"{args.name}: {made.ratings:,} ratings by {made.users:,} users on {made.movies:,} "
            f"movies, {made.tags:,} tags (like {args.like}, seed {args.seed}) in {made.folder}"
        )
        return 0
    path = fetch_dataset(
        args.name,
        source=args.source or settings.data_source,
        home=settings.home,
        force=args.force,
    )
    print(f"{args.name}: verified in {path}")
    return 0


def _cmd_train(args: argparse.Namespace, settings: Settings) -> int:
    from movierec import models
    from movierec.data import load_dataset
    from movierec.training import train_model, with_visitors

    if args.engine == "spark":
        if args.with_visitors:
            raise InvalidInput("--with-visitors trains locally only, not with --engine spark")
        return _train_on_spark(args, settings)
    if args.master is not None:
        raise InvalidInput("--master needs --engine spark", field="master")
    args.model = args.model or settings.model
    models.model_class(args.model)
    dataset = load_dataset(args.dataset, home=settings.home)
    merged = None
    if args.with_visitors:
        dataset, merged = with_visitors(dataset, settings.database_url)
    with _naming(f"cannot save the model into {settings.models_dir}"):
        model, path = train_model(
            dataset, args.model, settings, progress=True,
            trained_on=merged.figures() if merged else None, **dict(args.param),
        )  # fmt: skip
    print(
        f"trained {model.name} on {args.dataset} ({dataset.ratings.nnz:,} ratings, "
        f"{dataset.ratings.n_users:,} users, {dataset.ratings.n_items:,} movies); saved {path}"
    )
    if merged is not None:
        print(_visitors_line(merged))
    return 0


def _visitors_line(merged: Merged) -> str:
    """``users: 610 from the data set + 40 visitors (812 ratings); left out: opted out:
    2 visitors, ...``."""
    out = merged.left_out
    left = [
        f"opted out: {out.get('opted_out', 0):,} visitors",
        f"under {merged.min_visitor_ratings} ratings: {out.get('few_ratings', 0):,} visitors",
        f"movies outside the catalogue: {out.get('not_in_catalogue', 0):,} ratings",
    ]
    if "held_back" in out:
        left.append(f"held back to bound influence: {out['held_back']:,} ratings")
    return (
        f"users: {merged.dataset_users:,} from the data set + {merged.visitors:,} visitors "
        f"({merged.visitor_ratings:,} ratings); left out: {', '.join(left)}"
    )


def _train_on_spark(args: argparse.Namespace, settings: Settings) -> int:
    """``train --engine spark``: the ``als`` model fitted by Spark MLlib, saved where
    ``serve`` and ``recommend --model als`` look."""
    from movierec.spark_engine import DEFAULT_MASTER, summary, train_dataset

    if args.model not in (None, "als"):
        raise InvalidInput(
            f"--engine spark trains the als model only, not {args.model[:100]!r}", field="model"
        )
    with _naming(f"cannot save the model into {settings.models_dir}"):
        model, path, seconds = train_dataset(
            args.dataset, master=args.master or DEFAULT_MASTER, settings=settings,
            **dict(args.param),
        )  # fmt: skip
    print(summary(model, args.dataset, path, seconds))
    return 0


def _cmd_recommend(args: argparse.Namespace, settings: Settings) -> int:
    from movierec.recommend import RecommendService, validate_year
    from movierec.training import ensure_model

    validate_year(args.year)
    with _naming(f"cannot prepare the model in {settings.models_dir}"):
        model, dataset = ensure_model(args.dataset, args.model, settings, progress=True)
    service = RecommendService(model, dataset.catalog)
    result = service.recommend(dict(args.rate), year=args.year, n=args.n)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
        return 0
    if result.message:
        print(result.message)
    for rank, rec in enumerate(result.items, 1):
        movie = rec.movie
        year = movie.year if movie.year is not None else "----"
        chance = "    " if rec.like_probability is None else f"{rec.like_probability:4.0%}"
        print(
            f"{rank:2}. {chance}  {rec.predicted_stars:4.2f}*  {movie.title}  [{year}]  "
            f"{'|'.join(movie.genres)}"
        )
        print(f"    {rec.reason}")
    if any(rec.like_probability is not None for rec in result.items):
        print("(%: the chance people with ratings like these gave it 4 stars or more)")
    return 0


def _cmd_evaluate(args: argparse.Namespace, settings: Settings) -> int:
    from movierec.evaluate import format_table, parse_split, run_evaluation

    if args.split is not None:
        parse_split(args.split)
    names = [m.strip() for m in args.models.split(",") if m.strip()]
    if args.protocol == "temporal":
        from movierec.evaluate.temporal import format_temporal, run_temporal

        if args.split is not None or args.strategy is not None:
            raise InvalidInput(
                "the temporal protocol splits by --cutoff and --steps; drop --split and --strategy",
                field="protocol",
            )

        temporal = run_temporal(
            dataset=args.dataset,
            models=names,
            peers=args.peers,
            cutoff=args.cutoff,
            first_k=args.first_k,
            steps=args.steps,
            out=args.out,
            home=settings.home,
            seed=args.seed,
            min_ratings=args.min_ratings,
        )
        print(format_temporal(temporal))
        if args.out:
            print(f"report written to {args.out / 'report.md'}")
        return 0
    result = run_evaluation(
        dataset=args.dataset,
        split=args.split,
        models=names,
        peers=args.peers,
        protocol=args.protocol,
        out=args.out,
        progress=True,
        home=settings.home,
        seed=args.seed,
        min_ratings=args.min_ratings,
        strategies=args.strategy,
        rounds=args.rounds,
        per_round=args.per_round,
    )
    print(format_table(result))
    if args.out:
        print(f"report written to {args.out / 'report.md'}")
    return 0


def _cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from movierec.web.serve import serve

    with _naming(f"cannot serve on {args.host[:100]}:{args.port}"):
        serve(
            host=args.host,
            port=args.port,
            settings=settings,
            train=args.train,
            workers=args.workers or settings.workers,
            retrain_every=args.retrain_every,
        )
    return 0


@contextlib.contextmanager
def _naming(doing: str) -> Iterator[None]:
    """Turn an OSError that names no path (a socket's, or one raised while a zip is
    written) into ``<doing>: <reason>``; one with a path goes on to :func:`error_line`."""
    try:
        yield
    except OSError as exc:
        if exc.filename is not None:
            raise
        raise MovierecError(f"{doing}: {exc.strerror or exc}") from None


def _cmd_store(args: argparse.Namespace, settings: Settings) -> int:
    from movierec.store import Store
    from movierec.store.migrate import ensure_current
    from movierec.store.retention import prune

    store = Store(settings.database_url)
    try:
        ensure_current(store)
        removed = prune(
            store,
            retention_days=settings.retention_days,
            shown_per_visitor=settings.shown_per_visitor,
            dry_run=args.dry_run,
        )
    finally:
        store.dispose()
    print(
        f"{'would remove' if args.dry_run else 'removed'} {removed.visitors:,} visitors "
        f"idle for {settings.retention_days:,} days with {removed.ratings:,} ratings, "
        f"{removed.watchlist:,} watchlist entries, {removed.hidden:,} hidden movies and "
        f"{removed.import_reports:,} import reports, and {removed.shown:,} shown picks "
        f"(keeping {settings.shown_per_visitor:,} per visitor) from {store.safe_url}"
    )
    return 0


def _cmd_db(args: argparse.Namespace, settings: Settings) -> int:
    from movierec.store import Store
    from movierec.store.migrate import status, upgrade

    store = Store(settings.database_url)
    try:
        if args.db_command == "current":
            found = status(store)
            print(f"{store.safe_url}: {found.describe()}")
            # 1 when not current, so a deploy script can check before starting serve
            return 0 if found.state == "current" and not found.missing else 1
        before, after = upgrade(store)
    finally:
        store.dispose()
    if before.state == "current":
        print(f"{store.safe_url}: already {after.describe()}")
    else:
        print(f"{store.safe_url}: upgraded from {before.describe()}; now {after.describe()}")
    return 0


def _cmd_catalog(args: argparse.Namespace, settings: Settings) -> int:
    from movierec.data import dataset_dir, load_dataset
    from movierec.data.added import (
        add_movies,
        added_path,
        from_tmdb,
        genre_vocabulary,
        imdb_numbers,
        read_added,
        read_new_movies,
    )

    path = added_path(args.dataset, settings.home)
    if args.catalog_command == "list-added":
        added = read_added(path)
        for m in added:
            links = f"tt{m.imdb_id:07d}" if m.imdb_id else "-", m.tmdb_id or "-"
            named = "|".join(m.genres) or "-"
            print(f"{m.movie_id}  {m.title} ({m.year or '?'})  {named}  imdb {links[0]}  "
                  f"tmdb {links[1]}  added {m.added_at}")  # fmt: skip
        print(f"{len(added)} movie(s) added to {args.dataset} ({path})")
        return 0
    dataset = load_dataset(args.dataset, home=settings.home, progress=False)
    genres = genre_vocabulary(dataset.catalog.without_added())
    if args.csv is not None:
        new = read_new_movies(args.csv, genres)
    else:
        new = [from_tmdb(_tmdb_details(tmdb_id, settings), genres) for tmdb_id in args.tmdb]
    imdb_of = imdb_numbers(dataset_dir(args.dataset, settings.home))
    added = add_movies(path, dataset.catalog, new, imdb_of)
    for m in added:
        print(f"added {m.movie_id}: {m.title} ({m.year or '?'}) {'|'.join(m.genres) or '-'}")
    total = len(read_added(path))
    print(f"{len(added)} movie(s) added to {args.dataset}; {total} added in all ({path})")
    return 0


def _tmdb_details(tmdb_id: int, settings: Settings) -> dict[str, Any]:
    """TMDB's details of one movie, or ``InvalidInput`` naming the id TMDB does not know."""
    from movierec.tmdb import TmdbClient, TmdbUnavailable

    client = TmdbClient(
        api_key=settings.tmdb_api_key,
        read_token=settings.tmdb_read_token,
        base_url=settings.tmdb_url,
        timeout=10.0,
    )
    if not client.configured:
        raise InvalidInput(
            "catalog add --tmdb needs TMDB_API_KEY or TMDB_READ_TOKEN; without a key, "
            "use --csv FILE",
            field="tmdb",
        )
    try:
        details = client.movie_details(tmdb_id)
    except TmdbUnavailable as exc:
        raise MovierecError(f"{exc} ({settings.tmdb_url}); nothing was added") from None
    if details is None:
        raise InvalidInput(f"TMDB has no movie with id {tmdb_id}; nothing was added", "tmdb")
    return details


COMMANDS = {
    "catalog": _cmd_catalog,
    "data": _cmd_data,
    "train": _cmd_train,
    "recommend": _cmd_recommend,
    "evaluate": _cmd_evaluate,
    "serve": _cmd_serve,
    "store": _cmd_store,
    "db": _cmd_db,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``movierec`` console script; returns the exit code."""
    try:
        settings: Settings | None = load_settings()
        bad_settings = None
    except InvalidInput as exc:  # still parse, so --help and --version work
        settings, bad_settings = None, exc
    args = build_parser(settings).parse_args(argv)
    if settings is None:
        return _fail(str(bad_settings))
    try:
        return COMMANDS[args.command](args, settings)
    except KeyboardInterrupt:
        print("movierec: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        message = error_line(exc, settings)
        if message is None:  # a bug, not the user's problem: keep the traceback
            raise
        return _fail(message)


def error_line(exc: BaseException, settings: Settings) -> str | None:
    """The one-line message for an error the user can fix, or ``None`` for a bug.

    MovierecError says what it means; an OSError (no permission, disk full, not a
    directory, address in use) names its path and reason; a database error that got
    past the store names the database URL (without its password).
    """
    if isinstance(exc, MovierecError):
        return str(exc)
    if isinstance(exc, OSError):
        return _os_error_line(exc)
    if _is_database_error(exc):
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        return f"cannot use the database at {_safe_url(settings.database_url)}: " + (
            reason[0] if reason else type(exc).__name__
        )
    return None


def _os_error_line(exc: OSError) -> str:
    reason = exc.strerror or str(exc) or type(exc).__name__
    if exc.filename is None:
        return reason
    paths = [str(exc.filename)] + ([str(exc.filename2)] if exc.filename2 is not None else [])
    return f"{' -> '.join(paths)}: {reason}"


def _is_database_error(exc: BaseException) -> bool:
    """An SQLAlchemy or sqlite3 error (checked without importing SQLAlchemy needlessly)."""
    import sqlite3

    if isinstance(exc, sqlite3.Error):
        return True
    sa_exc = sys.modules.get("sqlalchemy.exc")
    return sa_exc is not None and isinstance(exc, sa_exc.SQLAlchemyError)


def _safe_url(url: str) -> str:
    try:
        from movierec.store.db import safe_url

        return safe_url(url)
    except Exception:  # a URL SQLAlchemy cannot even parse: show its scheme only
        return url.partition(":")[0][:20] + ":..."


def _fail(message: str) -> int:
    """Print ``movierec: error: <message>`` on one line; return the usage exit code."""
    line = " ".join(part.strip() for part in message.splitlines() if part.strip())
    print(f"movierec: error: {line}", file=sys.stderr)
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
