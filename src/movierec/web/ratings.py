"""The visitor's ratings: list, export and import (HTML pages).

- ``GET /ratings?sort=date|title|stars&order=asc|desc``: every rated movie with stars and
  date; each row has a stars form and a remove button (both post to
  ``/movies/<id>/rate`` and come back here).
- ``POST /ratings/training`` (``use=yes|no``): whether the visitor's ratings help train
  the site's next model (``movierec train --with-visitors``); the page says so in one
  sentence and offers the choice either way.
- ``GET /ratings/hidden``: the movies the visitor marked "not interested", newest first, each
  with "Unhide" (posts to ``/recommendations/unhide``, which comes back here).
- ``GET /ratings/export.csv``: Letterboxd's import layout (``LETTERBOXD_COLUMNS``: TMDB and
  IMDb ids, the display title, year, stars 0.5-5, the date rated as ISO 8601 ``WatchedDate``,
  which Letterboxd turns into a diary entry); movierec's import reads it back.
- ``GET /ratings/export-movielens.csv``: the MovieLens layout ``movieId,title,rating,timestamp``
  (MovieLens's own title, Unix seconds, UTC), as MovieLens's ``ratings.csv`` has it.
- ``GET /ratings/import`` / ``POST /ratings/import`` (multipart ``file``, ``format``): reads an
  IMDb, Letterboxd or movierec/MovieLens CSV (:mod:`movierec.imports`), stores the matched
  ratings of movies not rated yet (or rated with the same stars) in one transaction, and
  redirects (303) to ``GET /ratings/import/done``: how many matched, the rows that did not,
  and the conflicts: movies already rated with other stars, which are only replaced after
  ``POST /ratings/import/replace``. The report is kept per visitor (the latest import).

What one visitor may store is bounded (docs/operating.md): an import stores new ratings up
to ``MOVIEREC_MAX_RATINGS_PER_VISITOR`` in all, the most recently rated first (then in the
file's order), and its report says how many it left out; the report keeps unmatched rows,
their titles cut to ``TITLE_CHARS``, up to ``MOVIEREC_MAX_IMPORT_REPORT`` bytes of JSON.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from movierec.errors import InvalidInput, quoted
from movierec.imports import FORMAT_NAMES, FORMATS, MAX_BYTES, ImportResult, Unmatched, read_import
from movierec.inputs import movie_id_text
from movierec.search import fold, without_article
from movierec.store import repo
from movierec.web.catalogue import get_catalogue
from movierec.web.movies import parse_stars
from movierec.web.services import get_services
from movierec.web.visitor import visitor_id
from movierec.web.visits import Visits

bp = Blueprint("ratings", __name__)

SORTS = ("date", "title", "stars")
#: Letterboxd's documented import columns, in the order the export writes them
#: (https://letterboxd.com/about/importing-data/)
LETTERBOXD_COLUMNS = ("tmdbID", "imdbID", "Title", "Year", "Rating", "WatchedDate")
#: the import form's "tell the format from the file's header" choice
AUTO = "auto"
FORMAT_LABELS = {
    AUTO: "Not sure: tell from the file",
    "imdb": "IMDb ratings export (ratings.csv)",
    "letterboxd": "Letterboxd ratings.csv",
    "movielens": "movierec export or MovieLens ratings.csv",
}
#: the body cap of an import: the file cap plus room for the multipart envelope
IMPORT_MAX_BODY = MAX_BYTES + 64 * 1024
REPLACE_PREFIX = "rating-"
#: unmatched rows listed on the report page (the count says how many there were in all)
MAX_UNMATCHED_SHOWN = 1000
#: characters of an unmatched row's title (and of its id) an import report keeps
TITLE_CHARS = 200
REF_CHARS = 40


@bp.get("/ratings")
def index() -> str:
    """Every rated movie, sortable."""
    services = get_services()
    sort = request.args.get("sort", "date")
    order = request.args.get("order", "asc" if sort == "title" else "desc")
    if sort not in SORTS:
        raise InvalidInput(f"sort must be one of {', '.join(SORTS)}, got {quoted(sort)}", "sort")
    if order not in ("asc", "desc"):
        raise InvalidInput(f"order must be asc or desc, got {quoted(order)}", field="order")
    rows = _rows(services)
    key = {
        "date": lambda r: (r["rated_at"], r["sort_title"]),
        "title": lambda r: (r["sort_title"], r["movie_id"]),
        "stars": lambda r: (r["stars"], r["sort_title"]),
    }[sort]
    rows.sort(key=key, reverse=order == "desc")
    db = services.store.scoped
    visitor = visitor_id(db)
    opted_out = visitor is not None and repo.training_opt_out(db, visitor)
    return render_template(
        "ratings/index.html",
        rows=rows,
        sort=sort,
        order=order,
        n_hidden=_n_hidden(services),
        opted_out=opted_out,
    )


@bp.post("/ratings/training")
def training_choice() -> ResponseReturnValue:
    """Whether the visitor's ratings may train the site's next model: form field ``use``
    is ``yes`` (the default) or ``no`` (opt out); stored at once, honoured by the next
    ``movierec train --with-visitors``, reversible. Redirects (303) to ``/ratings``."""
    use = request.form.get("use", "")
    if use not in ("yes", "no"):
        raise InvalidInput(f"use must be yes or no, got {quoted(use)}", field="use")
    services = get_services()
    db = services.store.scoped
    repo.set_training_opt_out(db, visitor_id(db, create=True), opted_out=use == "no")
    db.commit()
    if use == "no":
        flash("Your ratings will not be used to train the site's next model.")
    else:
        flash("Thank you: your ratings will help train the site's next model.")
    return redirect(url_for("ratings.index"), code=303)


@bp.get("/ratings/hidden")
def hidden() -> str:
    """The movies the visitor hid ("not interested"), most recently hidden first."""
    services = get_services()
    db = services.store.scoped
    found = Visits(services).hidden(db, visitor_id(db))
    catalog = services.recommenders.catalog
    rows = [
        {
            "movie_id": m,
            "title": catalog.get(m).display_title,
            "year": catalog.get(m).year,
            "date": (when if when.tzinfo else when.replace(tzinfo=UTC)).strftime("%Y-%m-%d"),
            "iso": (when if when.tzinfo else when.replace(tzinfo=UTC)).isoformat(
                timespec="seconds"
            ),
        }
        for m, when in found
    ]
    return render_template("ratings/hidden.html", rows=rows, n_rated=len(_rows(services)))


def _n_hidden(services: Any) -> int:
    db = services.store.scoped
    return len(Visits(services).hidden(db, visitor_id(db)))


@bp.get("/ratings/export.csv")
def export() -> Response:
    """The visitor's ratings as CSV in Letterboxd's import layout (``LETTERBOXD_COLUMNS``),
    oldest first."""
    services = get_services()
    imdb_of = get_catalogue().imdb_of
    catalog = services.recommenders.catalog
    lines: list[list[object]] = [list(LETTERBOXD_COLUMNS)]
    for row in sorted(_rows(services), key=lambda r: (r["rated_at"], r["movie_id"])):
        tmdb = catalog.get(row["movie_id"]).tmdb_id
        imdb = imdb_of.get(row["movie_id"])
        lines.append(
            [
                tmdb or "",
                f"tt{imdb:07d}" if imdb else "",
                row["title"],
                row["year"] or "",
                row["stars"],
                row["date"],
            ]
        )
    return _csv(lines, "movierec-ratings-letterboxd.csv")


@bp.get("/ratings/export-movielens.csv")
def export_movielens() -> Response:
    """The visitor's ratings as CSV in MovieLens's layout: ``movieId,title,rating,timestamp``
    (MovieLens's title, Unix seconds UTC), oldest first."""
    services = get_services()
    lines: list[list[object]] = [["movieId", "title", "rating", "timestamp"]]
    for row in sorted(_rows(services), key=lambda r: (r["rated_at"], r["movie_id"])):
        lines.append(
            [row["movie_id"], row["full_title"], row["stars"], int(row["rated_at"].timestamp())]
        )
    return _csv(lines, "movierec-ratings-movielens.csv")


def _csv(lines: list[list[object]], filename: str) -> Response:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(lines)
    return Response(
        out.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@bp.get("/ratings/import")
def import_form() -> str:
    return render_template(
        "ratings/import.html",
        formats=FORMAT_LABELS,
        fmt=AUTO,
        max_mb=MAX_BYTES // (1024 * 1024),
        max_ratings=get_services().settings.max_ratings_per_visitor,
    )


@bp.post("/ratings/import")
def import_file() -> Any:
    """Read the uploaded file, store what is new, keep a report, and redirect (303) to it."""
    services = get_services()
    fmt = request.form.get("format", AUTO) or AUTO
    upload = request.files.get("file")
    try:
        if fmt != AUTO and fmt not in FORMATS:
            raise InvalidInput(
                f"format must be one of {AUTO}, {', '.join(FORMATS)}, got {quoted(fmt)}",
                field="format",
            )
        if upload is None or not upload.filename:
            raise InvalidInput("choose a file to import", field="file")
        chosen = None if fmt == AUTO else fmt
        result = read_import(upload.read(MAX_BYTES + 1), chosen, get_catalogue().matcher)
    except InvalidInput as exc:
        return render_template(
            "ratings/import.html",
            formats=FORMAT_LABELS,
            fmt=fmt if fmt in FORMAT_LABELS else AUTO,
            max_mb=MAX_BYTES // (1024 * 1024),
            max_ratings=services.settings.max_ratings_per_visitor,
            error=str(exc),
        ), 400
    db = services.store.scoped
    visitor = visitor_id(db, create=True)  # somewhere to keep the report for the redirect
    stored = repo.visitor_ratings(db, visitor)
    fresh = {m: s for m, s in result.ratings.items() if m not in stored}
    same = [m for m, s in result.ratings.items() if stored.get(m) == s]
    conflicts = {m: s for m, s in result.ratings.items() if m in stored and stored[m] != s}
    cap = services.settings.max_ratings_per_visitor
    catalog = services.recommenders.catalog
    kept = _up_to(fresh, result.rated_at, max(0, cap - len(stored)))
    # the report's bytes: unmatched rows first, repeated rows in what is left
    unmatched = _unmatched_rows(result.unmatched, services.settings.max_import_report)
    room = services.settings.max_import_report - len(json.dumps(unmatched))
    # one transaction; the cap is checked again after the write (two imports racing)
    repo.upsert_ratings(db, visitor, kept, rated_at=result.rated_at, cap=cap)
    repo.save_import_report(
        db,
        visitor,
        {
            "format": result.format,
            # the visitor chose another format than the header's (None: they chose none)
            "chosen": chosen if result.detected else None,
            "detected": result.detected,
            "rows": result.rows,
            "matched": result.matched,
            "skipped": result.skipped,
            "added": len(kept),
            "not_stored": len(fresh) - len(kept),
            "cap": cap,
            "same": len(same),
            "unmatched": unmatched,
            "unmatched_total": len(result.unmatched),
            "duplicates": _duplicate_rows(result, catalog, room),
            "duplicates_total": len(result.duplicates),
            "conflicts": {str(m): s for m, s in conflicts.items()},
        },
    )
    db.commit()
    return redirect(url_for("ratings.import_done"), code=303)


@bp.get("/ratings/import/done")
def import_done() -> Any:
    """The visitor's latest import: counts, unmatched rows, and conflicts still open."""
    services = get_services()
    db = services.store.scoped
    visitor = visitor_id(db)
    report = repo.import_report(db, visitor) if visitor else None
    stored = repo.visitor_ratings(db, visitor) if visitor else {}
    db.commit()
    if report is None:
        return redirect(url_for("ratings.import_form"), code=303)
    catalog = services.recommenders.catalog
    conflict_rows = [
        {
            "movie_id": m,
            "title": catalog.get(m).display_title,
            "year": catalog.get(m).year,
            "old": stored[m],
            "new": new,
        }
        for m, new in ((int(k), float(v)) for k, v in report["conflicts"].items())
        if m in catalog and m in stored and stored[m] != new  # still open
    ]
    return render_template(
        "ratings/imported.html",
        report=report,
        conflicts=conflict_rows,
        fmt_label=FORMAT_LABELS.get(report["format"], report["format"]),
        fmt_name=FORMAT_NAMES.get(report["format"], report["format"]),
        chosen_name=FORMAT_NAMES.get(report.get("chosen") or "", ""),
    )


@bp.post("/ratings/import/replace")
def import_replace() -> ResponseReturnValue:
    """Replace stored stars with the imported ones the visitor confirmed (``rating-<id>``)."""
    services = get_services()
    catalog = services.recommenders.catalog
    chosen: dict[int, float] = {}
    for key, value in request.form.items():
        if not key.startswith(REPLACE_PREFIX):
            continue
        movie = movie_id_text(key[len(REPLACE_PREFIX) :])  # its one spelling
        if movie is None or movie not in catalog:
            raise InvalidInput(f"unknown movie in field {quoted(key)}", field=key[:100])
        chosen[movie] = parse_stars(value, allow_zero=False)
    db = services.store.scoped
    visitor = visitor_id(db, create=bool(chosen))
    if visitor and chosen:
        repo.upsert_ratings(db, visitor, chosen, cap=services.settings.max_ratings_per_visitor)
    db.commit()
    plural = "s" if len(chosen) != 1 else ""
    flash(f"Replaced {len(chosen)} rating{plural} with the imported stars.")
    return redirect(url_for("ratings.index"), code=303)


def _up_to(fresh: dict[int, float], rated_at: dict[int, datetime], room: int) -> dict[int, float]:
    """At most ``room`` of ``fresh``: the most recently rated first, then undated ones in
    the file's order."""
    if len(fresh) <= room:
        return fresh
    oldest = datetime.min.replace(tzinfo=UTC)
    order = sorted(fresh, key=lambda m: rated_at.get(m, oldest), reverse=True)  # stable
    return {m: fresh[m] for m in order[:room]}


def _unmatched_rows(unmatched: list[Unmatched], max_bytes: int) -> list[dict[str, object]]:
    """The first unmatched rows for the report, titles and ids cut short, as many as fit
    in ``max_bytes`` of JSON (and at most ``MAX_UNMATCHED_SHOWN``)."""
    rows: list[dict[str, object]] = []
    size = 2  # []
    for u in unmatched[:MAX_UNMATCHED_SHOWN]:
        row = u.to_dict()
        row["title"] = _cut(u.title, TITLE_CHARS)
        row["ref"] = _cut(u.ref, REF_CHARS)
        size += len(json.dumps(row)) + 2  # the JSON column's own encoding, and ", "
        if size > max_bytes:
            break
        rows.append(row)
    return rows


def _duplicate_rows(result: ImportResult, catalog: Any, max_bytes: int) -> list[dict[str, object]]:
    """The file's repeated rows for the report ("line 9 repeats line 3; ..."), with the
    movie's display title, as many as fit in ``max_bytes`` of JSON (at most
    ``MAX_UNMATCHED_SHOWN``)."""
    rows: list[dict[str, object]] = []
    size = 2
    for d in result.duplicates[:MAX_UNMATCHED_SHOWN]:
        title = catalog.get(d.movie_id).display_title if d.movie_id in catalog else ""
        row = {**d.to_dict(), "title": _cut(title, TITLE_CHARS)}
        size += len(json.dumps(row)) + 2
        if size > max_bytes:
            break
        rows.append(row)
    return rows


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _rows(services: Any) -> list[dict[str, Any]]:
    """The visitor's ratings of catalogue movies as template rows."""
    db = services.store.scoped
    visitor = visitor_id(db)
    rows = repo.visitor_rating_rows(db, visitor) if visitor else []
    db.commit()
    catalog = services.recommenders.catalog
    out = []
    for movie_id, stars, rated_at in rows:
        if movie_id not in catalog:
            continue
        movie = catalog.get(movie_id)
        when = rated_at if rated_at.tzinfo else rated_at.replace(tzinfo=UTC)
        out.append(
            {
                "movie_id": movie_id,
                "title": movie.display_title,
                "full_title": movie.title,
                "sort_title": without_article(fold(movie.display_title)),
                "year": movie.year,
                "stars": stars,
                "rated_at": when,
                "date": when.strftime("%Y-%m-%d"),
                "iso": when.isoformat(timespec="seconds"),
            }
        )
    return out


#: endpoints that take an uploaded rating history (bigger bodies than the app-wide cap)
IMPORT_ENDPOINTS = frozenset(
    {
        "ratings.import_file",
        "api.import_ratings",
        "watchlist.import_file",
        "api.import_watchlist",
    }
)


def allow_import_bodies() -> None:
    """Raise this request's body cap to ``IMPORT_MAX_BODY`` on the import endpoints.

    Registered by ``create_app`` before CSRF protection, which reads the form (and so
    applies the cap) before any view runs.
    """
    if request.endpoint in IMPORT_ENDPOINTS:
        request.max_content_length = max(IMPORT_MAX_BODY, request.max_content_length or 0)
