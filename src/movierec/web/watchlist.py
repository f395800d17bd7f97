"""The watchlist ("Want to see") and where to watch (HTML pages).

- ``POST /watchlist/add`` / ``POST /watchlist/remove`` (``movie_id``, ``next``; CSRF):
  put a movie on the visitor's watchlist or take it off, then 303 back to ``next`` (a path
  on this site). A ``fetch`` asking for JSON (``Accept: application/json``) gets
  ``{"movie_id", "on_watchlist", "count"}`` instead, so the button changes in place.
- ``GET /watchlist?sort=added|title|year|match&order=asc|desc``: the watchlist with where
  to watch each movie in the visitor's country; ``match`` is the predicted stars from the
  visitor's ratings (the default model, the same fold-in as the picks).
- ``GET /watchlist/export.csv``: ``Title,Year,tmdbID,imdbID,movieId,Added`` (ISO 8601
  dates); Letterboxd's importer reads the first four columns.
- ``GET|POST /watchlist/import``: a Letterboxd ``watchlist.csv`` or an IMDb watchlist
  export (:func:`movierec.imports.read_watchlist`), matched movies added (at most
  ``MAX_WATCHLIST`` in all), 303 to the watchlist with what matched and what did not.
- ``GET|POST /where-to-watch``: the visitor's country (``region``: two letters, or empty
  for "from my browser") and services (``service`` checkboxes: TMDB provider ids).

The country is the visitor's choice (``visitors.region``), else the first country in
their ``Accept-Language`` (``en-GB`` -> GB), else ``MOVIEREC_REGION``. Provider data is
TMDB's, from JustWatch; pages showing it credit both. Without a TMDB key nothing of it is
shown (the watchlist works the same).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flask import (
    Blueprint,
    Response,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.sansio.blueprints import BlueprintSetupState
from flask.typing import ResponseReturnValue
from sqlalchemy.orm import Session

from movierec.data import Movie
from movierec.errors import InvalidInput, quoted
from movierec.imports import MAX_BYTES, WATCHLIST_FORMATS, read_watchlist
from movierec.inputs import movie_id_text
from movierec.recommend import Recommendation
from movierec.search import fold, without_article
from movierec.store import repo
from movierec.tmdb import OFFER_KINDS, OFFER_LABELS, MovieInfo, WatchOptions
from movierec.web.cards import info_for, movie_card, tmdb_ids
from movierec.web.catalogue import get_catalogue
from movierec.web.redirects import safe_next
from movierec.web.services import Services, get_services
from movierec.web.visitor import forget_lists, known_row, visitor_id, visitor_lists

bp = Blueprint("watchlist", __name__)

SORTS = ("added", "title", "year", "match")
#: movies one visitor's watchlist may hold (an import adds up to it and says so)
MAX_WATCHLIST = 2000
FORMAT_LABELS = {
    "letterboxd": "Letterboxd watchlist.csv",
    "imdb": "IMDb watchlist export (CSV)",
}
#: how the import's message names a format it read from the header
READ_AS = {"letterboxd": "a Letterboxd watchlist.csv", "imdb": "an IMDb watchlist export"}
#: a country code as forms and settings take it
REGION = re.compile(r"[A-Za-z]{2}")
#: a language tag's country part: ``en-GB``, ``pt_BR``, ``es-419`` has none
_TAG_REGION = re.compile(r"[A-Za-z]{2,3}[-_]([A-Za-z]{2})(?:[-_].*)?")
#: services a visitor may tick
MAX_SERVICES = 100
#: unmatched rows named in the import's message
UNMATCHED_NAMED = 5


@dataclass(frozen=True)
class WatchContext:
    """Where this visitor watches: ``region`` (two letters) and how it was chosen
    (``"visitor"``, ``"browser"`` or ``"site"``), their ``services`` (provider ids), and
    whether TMDB is configured at all."""

    region: str
    source: str
    services: tuple[int, ...]
    configured: bool


def region_from_languages(languages: Iterable[str]) -> str | None:
    """The country of the first language tag that names one (``en-GB`` -> ``GB``)."""
    for tag in languages:
        match = _TAG_REGION.fullmatch(tag.strip())
        if match:
            return match.group(1).upper()
    return None


def watch_context(db: Session | None = None) -> WatchContext:
    """This request's :class:`WatchContext` (read once per request)."""
    found: WatchContext | None = g.get("watch_context")
    if found is not None:
        return found
    services = get_services()
    visitor = session.get("visitor")
    chosen = repo.WatchSettings(None, None)
    if isinstance(visitor, str):
        row = known_row(db or services.store.scoped, visitor)
        if row is not None:
            chosen = repo.WatchSettings(row.region, row.services)
    browser = region_from_languages(lang for lang, _q in request.accept_languages)
    if chosen.region:
        region, source = chosen.region, "visitor"
    elif browser:
        region, source = browser, "browser"
    else:
        region, source = services.settings.region, "site"
    context = WatchContext(
        region=region,
        source=source,
        services=tuple(chosen.services or ()),
        configured=services.tmdb.configured,
    )
    g.watch_context = context
    return context


