"""One interface for everything the harness measures: our models and the peers.

A :class:`Method` is fitted on a fold's training :class:`Ratings`, then asked for

- ``predict(user_ids, movie_ids)``: stars for raw-id pairs (rating metrics);
- ``score_users(users)``: a ``(len(users), n_items)`` score matrix for training users
  (row indices of the training ``Ratings``, columns in its item order) to rank from;
- ``score_visitor(items, stars)``: ``(ranking, stars)``, two ``(n_items,)`` rows for
  someone who was not in training and rated ``items`` (column indices): what to rank by
  and the predicted stars, for the onboarding protocol.

The metric code never looks behind this interface, so our models and the peers are
measured by the same lines.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from movierec import models
from movierec.data.arrays import Float32Array, Float64Array, FloatArray, IndexArray, Int64Array
from movierec.data.catalog import Catalog
from movierec.data.ratings import Ratings
from movierec.models.base import STAR_MAX, STAR_MIN, UserState
from movierec.rerank import Calibration, GenreMix, personal_order

#: picks re-ordered by :func:`~movierec.rerank.personal_order` per user: the protocols'
#: longest list (recall@20); the rest keep the model's order below them
RERANKED = 20


class Method(ABC):
    """Something the harness can fit, predict with and rank with (see module doc)."""

    #: "ours" or "peer"
    kind: ClassVar[str] = "ours"
    #: whether ``score_visitor`` works (a new user folded in without refitting)
    can_fold_in: ClassVar[bool] = True

    def __init__(self, name: str, seed: int = 0, params: Mapping[str, Any] | None = None) -> None:
        self.name = name
        self.seed = int(seed)
        self.params: dict[str, Any] = dict(params or {})
        #: caveats to print in the report (filled in by subclasses / after fitting)
        self.notes: list[str] = []
        self.train: Ratings | None = None

    @property
    def can_rank(self) -> bool:
        """Whether ``score_users`` is worth calling (top-N metrics); a method may decide
        per fit (``SurpriseKNNBaseline``: from the fold's size)."""
        return True

    @property
    def n_items(self) -> int:
        assert self.train is not None, "fit first"
        return self.train.n_items

    def fit(self, train: Ratings) -> None:
        """Fit a fresh model on ``train`` (each call starts from scratch)."""
        self.train = train
        self._fit(train)

    @abstractmethod
    def _fit(self, train: Ratings) -> None: ...

    @abstractmethod
    def predict(self, user_ids: IndexArray, movie_ids: IndexArray) -> Float64Array:
        """``(n,)`` float64 predicted stars for raw-id pairs (unknown ids: a fallback)."""

    @abstractmethod
    def score_users(self, users: IndexArray) -> FloatArray:
        """``(len(users), n_items)`` scores for training users (higher = recommend first)."""

    def score_visitor(self, items: IndexArray, stars: FloatArray) -> tuple[FloatArray, FloatArray]:
        """``(ranking, predicted stars)``, each ``(n_items,)``, for a new user who rated
        ``items`` with ``stars``."""
        raise NotImplementedError(f"{self.name} cannot fold in a new user")

    def score_visitors(
        self, visitors: Sequence[tuple[IndexArray, FloatArray]]
    ) -> tuple[FloatArray, FloatArray]:
        """``score_visitor`` for many ``(items, stars)`` at once: ``(rankings, stars)``,
        each ``(len(visitors), n_items)``. Loops unless a method does better."""
        rankings = np.empty((len(visitors), self.n_items), dtype=np.float64)
        stars = np.empty_like(rankings)
        for row, (items, given) in enumerate(visitors):
            rankings[row], stars[row] = self.score_visitor(items, given)
        return rankings, stars

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "params": self.params, "notes": self.notes}


