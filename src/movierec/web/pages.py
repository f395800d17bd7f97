"""The pages: rate 15 movies, pick a year preference, see 5 recommendations.

- ``GET /``: 15 cards drawn at random from the 50 most-rated movies, with the
  visitor's earlier stars filled in (``?more=1`` favours movies not rated yet).
- ``POST /recommendations``: stores the stars (CSRF-protected) and shows the picks.
- ``GET /recommendations?year=&model=``: the picks again from stored ratings, e.g.
  with another model.
- ``POST /start-over``: forgets the visitor (ratings, picks shown, the id itself).

The visitor is anonymous: a random id in Flask's signed session cookie, renewed on
each visit and expiring after ``MOVIEREC_RETENTION_DAYS``. The id is revocable: "start
over" deletes the visitor's row, and a cookie naming a visitor the store does not know
(forgotten, pruned or replayed after start over) gets a fresh id on the next submission.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from typing import Any

from flask import (
    Blueprint,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.sansio.blueprints import BlueprintSetupState
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict

from movierec.errors import QUOTE_LIMIT, InvalidInput, quoted
from movierec.recommend import DEFAULT_SPLIT_YEAR, YEAR_CHOICES, RecommendationList, validate_year
from movierec.store import Visitor, repo
from movierec.web.cards import (
    STAR_STEPS,
    info_for,
    rating_card,
    recommendation_card,
    star_label,
    tmdb_ids,
)
from movierec.web.services import MODEL_LABELS, Services, get_services

bp = Blueprint("pages", __name__)

RESULTS = 5
RATING_PREFIX = "rating-"
#: a rating field's name: the prefix and a movieId of 1-9 ASCII digits (``int`` would
#: also read "²", "١" or 5,000 digits, so the name is checked before conversion)
RATING_FIELD = re.compile(r"rating-([0-9]{1,9})", re.ASCII)
YEAR_LABELS = {
    "old": f"Older, before {DEFAULT_SPLIT_YEAR}",
    "new": f"Newer, {DEFAULT_SPLIT_YEAR} and later",
    "any": "Any year",
}


@bp.record_once
def _template_globals(state: BlueprintSetupState) -> None:
    """Helpers every template (and imported macro) can use."""
    state.app.jinja_env.globals.update(
        star_steps=STAR_STEPS,
        star_label=star_label,
        year_labels=YEAR_LABELS,
        year_choices=YEAR_CHOICES,
        model_labels=MODEL_LABELS,
    )


@bp.get("/")
def index() -> str:
    """The onboarding form."""
    services = get_services()
    db = services.store.scoped
    rated = _known(services, _stored_ratings(db))
    db.commit()  # nothing held open while TMDB answers
    movies = services.draw_onboarding(rated, fresh_first=request.args.get("more") == "1")
    infos = services.tmdb.info_many(tmdb_ids(movies))
    cards = [rating_card(m, info_for(m, infos), rated.get(m.movie_id)) for m in movies]
    shown = {c["movie_id"] for c in cards}
    return render_template(
        "pages/index.html",
        cards=cards,
        n_rated=len(rated),
        n_rated_hidden=len(set(rated) - shown),
        year=session.get("year", "any"),
        model=services.default_model,
    )


@bp.post("/recommendations")
def submit() -> tuple[str, int] | str:
    """Store the submitted stars and show the picks."""
    services = get_services()
    form_ratings = parse_form_ratings(request.form, services)
    year = validate_year(request.form.get("year", "any"))
    model = services.model_name(request.form.get("model"))
    db = services.store.scoped
    visitor = _visitor_id(db, create=True)
    session["year"] = year
    repo.upsert_ratings(db, visitor, {m: s for m, s in form_ratings.items() if s > 0})
    repo.delete_ratings(db, visitor, [m for m, s in form_ratings.items() if s == 0])
    ratings = _known(services, repo.visitor_ratings(db, visitor))
    db.commit()
    return _results(services, db, visitor, ratings, year, model)


@bp.get("/recommendations")
def results() -> tuple[str, int] | str:
    """The picks for the stored ratings (another model or year preference)."""
    services = get_services()
    year = validate_year(request.args.get("year", session.get("year", "any")))
    model = services.model_name(request.args.get("model"))
    db = services.store.scoped
    ratings = _known(services, _stored_ratings(db))
    db.commit()
    return _results(services, db, session.get("visitor"), ratings, year, model)


@bp.post("/start-over")
def start_over():  # type: ignore[no-untyped-def]
    """Forget the visitor (ratings, picks shown, the id) and go back to a fresh form.

    The cookie loses its id, so the next submission starts a new visitor; a copy of
    the old cookie names a visitor that no longer exists and is given a new id too.
    """
    services = get_services()
    visitor = session.pop("visitor", None)
    if isinstance(visitor, str):
        db = services.store.scoped
        repo.forget_visitor(db, visitor)
        db.commit()
    session.pop("year", None)
    flash("Your ratings were cleared. Rate a few movies to start again.")
    return redirect(url_for("pages.index"))


def parse_form_ratings(form: MultiDict[str, str], services: Services) -> dict[int, float]:
    """``{movieId: stars}`` from ``rating-<movieId>`` fields; 0 means "not seen"."""
    catalog = services.recommenders.catalog
    ratings: dict[int, float] = {}
    for key, value in form.items():
        if not key.startswith(RATING_PREFIX):
            continue
        field = key[:QUOTE_LIMIT]
        match = RATING_FIELD.fullmatch(key)
        if match is None or int(match.group(1)) not in catalog:
            raise InvalidInput(f"unknown movie in field {quoted(key)}", field=field)
        try:
            stars = float(value)
        except ValueError:
            stars = -1.0
        if stars != 0 and stars not in STAR_STEPS:
            raise InvalidInput(
                f"stars must be 0 (not seen) or 0.5 to 5 in half steps, got {quoted(value)}",
                field=field,
            )
        ratings[int(match.group(1))] = stars
    return ratings


def _results(
    services: Services,
    db: Session,
    visitor: str | None,
    ratings: dict[int, float],
    year: str,
    model: str,
) -> tuple[str, int] | str:
    if not ratings:
        return _nothing_rated(services, year)
    result = services.recommender(model).recommend(ratings, year=year, n=RESULTS)
    _record(services, db, visitor, result, year)
    cards = _cards(services, result)
    return render_template(
        "pages/results.html",
        cards=cards,
        result=result,
        year=year,
        model=model,
        models=services.model_choices,
        n_rated=len(ratings),
        ignored=len(result.ignored),
    )


def _nothing_rated(services: Services, year: str) -> tuple[str, int]:
    """400: nothing rated; say so and offer popular picks instead."""
    result = services.recommender().recommend({}, year=year, n=RESULTS)
    return render_template(
        "errors/nothing_rated.html", cards=_cards(services, result), year=year
    ), 400


def _cards(services: Services, result: RecommendationList) -> list[dict[str, Any]]:
    movies = [r.movie for r in result.items]
    infos = services.tmdb.info_many(tmdb_ids(movies))
    return [recommendation_card(r, info_for(r.movie, infos)) for r in result.items]


def _record(
    services: Services, db: Session, visitor: str | None, result: RecommendationList, year: str
) -> None:
    """Remember the picks shown to a cookie visitor (their newest few only)."""
    picks = [(r.movie.movie_id, r.predicted_stars) for r in result.items]
    if picks and visitor:
        keep = services.settings.shown_per_visitor
        repo.record_shown(db, visitor, picks, result.model, year, keep=keep)
        db.commit()


def _visitor_id(db: Session, create: bool = False) -> str | None:
    """The visitor id from the signed cookie if the store knows it, else (if ``create``)
    a new one, set in the cookie."""
    visitor = session.get("visitor")
    if not isinstance(visitor, str) or db.get(Visitor, visitor) is None:
        visitor = None  # none yet, or forgotten (start over, retention): not revived
    if visitor is None and create:
        visitor = secrets.token_urlsafe(18)
        session["visitor"] = visitor
        session.permanent = True
    return visitor


def _stored_ratings(db: Session) -> dict[int, float]:
    visitor = session.get("visitor")
    return repo.visitor_ratings(db, visitor) if visitor else {}


def _known(services: Services, ratings: Mapping[int, float]) -> dict[int, float]:
    """Ratings of movies in the current catalogue (a data set change leaves others)."""
    catalog = services.recommenders.catalog
    return {m: s for m, s in ratings.items() if m in catalog}