def watch_summary(info: MovieInfo | None, context: WatchContext) -> dict[str, Any] | None:
    """What a card shows of where to watch in the visitor's country, or None (no TMDB,
    not known in time, or nowhere): ``{"region", "link", "offers": [{"kind", "label",
    "names"}], "mine": [service names that include it]}``."""
    if not context.configured or info is None or info.providers is None:
        return None  # providers not asked for yet: say nothing rather than "nowhere"
    options = info.watch_options(context.region)
    if options is None:
        return {"region": context.region, "link": None, "offers": [], "mine": []}
    return _summary(options, context)


def _summary(options: WatchOptions, context: WatchContext) -> dict[str, Any]:
    offers = [
        {
            "kind": kind,
            "label": OFFER_LABELS[kind],
            "names": [name for _pid, name in options.offers[kind]],
        }
        for kind in OFFER_KINDS
        if options.offers.get(kind)
    ]
    return {
        "region": options.region,
        "link": options.link,
        "offers": offers,
        "mine": options.included_with(context.services),
    }


Narrow = Callable[[Sequence[Recommendation]], list[Recommendation]]


def on_my_services(services: Services, context: WatchContext) -> tuple[Narrow, dict[str, int]]:
    """A ``narrow`` for :meth:`Visits.picks`: keeps the picks one of the visitor's services
    includes in their country; ``counts["unchecked"]`` says how many picks' providers were
    not known in time (left out, asked for in the background)."""
    counts = {"unchecked": 0}

    def narrow(picks: Sequence[Recommendation]) -> list[Recommendation]:
        infos = services.tmdb.info_many(tmdb_ids(r.movie for r in picks))
        kept = []
        for rec in picks:
            info = info_for(rec.movie, infos)
            if info is None or info.providers is None:
                counts["unchecked"] += 1
                continue
            options = info.watch_options(context.region)
            if options is not None and options.included_with(context.services):
                kept.append(rec)
        return kept

    return narrow, counts


def watchlist_ids() -> set[int]:
    """This request's visitor's watchlist (read once per request; empty without one)."""
    return visitor_lists(get_services().store.scoped).watchlist


def on_watchlist(movie_id: int) -> bool:
    """Whether this request's visitor has ``movie_id`` on their watchlist (templates)."""
    return int(movie_id) in watchlist_ids()


@bp.record_once
def _template_globals(state: BlueprintSetupState) -> None:
    """Globals, so that imported macros (which get no context) see them too."""
    state.app.jinja_env.globals.update(
        on_watchlist=on_watchlist,
        tmdb_configured=lambda: get_services().tmdb.configured,
    )


# -- add / remove -------------------------------------------------------------------------
@bp.post("/watchlist/add")
def add() -> ResponseReturnValue:
    """Put one movie on the watchlist; 303 back (or JSON for a fetch)."""
    return _change(add=True)


@bp.post("/watchlist/remove")
def remove() -> ResponseReturnValue:
    """Take one movie off the watchlist; 303 back (or JSON for a fetch)."""
    return _change(add=False)


def _change(add: bool) -> ResponseReturnValue:
    services = get_services()
    movie = _form_movie(services, request.form.get("movie_id", ""))
    back = safe_next(request.form.get("next"), url_for("watchlist.index"))
    db = services.store.scoped
    visitor = visitor_id(db, create=add)
    count = 0
    if visitor:
        have = repo.watchlist_ids(db, visitor)
        if add and movie.movie_id not in have and len(have) >= MAX_WATCHLIST:
            raise InvalidInput(
                f"your watchlist holds {MAX_WATCHLIST} movies, the most it may; remove some first",
                field="movie_id",
            )
        if add:
            repo.add_to_watchlist(db, visitor, [movie.movie_id])
            have.add(movie.movie_id)
        else:
            repo.remove_from_watchlist(db, visitor, [movie.movie_id])
            have.discard(movie.movie_id)
        count = len(have)
        db.commit()
        forget_lists()
    message = (
        f"{movie.display_title} is on your watchlist."
        if add
        else f"{movie.display_title} is off your watchlist."
    )
    if _wants_json():
        return jsonify(
            {"movie_id": movie.movie_id, "on_watchlist": add, "count": count, "message": message}
        )
    flash(message)
    return redirect(back, code=303)


def _wants_json() -> bool:
    accept = request.accept_mimetypes
    return accept.best_match(["text/html", "application/json"]) == "application/json"


