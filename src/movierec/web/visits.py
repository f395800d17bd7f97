"""The visitor workflow, shared by the pages and the JSON API.

One place runs store -> recommend -> record -> commit, so the views only parse their
input (form fields, JSON) and render their output (HTML, JSON):

- :meth:`Visits.save_ratings`: a visitor's new stars (0 = "not seen", removes a rating)
  stored and committed in one transaction (the form POST, "seen it" on a result card).
- :meth:`Visits.hide`: "not interested": the movie is never recommended to them again;
  :meth:`Visits.unhide` undoes it, :meth:`Visits.hidden` lists them.
- :meth:`Visits.picks`: the ranked picks, from ratings given (the API: anonymous, nothing
  stored or recorded) or from the visitor's stored ratings minus the movies they hid or
  put on their watchlist (the pages), recorded as shown for the visitor, one commit;
  optionally narrowed (e.g. to "on my services") from a larger pool.
- :meth:`Visits.watchlist_first`: the visitor's watchlist ranked by the same call,
  best match first.

Models never see Flask: this module takes plain values (visitor id, ``{movieId: stars}``)
from the views; the visitor id itself lives in the views' signed cookie.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from flask import session
from sqlalchemy.orm import Session

from movierec.errors import InvalidInput, quoted
from movierec.inputs import count_json, count_text, movie_id_text, year_preference
from movierec.recommend import Recommendation, RecommendationList, validate_year
from movierec.store import repo
from movierec.web import metrics
from movierec.web.catalogue import get_catalogue
from movierec.web.services import Services
from movierec.web.visitor import forget_lists, visitor_lists

#: picks on the results page by default, and the most "show more" reaches
DEFAULT_PICKS = 5
MAX_PICKS = 50
PICKS_STEP = 5
#: similar movies ranked for the visitor when they ask for "more like this" pick
LIKE_POOL = 40
#: picks ranked before narrowing them (e.g. to "on my services")
NARROW_POOL = 60
#: watchlist movies the picks page ranks ("from your watchlist, best match first")
WATCHLIST_FIRST = 5


@dataclass(frozen=True)
class PicksQuery:
    """What the visitor asked for: year preference, model name, number of picks, and
    optionally one genre ("only Horror") or the movie whose like they want."""

    year: str
    model: str
    n: int
    genre: str | None = None
    #: "more like this": picks among the movies most similar to this movieId
    like: int | None = None


@dataclass(frozen=True)
class Picks:
    """The outcome of :meth:`Visits.picks`."""

    result: RecommendationList
    query: PicksQuery
    #: ratings the picks were computed from (all of the visitor's stored ones, or given)
    n_rated: int
    #: movies left out because the visitor marked them "not interested"
    n_hidden: int = 0
    #: movies left out because they are on the visitor's watchlist
    n_watchlist: int = 0


class Visits:
    """The workflow over one app's :class:`Services` (store, catalogue, models)."""

    def __init__(self, services: Services) -> None:
        self.services = services

    # -- parsing shared by the views ---------------------------------------------------
    def query(
        self,
        year: object,
        model: object,
        n: object = None,
        genre: object = None,
        like: object = None,
    ) -> PicksQuery:
        """Validated picks query; ``InvalidInput`` naming ``year``, ``model``, ``n``,
        ``genre`` or ``like``.

        ``n`` may be None (the default), an int or a string of 1-2 ASCII digits (a query
        parameter); pages offer ``DEFAULT_PICKS`` up to ``MAX_PICKS``. ``genre``: None or
        "" (all) or one of the catalogue's genres; ``like``: None or "" or a catalogue
        movieId (int or 1-9 ASCII digits).
        """
        year = year_preference(year)
        name = self.services.model_name(model)
        if genre == "":
            genre = None
        genres = self.services.recommender(name).genres
        if genre is not None and (not isinstance(genre, str) or genre not in genres):
            shown = quoted(genre) if isinstance(genre, str) else repr(genre)
            raise InvalidInput(f"unknown genre {shown}; choose from {', '.join(genres)}", "genre")
        return PicksQuery(
            year=validate_year(year), model=name, n=_picks(n), genre=genre, like=self._like(like)
        )

    def _like(self, like: object) -> int | None:
        if like is None or like == "":
            return None
        movie_id = movie_id_text(like) if isinstance(like, str) else like  # one spelling
        if isinstance(movie_id, bool) or not isinstance(movie_id, int):
            raise InvalidInput(f"like must be a movieId, got {quoted(str(like))}", field="like")
        if movie_id not in self.services.recommenders.catalog:
            raise InvalidInput(f"unknown movie {movie_id}", field="like")
        return movie_id

    def known(self, ratings: Mapping[int, float]) -> dict[int, float]:
        """Ratings of movies in the current catalogue (a data set change leaves others)."""
        catalog = self.services.recommenders.catalog
        return {m: s for m, s in ratings.items() if m in catalog}

    # -- actions --------------------------------------------------------------------------
    def save_ratings(self, db: Session, visitor: str, stars: Mapping[int, float]) -> None:
        """Store ``{movieId: stars}`` for ``visitor`` (0 removes a rating); one commit.

        Removals go first, so a visitor at ``MOVIEREC_MAX_RATINGS_PER_VISITOR`` can swap
        one movie for another; past the cap :class:`RatingsFull` (a 400), nothing stored.
        """
        removed = [m for m, s in stars.items() if s == 0]
        if removed:
            repo.delete_ratings(db, visitor, removed)
        cap = self.services.settings.max_ratings_per_visitor
        repo.upsert_ratings(db, visitor, {m: s for m, s in stars.items() if s > 0}, cap=cap)
        db.commit()
        forget_lists()

    def hide(self, db: Session, visitor: str, movie_id: int) -> None:
        """Mark ``movie_id`` "not interested" for ``visitor``; one commit."""
        if movie_id not in self.services.recommenders.catalog:
            raise InvalidInput(f"unknown movie {movie_id}", field="movie_id")
        repo.hide_movie(db, visitor, movie_id)
        db.commit()
        forget_lists()

    def unhide(self, db: Session, visitor: str, movie_id: int) -> bool:
        """Undo "not interested" in ``movie_id``; one commit. True if it was hidden."""
        if movie_id not in self.services.recommenders.catalog:
            raise InvalidInput(f"unknown movie {movie_id}", field="movie_id")
        was = repo.unhide_movie(db, visitor, movie_id)
        db.commit()
        forget_lists()
        return was

    def hidden(self, db: Session, visitor: str | None) -> list[tuple[int, datetime]]:
        """``(movieId, hidden_at)`` of the visitor's hidden catalogue movies, newest first."""
        rows = repo.hidden_rows(db, visitor) if visitor else []
        db.commit()
        catalog = self.services.recommenders.catalog
        return [(m, when) for m, when in rows if m in catalog]

    def stored_ratings(self, db: Session, visitor: str | None) -> dict[int, float]:
        """The visitor's stored ratings of catalogue movies (none without a visitor)."""
        return self.known(self.lists(db, visitor).ratings)

    @staticmethod
    def lists(db: Session, visitor: str | None) -> repo.VisitorLists:
        """The visitor's ratings, hidden movies and watchlist (the cookie visitor's are
        read once per request: :func:`movierec.web.visitor.visitor_lists`)."""
        if not visitor:
            return repo.VisitorLists({}, set(), set())
        if visitor == session.get("visitor"):
            return visitor_lists(db)
        return repo.visitor_lists(db, visitor)

    def picks(
        self,
        db: Session,
        query: PicksQuery,
        visitor: str | None = None,
        ratings: Mapping[int, float] | None = None,
        narrow: Callable[[Sequence[Recommendation]], list[Recommendation]] | None = None,
        exclude: Iterable[int] = (),
    ) -> Picks:
        """Recommend -> record -> commit.

        ``ratings`` given (the API): used as they are, nothing stored or recorded.
        ``ratings`` None: the ``visitor``'s stored ratings, without the movies they hid
        or put on their watchlist, and the picks recorded as shown to them (their newest
        few only); ``MAX_PICKS`` are ranked and the first ``query.n`` kept, so every page
        size shows the same order. ``query.like``: only among the ``LIKE_POOL`` movies
        most similar to it (:mod:`movierec.similar`), ranked for the visitor.
        ``narrow``: keeps some of the best ``NARROW_POOL`` picks (in order);
        the first ``query.n`` of those are the picks. ``exclude``: more movies never
        picked (the API's watchlist).
        """
        hidden: set[int] = set()
        watchlist: set[int] = set()
        pages = ratings is None
        if ratings is None:
            lists = self.lists(db, visitor)
            ratings = self.known(lists.ratings)
            hidden, watchlist = lists.hidden, lists.watchlist
            db.commit()  # nothing held open while the model ranks
        service = self.services.recommender(query.model)
        n = max(query.n, NARROW_POOL) if narrow else query.n
        if pages and narrow is None:
            # the pages rank MAX_PICKS and show the first n, so "show 5 more" only adds
            # below (the genre-mix re-ranking is prefix-stable only within its pool)
            n = MAX_PICKS
        excluded = hidden | watchlist | {int(m) for m in exclude}
        only = None
        if query.like is not None:  # "more like this": its similar movies, ranked for them
            finder = get_catalogue().similar_for(query.model, service)
            only = finder.similar(query.like, LIKE_POOL, exclude=excluded | set(ratings))
        keep = None if narrow else query.n  # narrowing needs the whole pool explained
        with metrics.RECOMMEND_SECONDS.labels(service.model.name).time():
            result = service.recommend(
                ratings,
                year=query.year,
                n=n,
                exclude=excluded,
                only=only,
                genre=query.genre,
                keep=keep,
            )
        if narrow is not None:
            result = replace(result, items=narrow(result.items)[: query.n])
        if visitor is not None and result.items:
            picks = [(r.movie.movie_id, r.predicted_stars) for r in result.items]
            keep = self.services.settings.shown_per_visitor
            repo.record_shown(db, visitor, picks, result.model, query.year, keep=keep)
            db.commit()
        return Picks(
            result=result,
            query=query,
            n_rated=len(ratings),
            n_hidden=len(hidden),
            n_watchlist=len(watchlist - hidden),
        )

    def watchlist_first(
        self, db: Session, query: PicksQuery, visitor: str | None, n: int = WATCHLIST_FIRST
    ) -> RecommendationList | None:
        """The visitor's watchlist ranked for them by the same recommend call (year
        preference and popularity floor not applied: they chose these), best match
        first; None without a watchlist or ratings. Nothing is recorded."""
        if not visitor:
            return None
        lists = self.lists(db, visitor)
        ratings = self.known(lists.ratings)
        chosen = lists.watchlist - lists.hidden
        db.commit()
        if not chosen or not ratings:
            return None
        service = self.services.recommender(query.model)
        return service.recommend(ratings, year=query.year, n=n, only=chosen)


def _picks(n: object) -> int:
    if n is None or n == "":
        return DEFAULT_PICKS
    if isinstance(n, str):  # a query parameter or form field
        return count_text(n, "n", 1, MAX_PICKS)
    return count_json(n, "n", 1, MAX_PICKS)
