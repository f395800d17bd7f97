"""The pages: rate movies, pick a year preference, see and act on the picks.

Every form answers with a 303 redirect to a GET page (Post/Redirect/Get), so reloading
or going back never re-posts:

- ``GET /``: 15 cards to rate, with the visitor's earlier stars filled in (``?more=1``
  favours movies not rated yet).
- ``POST /recommendations``: stores the stars (CSRF-protected; "seen it" on a result card
  posts here too) -> 303 to ``GET /recommendations``.
- ``GET /recommendations?year=&model=&n=&genre=&like=``: the picks from the stored ratings
  (5 by default, "show 5 more" up to 50), optionally only of one genre or among the movies
  most like one (``like``: "more like this", ranked for the visitor); with nothing rated, a
  200 page inviting the visitor to rate, with popular picks (the API answers 400 there).
- ``POST /recommendations/hide``: "not interested" in one pick -> 303 back to the picks,
  which offer to undo it (JavaScript asks for JSON and undoes it in place).
- ``POST /recommendations/unhide``: undo "not interested" -> 303 back to the picks, or to
  ``/ratings/hidden`` when posted from there.
- ``GET /start-over``: asks for confirmation; ``POST /start-over`` forgets the visitor
  (ratings, hidden movies, picks shown, the id itself) -> 303 to ``/``.

The work (store -> recommend -> record -> commit) is :mod:`movierec.web.visits`, shared
with the JSON API; these views parse the form and render.

The visitor is anonymous: a random id in Flask's signed session cookie, renewed on
each visit and expiring after ``MOVIEREC_RETENTION_DAYS``. The id is revocable: "start
over" deletes the visitor's row, and a cookie naming a visitor the store does not know
(forgotten, pruned or replayed after start over) gets a fresh id on the next submission.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import (
    Blueprint,
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
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from movierec.errors import QUOTE_LIMIT, InvalidInput, quoted
from movierec.inputs import STAR_STEPS, STARS_RULE, movie_id_text, stars_text
from movierec.recommend import DEFAULT_SPLIT_YEAR, YEAR_CHOICES, RecommendationList
from movierec.store import repo
from movierec.web.cards import (
    STAR_CHOICES,
    info_for,
    rating_card,
    recommendation_card,
    star_label,
    tmdb_ids,
)
from movierec.web.services import MODEL_HELP, MODEL_LABELS, Services, get_services
from movierec.web.visitor import visitor_id, visitor_lists
from movierec.web.visits import DEFAULT_PICKS, MAX_PICKS, PICKS_STEP, Picks, PicksQuery, Visits
from movierec.web.watchlist import on_my_services, watch_context, watch_summary

bp = Blueprint("pages", __name__)

RATING_PREFIX = "rating-"
#: session key of the movies shown this visit (compact, see Onboarding.encode_shown)
SHOWN_KEY = "shown"
#: session key of a notice for one place of the picks page (saved stars, "choose stars",
#: "hidden. Undo"), shown once in the card standing there after the redirect
NOTICE_KEY = "pick_notice"
MAX_SHOWN_COOKIE = 2000
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
        star_choices=STAR_CHOICES,
        star_label=star_label,
        year_labels=YEAR_LABELS,
        year_choices=YEAR_CHOICES,
        model_labels=MODEL_LABELS,
        model_help=MODEL_HELP,
        form_urls=form_urls,
    )


#: the forms every pick card posts to, by the names the macros use
FORM_ENDPOINTS = {
    "submit": "pages.submit",
    "hide": "pages.hide",
    "unhide": "pages.unhide",
    "watch_add": "watchlist.add",
    "watch_remove": "watchlist.remove",
}


def form_urls() -> dict[str, str]:
    """The pick cards' form actions, built once per request: a page of picks used to
    build the same five URLs some forty times (``url_for`` is a route-map build each)."""
    found: dict[str, str] | None = g.get("form_urls")
    if found is None:
        found = g.form_urls = {key: url_for(name) for key, name in FORM_ENDPOINTS.items()}
    return found


@bp.get("/")
def index() -> str:
    """The onboarding form: 15 cards from the onboarding strategy given the stored
    ratings; ``?more=1`` asks for the next 15 (never a movie rated or shown this
    visit, the shown ones kept compactly in the session cookie), ``?genre=`` narrows
    the cards to one genre (unknown genre -> 400)."""
    services = get_services()
    db = services.store.scoped
    rated = _known(services, _stored_ratings(db))
    db.commit()  # nothing held open while TMDB answers
    more = request.args.get("more") == "1"
    genre = request.args.get("genre") or None
    onboarding = services.onboarding()
    earlier = onboarding.decode_shown(session.get(SHOWN_KEY)) if more else []
    batch = services.draw_onboarding(rated, fresh_first=more, shown=earlier, genre=genre)
    movies = batch.movies
    shown_text = onboarding.encode_shown([*earlier, *(m.movie_id for m in movies)])
    # a visit that paged through very much restarts its list rather than outgrow the cookie
    session[SHOWN_KEY] = shown_text if len(shown_text) <= MAX_SHOWN_COOKIE else ""
    infos = services.tmdb.info_many(tmdb_ids(movies))
    cards = [rating_card(m, info_for(m, infos), rated.get(m.movie_id)) for m in movies]
    shown = {c["movie_id"] for c in cards}
    return render_template(
        "pages/index.html",
        cards=cards,
        n_rated=len(rated),
        n_rated_shown=len(set(rated) & shown),
        n_rated_hidden=len(set(rated) - shown),
        year=session.get("year", "any"),
        model=services.default_model,
        genres=onboarding.genres,
        genre=genre,
        exhausted=batch.exhausted,
    )


@bp.post("/more")
def more() -> Response:
    """Show me 15 more: store the stars given on this page (CSRF-protected), then 303
    to the next cards (same genre)."""
    services = get_services()
    form_ratings = parse_form_ratings(request.form, services)
    if form_ratings:
        db = services.store.scoped
        visitor = visitor_id(db, create=True)
        Visits(services).save_ratings(db, visitor, form_ratings)
    genre = request.form.get("genre") or None
    if genre is not None and genre not in services.onboarding().genres:
        raise InvalidInput(f"unknown genre {quoted(genre)}", field="genre")
    return redirect(url_for("pages.index", more=1, genre=genre), code=303)


@bp.post("/recommendations")
def submit() -> Response:
    """Store the submitted stars, then 303 to the picks."""
    services = get_services()
    form_ratings = parse_form_ratings(request.form, services)
    visits = Visits(services)
    query = _form_query(visits)
    rank = request.form.get("rank")
    seen = request.form.get("seen")  # "Seen it? Rate it" on a pick: that movie's id
    if seen is not None and not any(s > 0 for s in form_ratings.values()):
        text = "Choose stars first: click the stars you would give it, then Save rating."
        _pick_notice(rank, text, error=True)
        return _to_picks(services, query, rank)
    db = services.store.scoped
    visitor = visitor_id(db, create=True)
    session["year"] = query.year
    visits.save_ratings(db, visitor, form_ratings)
    if seen is not None:
        catalog = services.recommenders.catalog
        saved = [f"{catalog.get(m).display_title} {star_label(s)}" for m, s in form_ratings.items()]
        _pick_notice(rank, f"Saved: you gave {', '.join(saved)}. Your picks are updated.")
    return _to_picks(services, query, rank)


@bp.get("/recommendations")
def results() -> tuple[str, int] | str:
    """The picks for the stored ratings (another model, year preference or count)."""
    services = get_services()
    visits = Visits(services)
    query = visits.query(
        request.args.get("year", session.get("year", "any")),
        request.args.get("model"),
        request.args.get("n"),
        request.args.get("genre"),
        request.args.get("like"),
    )
    db = services.store.scoped
    visitor = visitor_id(db)
    on = _on_choice(request.args.get("on"))
    watch = watch_context(db)
    narrow, checked = None, {"unchecked": 0}
    if on == "mine" and watch.configured and watch.services:
        narrow, checked = on_my_services(services, watch)  # "on my services"
    picks = visits.picks(db, query, visitor=visitor, narrow=narrow)
    if not picks.n_rated:
        return _nothing_rated(services, picks)
    result = picks.result
    first = visits.watchlist_first(db, query, visitor)
    catalog = services.recommenders.catalog
    notice = session.pop(NOTICE_KEY, None)
    return render_template(
        "pages/results.html",
        cards=_cards(services, result),
        on=on,
        watch=watch,
        unchecked=checked["unchecked"],
        n_watchlist=picks.n_watchlist,
        watchlist_cards=_cards(services, first) if first else [],
        result=result,
        year=query.year,
        model=query.model,
        n=query.n,
        genre=query.genre,
        genres=services.recommender(query.model).genres,
        like=catalog.get(query.like) if query.like is not None else None,
        notice=notice if isinstance(notice, dict) else None,
        more=min(query.n + PICKS_STEP, MAX_PICKS) if query.n < MAX_PICKS else None,
        models=services.model_choices,
        n_rated=picks.n_rated,
        n_hidden=picks.n_hidden,
        ignored=len(result.ignored),
    )


@bp.post("/recommendations/hide")
def hide() -> Response:
    """Mark a pick "not interested": never recommended to the visitor again; 303 back."""
    services = get_services()
    visits = Visits(services)
    movie_id = _movie_id(request.form.get("movie_id", ""))
    query = _form_query(visits)
    db = services.store.scoped
    visitor = visitor_id(db, create=True)
    visits.hide(db, visitor, movie_id)
    title = services.recommenders.catalog.get(movie_id).display_title
    if _wants_json():  # app.js: the card says "Hidden. Undo" in place
        return jsonify(movie_id=movie_id, title=title, hidden=True)
    rank = request.form.get("rank")
    _pick_notice(rank, f"{title} is hidden: we will not suggest it again.", undo=movie_id)
    return _to_picks(services, query, rank)


@bp.post("/recommendations/unhide")
def unhide() -> Response:
    """Undo "not interested": the movie may be suggested again; 303 back to the picks,
    or to the Hidden tab of /ratings when ``back=hidden``."""
    services = get_services()
    visits = Visits(services)
    movie_id = _movie_id(request.form.get("movie_id", ""))
    back = request.form.get("back", "")
    query = _form_query(visits) if back != "hidden" else None
    db = services.store.scoped
    visitor = visitor_id(db)
    if visitor:
        visits.unhide(db, visitor, movie_id)
    elif movie_id not in services.recommenders.catalog:
        raise InvalidInput(f"unknown movie {movie_id}", field="movie_id")
    title = services.recommenders.catalog.get(movie_id).display_title
    if _wants_json():
        return jsonify(movie_id=movie_id, title=title, hidden=False)
    text = f"{title} is no longer hidden: it may be suggested again."
    if query is None:
        flash(text)
        return redirect(url_for("ratings.hidden"), code=303)
    _pick_notice(request.form.get("rank"), text)
    return _to_picks(services, query, request.form.get("rank"))


def _pick_notice(
    rank: str | None, text: str, undo: int | None = None, *, error: bool = False
) -> None:
    """Say ``text`` once in the card at ``rank`` of the next picks page (where the visitor
    acted; above the list without a rank), with an "Undo" of hiding movie ``undo``;
    ``error``: the card's "Seen it? Rate it" stays open."""
    place = _rank(rank)
    session[NOTICE_KEY] = {"rank": place, "text": text, "undo": undo, "error": error}


