"""Movie pages and title search (HTML; the JSON twins are in :mod:`movierec.web.api_catalog`).

- ``GET /movies/<id>?year=``: title, year, genres, tags, average stars, the visitor's rating
  (a form), their predicted stars, 10 similar movies (none the visitor hid as "not
  interested", and only of their year preference), TMDB poster/overview/trailer, TMDB and
  IMDb links. Search still finds hidden movies.

  The year preference is ``?year=`` (old|new|any; another value is a 400) when the link
  carries it, else the one the visitor last chose on the picks form (kept in the session),
  else any. A visitor who asked for newer movies expects "Similar movies" to keep to them
  as the picks and their "More like this" do; the page says which years it shows and links
  to every year, and the similar movies' links carry a ``?year=`` they came with.
- ``POST /movies/<id>/rate``: store (or with ``stars=0`` remove) the visitor's stars, then
  redirect back to ``next`` (a local path) -- post/redirect/get; CSRF-protected.
- ``GET /search?q=``: the search results as a page (works without JavaScript), each hit
  with a rating form.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy.orm import Session

from movierec.data import Movie
from movierec.errors import InvalidInput, quoted
from movierec.inputs import STARS_RULE, YEAR_CHOICES, movie_id_text, stars_text, year_preference
from movierec.search import MAX_QUERY
from movierec.store import repo
from movierec.web.cards import info_for, movie_card, star_label, tmdb_ids
from movierec.web.catalogue import coverage, get_catalogue, predicted_stars
from movierec.web.redirects import safe_next
from movierec.web.services import Services, get_services
from movierec.web.visitor import visitor_id
from movierec.web.watchlist import watch_context, watch_summary

bp = Blueprint("movies", __name__)

SIMILAR = 10
SEARCH_PAGE = 20  # hits on the search page


@bp.get("/movies/<movie_id>")
def movie(movie_id: str) -> str:
    """One movie's page; the styled 404 for an unknown or malformed id."""
    services = get_services()
    found = known_movie(services, movie_id)
    extras = get_catalogue()
    db = services.store.scoped
    ratings = stored_ratings(db, services)
    hidden = hidden_movies(db)  # "not interested": not offered as similar either
    db.commit()  # nothing held open while TMDB answers
    recommender = services.recommender()
    asked = request.args.get("year")
    year = year_preference(asked) if asked is not None else session_year()
    similar_ids = extras.similar_for(services.default_model, recommender).similar(
        found.movie_id, SIMILAR, exclude=hidden, year=year, split_year=recommender.split_year
    )
    similar = [services.recommenders.catalog.get(m) for m in similar_ids]
    infos = services.tmdb.info_many(tmdb_ids([found, *similar]))
    card = movie_card(found, info_for(found, infos))
    card.update(
        stars=ratings.get(found.movie_id, 0.0),
        mean_rating=found.mean_rating,
        n_ratings=found.n_ratings,
        tags=extras.tags.get(found.movie_id, []),
        imdb_url=extras.imdb_url(found.movie_id),
        predicted_stars=predicted_stars(recommender, ratings, found.movie_id),
        watch=watch_summary(info_for(found, infos), watch_context(db)),
    )
    cards = [
        {**movie_card(m, info_for(m, infos)), "stars": ratings.get(m.movie_id, 0.0)}
        for m in similar
    ]
    return render_template(
        "movies/movie.html",
        card=card,
        similar=cards,
        year=year,
        year_link=asked,  # carried into the similar movies' links only when it came in one
        n_rated=len(ratings),
        model=services.default_model,
    )


@bp.post("/movies/<movie_id>/rate")
def rate(movie_id: str) -> ResponseReturnValue:
    """Store the visitor's stars for one movie (0 removes them) and go back where they were."""
    services = get_services()
    found = known_movie(services, movie_id)
    stars = parse_stars(request.form.get("stars", ""))
    db = services.store.scoped
    visitor = visitor_id(db, create=stars > 0)
    if stars > 0 and visitor:
        cap = services.settings.max_ratings_per_visitor
        repo.upsert_ratings(db, visitor, {found.movie_id: stars}, cap=cap)
        message = f"You gave {found.display_title} {star_label(stars)}."
    elif visitor:
        repo.delete_ratings(db, visitor, [found.movie_id])
        message = f"Your rating of {found.display_title} was removed."
    else:
        message = f"{found.display_title} was not rated."
    db.commit()
    flash(message)
    back = safe_next(request.form.get("next"), url_for("movies.movie", movie_id=movie_id))
    return redirect(back, code=303)


@bp.get("/search")
def search() -> str | tuple[str, int]:
    """Title search as a page; an empty query shows the empty form."""
    services = get_services()
    q = request.args.get("q", "")
    if len(q) > MAX_QUERY:
        raise InvalidInput(f"q is {len(q)} characters long; at most {MAX_QUERY}", field="q")
    q = q if q.strip() else ""  # only spaces: the empty form
    hits: list[dict[str, Any]] = []
    ends = None  # where the catalogue ends, when no hit is recent
    if q:
        extras = get_catalogue()
        catalog = services.recommenders.catalog
        movies = [catalog.get(h.movie_id) for h in extras.index.search(q, SEARCH_PAGE)]
        span = coverage(catalog)
        ends = span if span.misses_recent(m.year for m in movies) else None
        db = services.store.scoped
        ratings = stored_ratings(db, services)
        db.commit()
        infos = services.tmdb.info_many(tmdb_ids(movies))
        hits = [
            {
                **movie_card(m, info_for(m, infos)),
                "stars": ratings.get(m.movie_id, 0.0),
                "mean_rating": m.mean_rating,
                "n_ratings": m.n_ratings,
            }
            for m in movies
        ]
    return render_template("search/results.html", q=q, hits=hits, ends=ends)


# -- helpers shared with the ratings pages -----------------------------------------------
def known_movie(services: Services, movie_id: str) -> Movie:
    """The catalogue's movie for a URL id in its one spelling; 404 otherwise."""
    catalog = services.recommenders.catalog
    number = movie_id_text(movie_id)
    if number is None or number not in catalog:
        abort(404)
    return catalog.get(number)


def parse_stars(value: str, allow_zero: bool = True) -> float:
    """Form stars: 0.5-5 in half steps (0 = remove, when allowed)."""
    stars = stars_text(value, allow_zero=allow_zero)
    if stars is not None:
        return stars
    raise InvalidInput(
        f"stars must be {STARS_RULE}{' (0 removes)' if allow_zero else ''}, got {quoted(value)}",
        field="stars",
    )


def stored_ratings(db: Session, services: Services) -> dict[int, float]:
    """The visitor's stored ``{movieId: stars}`` of movies in the catalogue."""
    visitor = session.get("visitor")
    if not isinstance(visitor, str):
        return {}
    catalog = services.recommenders.catalog
    return {m: s for m, s in repo.visitor_ratings(db, visitor).items() if m in catalog}


def session_year() -> str:
    """The year preference the visitor last chose on the picks form, else ``any``."""
    year = session.get("year")
    return year if isinstance(year, str) and year in YEAR_CHOICES else "any"


def hidden_movies(db: Session) -> set[int]:
    """Movie ids the visitor marked "not interested" (none without a visitor)."""
    visitor = session.get("visitor")
    return repo.hidden_movies(db, visitor) if isinstance(visitor, str) else set()