class OurModel(Method):
    """A movierec model (``models.create(name, seed=..., **params)``).

    Models that take movie text (``with_catalog``, e.g. ``content``, ``blend``) get the
    data set's catalogue: titles, genres and tags, not ratings, so nothing leaks from test.

    Ranks training users by ``model.rank(model.user_state(user_id))`` and visitors by
    ``model.rank(model.fold_in(movie_ids, stars))``: the recommend service's code path
    (``rank`` defaults to the predicted stars, ``score``; a model tuned for top-N may rank
    by something else), many users at once through ``model.rank_users(states)`` (one
    matrix product for factor models). With a catalogue, each user's first ``RERANKED``
    are then re-ordered by :func:`~movierec.rerank.personal_order`, as the app does (they
    get scores above every other movie, in that order). Rating metrics use
    ``model.predict``; the onboarding protocol's cold-start RMSE uses ``model.score`` of
    the folded-in state.
    """

    kind = "ours"

    def __init__(
        self,
        name: str,
        seed: int = 0,
        params: Mapping[str, Any] | None = None,
        catalog: Catalog | None = None,
    ) -> None:
        super().__init__(name, seed, params)
        models.model_class(name)  # unknown name -> InvalidInput before any work
        self.catalog = catalog
        self.model: models.Recommender | None = None
        self._columns: Int64Array | None = None
        self._mix: GenreMix | None = None

    def _fit(self, train: Ratings) -> None:
        self.model = models.create(self.name, seed=self.seed, **self.params)
        # movie text (genres, tags) for models that read it; no ratings
        self.model.fit(train, progress=False, catalog=self.catalog)
        movie_ids = np.asarray(self.model.movie_ids)  # fitted just above
        self._mix = None if self.catalog is None else GenreMix.of(self.catalog, movie_ids)
        if movie_ids is not None and np.array_equal(movie_ids, train.movie_ids):
            self._columns = None
        else:  # the model orders (or knows) movies differently: map its columns onto ours
            index = {int(m): i for i, m in enumerate(movie_ids)}
            self._columns = np.array([index.get(int(m), -1) for m in train.movie_ids])

    def predict(self, user_ids: IndexArray, movie_ids: IndexArray) -> Float64Array:
        assert self.model is not None
        return self.model.predict(user_ids, movie_ids)

    def score_users(self, users: IndexArray) -> FloatArray:
        assert self.model is not None and self.train is not None
        model, user_ids = self.model, self.train.user_ids
        states = [model.user_state(int(user_ids[user])) for user in users]
        rankings = np.asarray(model.rank_users(states), dtype=np.float32)
        return self._align(self._personal(rankings, states))

    def score_visitor(self, items: IndexArray, stars: FloatArray) -> tuple[FloatArray, FloatArray]:
        assert self.model is not None and self.train is not None
        state = self.model.fold_in(self.train.movie_ids[items], stars)
        ranking = self._personal(self.model.rank(state)[None, :], [state])[0]
        return self._align(ranking), self._align(self.model.score(state))

    def score_visitors(
        self, visitors: Sequence[tuple[IndexArray, FloatArray]]
    ) -> tuple[FloatArray, FloatArray]:
        """Fold every visitor in, then ``model.rank_users`` ranks them all at once (one
        matrix product for factor models, one sparse x dense product for ease). Stars are
        the clipped ranking where the model ranks by its stars, else ``model.score_users``
        (states -> stars, optional; ease has it) or ``model.score`` of each."""
        assert self.model is not None and self.train is not None
        model, movie_ids = self.model, self.train.movie_ids
        states = [model.fold_in(movie_ids[items], stars) for items, stars in visitors]
        rankings = model.rank_users(states)
        # rank is the unclipped score unless the class (or this instance) ranks otherwise
        patched = {"rank", "rank_users"} & set(vars(model))
        if type(model)._rank is models.Recommender._rank and not patched:
            stars = np.maximum(np.minimum(rankings, STAR_MAX), STAR_MIN)  # np.clip: slower
        elif hasattr(model, "score_users"):  # optional: stars for many states at once (ease)
            stars = model.score_users(states)
        else:
            stars = np.stack([model.score(s) for s in states]) if states else rankings.copy()
        return self._align(self._personal(rankings.copy(), states)), self._align(stars)

    def _personal(self, rankings: Float32Array, states: Sequence[UserState]) -> Float32Array:
        """``rankings`` ``(n, n_items)`` (model columns) with each row's first ``RERANKED``
        unrated movies re-ordered by ``personal_order`` and lifted above the rest."""
        if self._mix is None or self.model is None:
            return rankings
        for row, state in enumerate(states):
            allowed = np.isfinite(rankings[row])
            allowed[state.items] = False
            picks = personal_order(
                rankings[row], np.flatnonzero(allowed), state.items, state.stars, RERANKED,
                self._mix, Calibration.of(self.model),
            )  # fmt: skip
            top = float(rankings[row][allowed].max()) if allowed.any() else 0.0
            rankings[row, picks] = top + np.arange(picks.size, 0, -1, dtype=np.float32)
        return rankings

    def describe(self) -> dict[str, Any]:
        """Name, kind, the model's effective parameters (defaults filled in) and notes."""
        out = super().describe()
        if self.model is not None:
            out["params"] = {**self.model.params, "seed": self.model.seed}
        return out

    def _align(self, scores: FloatArray) -> FloatArray:
        """Scores in the model's column order -> ours (last axis); unknown movies -inf."""
        if self._columns is None:
            return scores
        out = np.where(self._columns >= 0, scores[..., self._columns], -np.inf)
        return out.astype(np.float32)