def _form_movie(services: Services, value: str) -> Movie:
    """The catalogue movie a ``movie_id`` form field names; else a 400 naming it."""
    catalog = services.recommenders.catalog
    movie_id = movie_id_text(value)  # its one spelling (movierec.inputs)
    if movie_id is None or movie_id not in catalog:
        raise InvalidInput(f"no movie like {quoted(value)}", field="movie_id")
    return catalog.get(movie_id)


# -- the list -----------------------------------------------------------------------------
@bp.get("/watchlist")
def index() -> str:
    """The watchlist, sortable, with where to watch each movie."""
    services = get_services()
    sort = request.args.get("sort", "added")
    if sort not in SORTS:
        raise InvalidInput(f"sort must be one of {', '.join(SORTS)}, got {quoted(sort)}", "sort")
    default_order = "asc" if sort == "title" else "desc"
    order = request.args.get("order", default_order)
    if order not in ("asc", "desc"):
        raise InvalidInput(f"order must be asc or desc, got {quoted(order)}", field="order")
    db = services.store.scoped
    rows = _rows(services, db)
    context = watch_context(db)
    ratings = _ratings(services, db)
    db.commit()  # nothing held open while TMDB answers
    matches = _matches(services, ratings, [r["movie_id"] for r in rows])
    infos = services.tmdb.info_many(tmdb_ids(r["movie"] for r in rows))
    for row in rows:
        info = info_for(row["movie"], infos)
        row.update(movie_card(row["movie"], info))
        row["match"] = matches.get(row["movie_id"])
        row["watch"] = watch_summary(info, context)
    missing = -1.0 if order == "desc" else 6.0  # movies without a prediction go last
    key = {
        "added": lambda r: (r["added_at"], r["sort_title"]),
        "title": lambda r: (r["sort_title"], r["movie_id"]),
        "year": lambda r: (r["year"] or 0, r["sort_title"]),
        "match": lambda r: (missing if r["match"] is None else r["match"], r["sort_title"]),
    }[sort]
    rows.sort(key=key, reverse=order == "desc")
    return render_template(
        "watchlist/index.html",
        rows=rows,
        sort=sort,
        order=order,
        n_rated=len(ratings),
        watch=context,
    )


def _rows(services: Services, db: Session) -> list[dict[str, Any]]:
    visitor = visitor_id(db)
    catalog = services.recommenders.catalog
    rows = []
    for movie_id, added_at in repo.watchlist_rows(db, visitor) if visitor else []:
        if movie_id not in catalog:
            continue
        movie = catalog.get(movie_id)
        when = added_at if added_at.tzinfo else added_at.replace(tzinfo=UTC)
        rows.append(
            {
                "movie_id": movie_id,
                "movie": movie,
                "sort_title": without_article(fold(movie.display_title)),
                "added_at": when,
                "date": when.strftime("%Y-%m-%d"),
                "iso": when.isoformat(timespec="seconds"),
            }
        )
    return rows


def _ratings(services: Services, db: Session) -> dict[int, float]:
    visitor = visitor_id(db)
    catalog = services.recommenders.catalog
    stored = repo.visitor_ratings(db, visitor) if visitor else {}
    return {m: s for m, s in stored.items() if m in catalog}


def _matches(
    services: Services, ratings: dict[int, float], movie_ids: list[int]
) -> dict[int, float]:
    """Predicted stars of each listed movie (one recommend call over just these)."""
    if not ratings or not movie_ids:
        return {}
    service = services.recommender()
    result = service.recommend(ratings, n=min(len(movie_ids), 100), only=movie_ids)
    if result.fallback:
        return {}
    return {r.movie.movie_id: round(r.predicted_stars, 1) for r in result.items}


@bp.get("/watchlist/export.csv")
def export() -> Response:
    """The watchlist as CSV (oldest first): Letterboxd's import columns, then ours."""
    services = get_services()
    db = services.store.scoped
    rows = _rows(services, db)
    db.commit()
    imdb_of = get_catalogue().imdb_of
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["Title", "Year", "tmdbID", "imdbID", "movieId", "Added"])
    for row in sorted(rows, key=lambda r: (r["added_at"], r["movie_id"])):
        movie = row["movie"]
        imdb = imdb_of.get(movie.movie_id)
        writer.writerow(
            [
                movie.display_title,
                movie.year or "",
                movie.tmdb_id or "",
                f"tt{imdb:07d}" if imdb else "",
                movie.movie_id,
                row["added_at"].date().isoformat(),
            ]
        )
    return Response(
        out.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": 'attachment; filename="movierec-watchlist.csv"'},
    )


# -- import -------------------------------------------------------------------------------
@bp.get("/watchlist/import")
def import_form() -> str:
    return _import_page("letterboxd")


def _import_page(fmt: str, error: str | None = None) -> str:
    return render_template(
        "watchlist/import.html",
        formats=FORMAT_LABELS,
        fmt=fmt,
        max_mb=MAX_BYTES // (1024 * 1024),
        max_watchlist=MAX_WATCHLIST,
        error=error,
    )