def _on_choice(on: str | None) -> str:
    """``on``: "mine" (only picks on the visitor's services) or left out (""), else 400."""
    if on in (None, "", "mine"):
        return on or ""
    raise InvalidInput(f"on must be mine or left out, got {quoted(on)}", field="on")


def _rank(rank: str | None) -> int | None:
    """A posted card place 1-``MAX_PICKS``, else None."""
    if rank and len(rank) <= 2 and rank.isascii() and rank.isdigit() and 0 < int(rank) <= MAX_PICKS:
        return int(rank)
    return None


def _wants_json() -> bool:
    """The request asks for JSON (app.js's in-place hide and undo), not a page."""
    accept = request.accept_mimetypes
    return accept.best_match(["application/json", "text/html"]) == "application/json"


def _form_query(visits: Visits) -> PicksQuery:
    """Year (else the visitor's last), model, count, genre and "like" from a posted form."""
    return visits.query(
        request.form.get("year", session.get("year", "any")),
        request.form.get("model"),
        request.form.get("n"),
        request.form.get("genre"),
        request.form.get("like"),
    )


@bp.get("/start-over")
def confirm_start_over() -> str:
    """Ask before forgetting everything."""
    services = get_services()
    db = services.store.scoped
    n_rated = len(_known(services, _stored_ratings(db)))
    db.commit()
    return render_template("pages/start_over.html", n_rated=n_rated)


