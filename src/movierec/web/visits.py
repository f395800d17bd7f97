"""The visitor workflow, shared by the pages and the JSON API.

One place runs store -> recommend -> record -> commit, so the views only parse their
input (form fields, JSON) and render their output (HTML, JSON):

- :meth:`Visits.save_ratings`: a visitor's new stars (0 = "not seen", removes a rating)
  stored and committed in one transaction (the form POST, "seen it" on a result card).
- :meth:`Visits.hide`: "not interested": the movie is never recommended to them again.
- :meth:`Visits.picks`: the ranked picks, from ratings given (the API: anonymous, nothing
  stored or recorded) or from the visitor's stored ratings minus the movies they hid (the
  pages), recorded as shown for the visitor, one commit.

Models never see Flask: this module takes plain values (visitor id, ``{movieId: stars}``)
from the views; the visitor id itself lives in the views' signed cookie.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy.orm import Session

from movierec.errors import InvalidInput
from movierec.recommend import RecommendationList, validate_year
from movierec.store import repo
from movierec.web import metrics
from movierec.web.services import Services

#: picks on the results page by default, and the most "show more" reaches
DEFAULT_PICKS = 5
MAX_PICKS = 20
PICKS_STEP = 5


@dataclass(frozen=True)
class PicksQuery:
    """What the visitor asked for: year preference, model name, number of picks."""

    year: str
    model: str
    n: int


@dataclass(frozen=True)
class Picks:
    """The outcome of :meth:`Visits.picks`."""

    result: RecommendationList
    query: PicksQuery
    #: ratings the picks were computed from (all of the visitor's stored ones, or given)
    n_rated: int
    #: movies left out because the visitor marked them "not interested"
    n_hidden: int = 0


class Visits:
    """The workflow over one app's :class:`Services` (store, catalogue, models)."""

    def __init__(self, services: Services) -> None:
        self.services = services

    # -- parsing shared by the views ---------------------------------------------------
    def query(self, year: object, model: object, n: object = None) -> PicksQuery:
        """Validated picks query; ``InvalidInput`` naming ``year``, ``model`` or ``n``.

        ``n`` may be None (the default), an int or a string of 1-2 ASCII digits (a query
        parameter); pages offer ``DEFAULT_PICKS`` up to ``MAX_PICKS``.
        """
        if not isinstance(year, str):
            raise InvalidInput("year must be one of old, new, any", field="year")
        return PicksQuery(
            year=validate_year(year), model=self.services.model_name(model), n=_picks(n)
        )

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

    def hide(self, db: Session, visitor: str, movie_id: int) -> None:
        """Mark ``movie_id`` "not interested" for ``visitor``; one commit."""
        if movie_id not in self.services.recommenders.catalog:
            raise InvalidInput(f"unknown movie {movie_id}", field="movie_id")
        repo.hide_movie(db, visitor, movie_id)
        db.commit()

    def stored_ratings(self, db: Session, visitor: str | None) -> dict[int, float]:
        """The visitor's stored ratings of catalogue movies (none without a visitor)."""
        return self.known(repo.visitor_ratings(db, visitor)) if visitor else {}

    def picks(
        self,
        db: Session,
        query: PicksQuery,
        visitor: str | None = None,
        ratings: Mapping[int, float] | None = None,
    ) -> Picks:
        """Recommend -> record -> commit.

        ``ratings`` given (the API): used as they are, nothing stored or recorded.
        ``ratings`` None: the ``visitor``'s stored ratings, without the movies they hid,
        and the picks recorded as shown to them (their newest few only).
        """
        hidden: set[int] = set()
        if ratings is None:
            ratings = self.stored_ratings(db, visitor)
            hidden = repo.hidden_movies(db, visitor) if visitor else set()
            db.commit()  # nothing held open while the model ranks
        service = self.services.recommender(query.model)
        with metrics.RECOMMEND_SECONDS.labels(service.model.name).time():
            result = service.recommend(ratings, year=query.year, n=query.n, exclude=hidden)
        if visitor is not None and result.items:
            picks = [(r.movie.movie_id, r.predicted_stars) for r in result.items]
            keep = self.services.settings.shown_per_visitor
            repo.record_shown(db, visitor, picks, result.model, query.year, keep=keep)
            db.commit()
        return Picks(result=result, query=query, n_rated=len(ratings), n_hidden=len(hidden))


def _picks(n: object) -> int:
    if n is None or n == "":
        return DEFAULT_PICKS
    if isinstance(n, str) and n.isascii() and n.isdigit() and len(n) <= 2:
        n = int(n)
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_PICKS:
        raise InvalidInput(f"n must be a whole number from 1 to {MAX_PICKS}", field="n")
    return n