@bp.post("/watchlist/import")
def import_file() -> Any:
    """Add the matched movies of an uploaded watchlist; 303 to the watchlist."""
    services = get_services()
    fmt = request.form.get("format", "")
    upload = request.files.get("file")
    try:
        if fmt not in WATCHLIST_FORMATS:
            raise InvalidInput(
                f"format must be one of {', '.join(WATCHLIST_FORMATS)}, got {quoted(fmt)}",
                field="format",
            )
        if upload is None or not upload.filename:
            raise InvalidInput("choose a file to import", field="file")
        result = read_watchlist(upload.read(MAX_BYTES + 1), fmt, get_catalogue().matcher)
    except InvalidInput as exc:
        return _import_page(fmt if fmt in WATCHLIST_FORMATS else "letterboxd", str(exc)), 400
    db = services.store.scoped
    visitor = visitor_id(db, create=True)
    have = repo.watchlist_ids(db, visitor)
    fresh = [m for m in result.added if m not in have]
    room = max(0, MAX_WATCHLIST - len(have))
    now = datetime.now(UTC)
    by_date: dict[datetime, list[int]] = {}
    for movie_id in fresh[:room]:  # each keeps the date the file gives
        by_date.setdefault(result.added[movie_id] or now, []).append(movie_id)
    added = sum(repo.add_to_watchlist(db, visitor, ids, when=when) for when, ids in by_date.items())
    db.commit()
    forget_lists()
    parts = [f"Read {result.rows} row{'s' if result.rows != 1 else ''}: added {added}"]
    if result.detected:
        parts[0] = f"Read as {READ_AS[result.format]} (its header says so). " + parts[0]
    if len(result.added) - len(fresh):
        parts.append(f"{len(result.added) - len(fresh)} already on your watchlist")
    if len(fresh) > room:
        parts.append(f"{len(fresh) - room} left out (a watchlist holds {MAX_WATCHLIST})")
    if result.unmatched:
        named = ", ".join(
            f"{u.title or u.ref} ({u.year})" if u.year else (u.title or u.ref)
            for u in result.unmatched[:UNMATCHED_NAMED]
        )
        more = len(result.unmatched) - UNMATCHED_NAMED
        parts.append(
            f"{len(result.unmatched)} not found in the catalogue: {named}"
            + (f" and {more} more" if more > 0 else "")
        )
    flash("; ".join(parts) + ".")
    return redirect(url_for("watchlist.index"), code=303)


# -- where to watch settings -----------------------------------------------------------------
@bp.get("/where-to-watch")
def settings() -> str:
    """The visitor's country and services."""
    services = get_services()
    db = services.store.scoped
    context = watch_context(db)
    db.commit()
    offered = services.tmdb.region_services(context.region) if context.configured else None
    regions = services.tmdb.watch_regions() if context.configured else None
    ticked = set(context.services)
    known = {pid for pid, _name in offered or []}
    # services ticked earlier but not listed now (another country) stay visible
    extra = sorted(ticked - known)
    return render_template(
        "watchlist/where.html",
        watch=context,
        offered=offered,
        regions=regions or [],
        ticked=ticked,
        extra=extra,
        next=safe_next(request.args.get("next"), url_for("watchlist.settings")),
    )


@bp.post("/where-to-watch")
def save_settings() -> ResponseReturnValue:
    """Store the country (empty: from the browser) and the ticked services; 303 back."""
    services = get_services()
    region = request.form.get("region", "").strip()
    if region and not REGION.fullmatch(region):
        raise InvalidInput(
            f"region must be a two-letter country code like US or GB, got {quoted(region)}",
            field="region",
        )
    chosen: list[int] = []
    for value in request.form.getlist("service"):
        if not re.fullmatch(r"[0-9]{1,9}", value, re.ASCII):
            raise InvalidInput(f"service must be a provider id, got {quoted(value)}", "service")
        chosen.append(int(value))
    if len(chosen) > MAX_SERVICES:
        raise InvalidInput(f"tick at most {MAX_SERVICES} services", field="service")
    db = services.store.scoped
    visitor = visitor_id(db, create=True)
    repo.save_watch_settings(db, visitor, region.upper() or None, chosen)
    db.commit()
    where = region.upper() or "the country your browser names"
    plural = "s" if len(chosen) != 1 else ""
    flash(f"Saved: where to watch in {where}, {len(chosen)} service{plural} ticked.")
    back = safe_next(request.form.get("next"), url_for("watchlist.settings"))
    return redirect(back, code=303)


__all__ = [
    "WatchContext",
    "bp",
    "on_my_services",
    "region_from_languages",
    "watch_context",
    "watch_summary",
    "watchlist_ids",
]