@bp.post("/start-over")
def start_over() -> Response:
    """Forget the visitor (ratings, hidden movies, picks shown, the id); 303 to the form.

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
    return redirect(url_for("pages.index"), code=303)


def parse_form_ratings(form: MultiDict[str, str], services: Services) -> dict[int, float]:
    """``{movieId: stars}`` from ``rating-<movieId>`` fields; 0 means "not seen"."""
    catalog = services.recommenders.catalog
    ratings: dict[int, float] = {}
    for key, value in form.items():
        if not key.startswith(RATING_PREFIX):
            continue
        field = key[:QUOTE_LIMIT]
        movie_id = movie_id_text(key.removeprefix(RATING_PREFIX))  # its one spelling
        if movie_id is None or movie_id not in catalog:
            raise InvalidInput(f"unknown movie in field {quoted(key)}", field=field)
        stars = stars_text(value, allow_zero=True)
        if stars is None:
            raise InvalidInput(
                f"stars must be 0 (not seen) or {STARS_RULE}, got {quoted(value)}",
                field=field,
            )
        ratings[movie_id] = stars
    return ratings


def _to_picks(services: Services, query: PicksQuery, rank: str | None = None) -> Response:
    """303 to the picks page of ``query``, with only the parameters that differ from the
    defaults.

    ``rank``: the place of the card acted on ("seen it", "not interested"); the page
    opens there (``#rank-3``), where the pick that moved up now stands, so the visitor
    does not lose their place. Anything else opens at the list.
    """
    args: dict[str, Any] = {"year": query.year}
    if query.model != services.default_model:
        args["model"] = query.model
    if query.n != DEFAULT_PICKS:
        args["n"] = query.n
    if query.genre is not None:
        args["genre"] = query.genre
    if query.like is not None:
        args["like"] = query.like
    if _on_choice(request.form.get("on")):  # "on my services" stays on after a card's form
        args["on"] = "mine"
    place = _rank(rank)
    anchor = f"rank-{place}" if place is not None else "picks"
    return redirect(url_for("pages.results", **args, _anchor=anchor), code=303)


def _nothing_rated(services: Services, picks: Picks) -> str:
    """200: nothing rated yet is a normal state; invite rating and offer popular picks."""
    return render_template(
        "pages/nothing_rated.html",
        cards=_cards(services, picks.result),
        year=picks.query.year,
    )


def _cards(services: Services, result: RecommendationList) -> list[dict[str, Any]]:
    movies = [r.movie for r in result.items]
    infos = services.tmdb.info_many(tmdb_ids(movies))
    tags = services.recommenders.catalog.tags
    watch = watch_context()
    return [
        {
            **recommendation_card(r, info_for(r.movie, infos), tags),
            "watch": watch_summary(info_for(r.movie, infos), watch),
        }
        for r in result.items
    ]


def _movie_id(value: str) -> int:
    """A movie id form field in its one spelling, else 400 naming ``movie_id``."""
    movie_id = movie_id_text(value)
    if movie_id is None:
        raise InvalidInput(f"no movie like {quoted(value)}", field="movie_id")
    return movie_id


def _stored_ratings(db: Session) -> dict[int, float]:
    return visitor_lists(db).ratings


def _known(services: Services, ratings: Mapping[int, float]) -> dict[int, float]:
    """Ratings of movies in the current catalogue (a data set change leaves others)."""
    catalog = services.recommenders.catalog
    return {m: s for m, s in ratings.items() if m in catalog}
