"""The ``Recommender`` protocol every movierec model follows.

A model is fitted once on a :class:`~movierec.data.Ratings`; a visitor who was not
in training is *folded in*: their state (factors, bias) is solved against the fixed
item parameters in milliseconds, then ``score`` rates every movie for them.

A model declares, as class attributes, what every model would otherwise repeat:

- ``params_type``: its hyper-parameters, a frozen dataclass of typed fields with
  defaults and bounds (:class:`~movierec.models.params.ModelParams`, e.g. ``EaseParams``);
  ``__init__`` checks them once into ``self.config`` (and ``config: EaseParams`` narrows
  its type), ``param_specs`` and ``defaults`` follow from it.
- ``array_specs``: the fitted arrays it saves (dtype and shape); each is an attribute of
  the same name (``RatedItems.specs`` entries are ``self.rated``, filled by ``fit``),
  created empty by ``__init__``, saved by ``_arrays`` and restored (cast to the declared
  dtype) by ``_set_arrays``.

so a subclass writes its maths: ``_fit``, ``_predict``, ``_fold_in``, ``_score`` (and
``_user_factors`` if it has factors). This class owns id maps, input checks, the
trained-user state and the ``.npz`` file format (arrays plus JSON metadata with a
checksum of each, see :mod:`movierec.models.files`; never pickle).
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np

from movierec.data.arrays import (
    AnyArray,
    BoolArray,
    Float32Array,
    Float64Array,
    FloatArray,
    IndexArray,
    Int64Array,
)
from movierec.data.catalog import Catalog
from movierec.data.ratings import Ratings
from movierec.errors import InvalidInput, ModelError
from movierec.models.calibration import LikeCalibration
from movierec.models.files import (
    ArraySpec,
    FileVersion,
    UnusableFile,
    check_finite,
    check_specs,
    damaged,
    read_model_file,
    write_model_file,
)
from movierec.models.foldin import RatedItems
from movierec.models.params import ModelParams, Param, param

#: saved model arrays are named ``m_<name>`` (beside ``user_ids`` and ``movie_ids``)
MODEL_PREFIX = "m_"
#: raw MovieLens ids, unique, in the model's row / column order
ID_SPEC = ArraySpec("int64", ("n",))
STAR_MIN, STAR_MAX = 0.5, 5.0
#: stars below this (2.5 or less) are a dislike: negative evidence in every model's
#: ranking and never a reason for a pick. Fixed rather than relative to the visitor's own
#: mean: a new visitor gives about five ratings, too few for a mean to mean much, and
#: "2.5 or less" is below the middle of the 0.5-5 scale whoever says it
DISLIKE_BELOW = 3.0
#: stars from which a rating is a like (3 is neither): what a visitor "liked" for the
#: genre mix their picks are calibrated to, and for whether they liked anything at all
LIKED_FROM = 3.5


@dataclass(frozen=True)
class GenreWeightParams(ModelParams):
    """Parameters of a served model: the re-ranking after it.

    genre_weight: how strongly a model's picks follow the visitor's genre mix (Steck's
        lambda, 0-1; 0: the model's own order), applied after the model by
        :mod:`movierec.rerank`; declared by the served models so that
        ``-p genre_weight=0`` gives their order before it.
    """

    genre_weight: float = param(0.7, high=1.0)


@dataclass
class UserState:
    """What a model knows of one user.

    items: ``(m,)`` int64 item indices the user rated (model's column order).
    stars: ``(m,)`` float32 their stars.
    factors: ``(k,)`` float32 latent factors, or None for models without any.
    bias: user bias in stars (0 where the model has none).
    """

    items: Int64Array
    stars: Float32Array
    factors: Float32Array | None = None
    bias: float = 0.0


@dataclass(frozen=True)
class PullRanking:
    """A ranking linear in what each rating pulls (``ease``'s), as parts: what the
    onboarding simulator needs to replay thousands of answers without a fold-in each.

    For a visitor whose ratings ``r`` pull the covered movies by ``pull = sum_r
    weights(stars_r) * pulls(r, :)``, ``relevance = pull * debias + prior`` (``terms``)
    and the ranking is ``relevance * gain(stars)`` where relevance is positive, itself
    elsewhere; movies outside ``items`` rank below all covered ones.

    items: ``(m,)`` int64 model columns the ranking covers.
    pulls: ``(rows, cols)`` -> ``(r, c)`` float32, how much a rating of column ``rows[i]``
        pulls column ``cols[j]`` (both covered columns).
    terms: ``cols`` ``(c,)`` -> ``(debias, prior)``, each ``(c,)`` float64.
    gain: stars ``(..., c)`` -> ``(..., c)`` what positive relevance is multiplied by.
    weights: stars ``(r,)`` -> ``(r,)`` float64 how much a rating with those stars pulls.
    start_stars: ``cols`` ``(c,)`` -> ``(c,)`` predicted stars before any rating, 0.5-5.
    """

    items: Int64Array
    pulls: Callable[[Int64Array, Int64Array], Float32Array]
    terms: Callable[[Int64Array], tuple[Float64Array, Float64Array]]
    gain: Callable[[FloatArray], FloatArray]
    weights: Callable[[FloatArray], Float64Array]
    start_stars: Callable[[Int64Array], FloatArray]


class Recommender(ABC):
    """Base class: fit / predict / fold_in / score / save / load."""

    name: ClassVar[str] = "base"
    #: the typed hyper-parameters, checked by ``__init__`` into ``self.config``
    params_type: ClassVar[type[ModelParams]] = ModelParams
    #: one check per parameter (from ``params_type``)
    param_specs: ClassVar[tuple[Param, ...]] = ()
    #: default hyper-parameters; ``__init__`` accepts exactly these keys (plus ``seed``).
    defaults: ClassVar[dict[str, Any]] = {}
    #: the checked hyper-parameters (subclasses narrow the type: ``config: EaseParams``)
    config: ModelParams
    #: True for models whose ranking is the same for every visitor (``popular``): what
    #: makes their picks personal is the re-ranking after them (:mod:`movierec.rerank`)
    ranks_alike: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "params_type" in cls.__dict__:
            cls.param_specs = cls.params_type.specs()
            cls.defaults = cls.params_type.defaults()

    def __init__(self, seed: int = 0, **params: Any) -> None:
        unknown = sorted(set(params) - set(self.defaults))
        if unknown:
            raise InvalidInput(
                f"unknown parameter(s) for model {self.name!r}: {', '.join(unknown)}; "
                f"known: {', '.join(sorted(self.defaults)) or 'none'}",
                field=unknown[0],
            )
        self.seed = int(seed)
        self.config = self.params_type.parse(params)
        self.movie_ids: Int64Array | None = None  # (n_items,)
        self.user_ids: Int64Array | None = None  # (n_users,)
        self.global_mean: float = 0.0
        self._movie_index: dict[int, int] = {}
        self._user_index: dict[int, int] = {}
        self.catalog: Catalog | None = None  # movie text for models that read it
        self.rated: RatedItems | None = None  # training ratings by user, if declared
        #: ``(unit item vectors,)`` for ``item_similarity``, built on first use per fit
        self._unit_vectors: tuple[Float32Array | None] | None = None
        #: the chance of 4+ stars, calibrated on held-out users (None: no figure shown)
        self.calibration: LikeCalibration | None = None
        #: which saved file this is (content hash, trained at); None until saved or loaded
        self.version: FileVersion | None = None
        #: figures of the training that made it (seconds, ratings, users, ...), saved in
        #: the file's metadata as ``training``; empty if none were recorded
        self.training: dict[str, Any] = {}
        #: ``(n_items,)`` int64 training ratings per movie (data set plus any visitors'),
        #: saved as ``item_counts``; None for a file saved before they were recorded
        self.item_counts: Int64Array | None = None
        for name, spec in self._own_array_specs().items():  # empty until fitted
            if spec.dtype != "str":
                setattr(self, name, np.zeros((0,) * len(spec.shape), dtype=spec.dtype))

    @property
    def params(self) -> dict[str, Any]:
        """The hyper-parameters as a plain JSON-able dict (a copy; ``config`` is typed)."""
        return self.config.as_dict()

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}({args}, seed={self.seed})"

    # -- fitting ----------------------------------------------------------------
    @property
    def needs_catalog(self) -> bool:
        """True for models that read movie text (genres, tags) from a catalogue when
        fitting (False here; ``content`` and a ``blend`` with it say True)."""
        return False

    def with_catalog(self, catalog: Catalog) -> Self:
        """Movie text (titles, genres, tags; no ratings) for the next ``fit``; returns self.

        Models that read none (``needs_catalog`` False) keep it unused.
        """
        self.catalog = catalog
        return self

    def fit(
        self, ratings: Ratings, progress: bool = False, *, catalog: Catalog | None = None
    ) -> Self:
        """Fit on ``ratings``; returns self. ``progress`` shows a bar per epoch;
        ``catalog`` is the same as ``with_catalog(catalog)`` first."""
        if catalog is not None:
            self.with_catalog(catalog)
        self._set_ids(ratings.user_ids, ratings.movie_ids)
        self.global_mean = ratings.global_mean
        self.calibration = None  # calibrated for the previous fit, if any
        self.version, self.training = None, {}  # not saved yet; figures of another fit
        self.item_counts = np.bincount(ratings.matrix.indices, minlength=ratings.n_items)
        if self._keeps_rated():
            self.rated = RatedItems.from_ratings(ratings)
        self._unit_vectors = None  # item vectors change
        self._fit(ratings, progress=progress)
        return self

    @property
    def is_fitted(self) -> bool:
        return self.movie_ids is not None

    @property
    def n_items(self) -> int:
        return int(self._ids()[1].size)

    @property
    def n_users(self) -> int:
        return int(self._ids()[0].size)

    def _ids(self) -> tuple[Int64Array, Int64Array]:
        """``(user_ids, movie_ids)`` of a fitted model (``ModelError`` before a fit)."""
        if self.user_ids is None or self.movie_ids is None:
            raise ModelError(f"model {self.name!r} is not fitted; call fit(ratings) first")
        return self.user_ids, self.movie_ids

    # -- Surprise-style prediction in raw ids ------------------------------------
    def predict(self, user_ids: Iterable[int], movie_ids: Iterable[int]) -> Float64Array:
        """``(n,)`` float64 predicted stars for pairs of raw ids, clipped to 0.5-5.

        Users or movies unseen in training get the model's fallback (biases it knows,
        else the global mean), as Surprise does.
        """
        self._check_fitted()
        users = np.fromiter((self._user_index.get(int(u), -1) for u in user_ids), np.int64)
        items = np.fromiter((self._movie_index.get(int(m), -1) for m in movie_ids), np.int64)
        if users.shape != items.shape:
            raise InvalidInput("user_ids and movie_ids must have the same length")
        if users.size == 0:
            return np.zeros(0, dtype=np.float64)
        est = np.asarray(self._predict(users, items), dtype=np.float64)
        return np.clip(est, STAR_MIN, STAR_MAX)

    # -- new visitors --------------------------------------------------------------
    def fold_in(self, movie_ids: Iterable[int], stars: Iterable[float]) -> UserState:
        """Solve a new user's state from their ratings against fixed item parameters.

        movie_ids: raw MovieLens ids; all must be known to the model.
        stars: their ratings, 0.5-5.
        """
        self._check_fitted()
        movie_ids = list(movie_ids)
        values = np.asarray(list(stars), dtype=np.float32)
        if len(movie_ids) != values.size:
            raise InvalidInput("movie_ids and stars must have the same length", field="stars")
        bad = values[(values < STAR_MIN) | (values > STAR_MAX) | ~np.isfinite(values)]
        if bad.size:
            raise InvalidInput(f"stars must be between 0.5 and 5, got {bad[0]:g}", field="stars")
        items = self.items_of(movie_ids)
        return self._fold_in(items, values)

    def user_state(self, user_id: int) -> UserState:
        """The trained state of a training user (raw id)."""
        self._check_fitted()
        if int(user_id) not in self._user_index:
            raise InvalidInput(f"unknown userId {user_id}", field="userId")
        return self._user_state(self._user_index[int(user_id)])

    def score(self, state: UserState) -> Float32Array:
        """``(n_items,)`` float32 predicted stars for every movie (model's column order),
        clipped to 0.5-5."""
        self._check_fitted()
        scores = np.asarray(self._score(state), dtype=np.float32)
        return np.clip(scores, STAR_MIN, STAR_MAX, out=scores.copy())

    def rank(self, state: UserState) -> Float32Array:
        """``(n_items,)`` float32 ranking scores for top-N: higher is recommended first.

        Defaults to the model's unclipped estimate (clipping would tie every movie
        predicted above 5 stars and let the movie id decide); a model tuned for top-N
        (e.g. one that also weighs how likely a movie is to be watched at all) ranks by
        something else while ``score`` still gives stars to show.
        """
        self._check_fitted()
        return np.asarray(self._rank(state), dtype=np.float32)

    def _rank(self, state: UserState) -> FloatArray:
        return self._score(state)

    def rank_and_score(self, state: UserState) -> tuple[Float32Array, Float32Array]:
        """``(rank(state), score(state))``, both ``(n_items,)`` float32; a model whose rank
        is built on its stars (``ease``) computes them once."""
        return self.rank(state), self.score(state)

    def top_k(self, state: UserState, k: int, allowed: BoolArray | None = None) -> Int64Array:
        """``(min(k, n),)`` int64 indices of the ``k`` items ranked highest by ``rank``,
        best first, among ``allowed`` (``(n_items,)`` bool; None: every item, the rated
        ones included); ties go to the lower index (:func:`top_indices`).

        The same as ranking everything and sorting; a model may find them without
        ranking every item (``ease``: its kept movies rank above all others).
        """
        ranking = self.rank(state)
        if allowed is None:
            return top_indices(ranking, k)
        candidates = np.flatnonzero(allowed)
        return candidates[top_indices(ranking[candidates], k)]

    def rank_users(self, states: Sequence[UserState]) -> Float32Array:
        """``(len(states), n_items)`` float32: ``rank`` of each state, many at once.

        The default loops over ``rank``; models override it with one matrix product
        (factor models) or one sparse x dense product (ease). Rows equal ``rank``'s.
        """
        self._check_fitted()
        out = np.empty((len(states), self.n_items), dtype=np.float32)
        for row, state in enumerate(states):
            out[row] = self._rank(state)
        return out

    def rank_at(self, states: Sequence[UserState], items: IndexArray) -> Float64Array:
        """``(len(states), items.size)`` float64: ``rank`` of each state at ``items`` only.

        The explanations re-rank a few picks for each left-out rating; ranking the whole
        catalogue for each cost about 5 ms of CPU a request. This default takes the
        columns of ``rank_users``; models whose rank at one movie does not depend on the
        others (factor models, ``ease``'s kept movies) override it. Equal to
        ``rank_users(states)[:, items]`` for every model (tested).
        """
        items = np.asarray(items, dtype=np.int64)
        return np.asarray(self.rank_users(states), dtype=np.float64)[:, items]

    def fold_in_without_each(
        self,
        movie_ids: Iterable[int],
        stars: Iterable[float],
        only: Iterable[int] | None = None,
    ) -> list[UserState]:
        """``fold_in`` of the ratings without each one in turn (state ``i`` lacks rating
        ``i``): what each rating adds, e.g. to find which one moved a pick most.
        ``only``: positions (into ``movie_ids``) to leave out, one state each in that
        order (default: every position)."""
        self._check_fitted()
        items = self.items_of(movie_ids)
        values = np.asarray(list(stars), dtype=np.float32)
        positions = (
            np.arange(items.size) if only is None else np.asarray(list(only), dtype=np.int64)
        )
        return self._fold_in_without_each(items, values, positions)

    def explain(
        self,
        state: UserState,
        picks: IndexArray,
        reasons: Iterable[int] | None = None,
        n: int = 3,
    ) -> list[list[int]]:
        """Per pick, up to ``n`` of the visitor's rated movieIds whose leaving-out lowers
        the pick's rank score most, largest drop first (only drops above 0).

        ``state``: the visitor's fold-in (its ``items`` and ``stars``); ``picks``:
        ``(n_picks,)`` item indices; ``reasons``: the rated movieIds that may be named
        (default: all of them), e.g. only the liked ones. Each is left out in turn, the
        visitor folded in again without it and the picks re-ranked (``rank_at``), so the
        answer is exact for every model, not a similarity proxy (``fold_in_without_each`` at
        the candidate reasons only: one closed-form pass where the model has one, else a
        fold-in per candidate). A model that ranks alike for everyone
        (``ranks_alike``, ``popular``: a rating moves every movie by the same amount)
        names no reason.
        """
        self._check_fitted()
        picks = np.asarray(picks, dtype=np.int64)
        rated = [int(m) for m in np.asarray(self.movie_ids)[np.asarray(state.items)]]
        stars = [float(s) for s in np.asarray(state.stars)]
        allowed = set(rated) if reasons is None else {int(m) for m in reasons}
        tried = [k for k, m in enumerate(rated) if m in allowed]
        if not picks.size or not tried or n <= 0 or self.ranks_alike:
            return [[] for _ in range(int(picks.size))]
        states = self.fold_in_without_each(rated, stars, only=tried)
        drops = self.rank_at([state], picks) - self.rank_at(states, picks)  # (tried, picks)
        out = []
        for k in range(picks.size):
            order = np.argsort(-drops[:, k], kind="stable")
            order = order[drops[order, k] > 0][:n]
            out.append([rated[tried[j]] for j in order])
        return out

    def pull_ranking(self) -> PullRanking | None:
        """The ranking as :class:`PullRanking` parts, for models whose ranking is linear
        in what each rating pulls (``ease``); None for the others (the default)."""
        return None

    def fold_in_reg(self) -> float | None:
        """The factor penalty per rating a visitor is folded in with (``reg_all``: the
        ridge prior), or None for a model that does not say (the default)."""
        return None

    def set_fitted(
        self,
        user_ids: IndexArray,
        movie_ids: IndexArray,
        global_mean: float,
        arrays: dict[str, AnyArray],
    ) -> Self:
        """Make this unfitted model hold arrays fitted elsewhere (e.g. by Spark); returns
        self. ``user_ids`` / ``movie_ids``: ``(n_users,)`` / ``(n_items,)`` raw ids in row
        order; ``arrays``: every declared array (``array_specs``), cast to its declared
        dtype and checked as ``load`` checks a file's (``ModelError`` naming the first
        that does not fit)."""
        specs = self.array_specs
        arrays = {k: _as_declared(v, specs[k]) if k in specs else v for k, v in arrays.items()}
        self._set_ids(user_ids, movie_ids)
        self.global_mean = float(global_mean)
        try:
            self._check_arrays(arrays, self._sizes())
        except UnusableFile as exc:
            raise ModelError(f"arrays for model {self.name!r}: {exc}") from None
        self._set_arrays(arrays)
        return self

    def item_vectors(self) -> FloatArray | None:
        """``(n_items, k)`` float32 item representation used to explain picks, or None."""
        return None

    # -- similar movies ------------------------------------------------------------
    def item_similarity(self, movie_id: int) -> Float32Array:
        """``(n_items,)`` float32: how alike each movie is to ``movie_id`` in who rated
        and liked them, -1 to 1 (0: nothing known; the movie itself included).

        Default: cosine of ``item_vectors()`` rows (all zeros for a model without item
        vectors). Models with a better item-item structure override it (``ease``).
        ``InvalidInput`` for a movie the model does not know.
        """
        self._check_fitted()
        item = int(self.items_of([movie_id])[0])
        unit = self._unit_item_vectors()
        if unit is None:
            return np.zeros(self.n_items, dtype=np.float32)
        # einsum, not ``unit @ unit[item]``: BLAS may hand a matrix-vector product to its
        # thread pool, 30 ms instead of 1.4 ms on a busy 2-core machine (bench/README.md)
        similarity: Float32Array = np.einsum("ij,j->i", unit, unit[item])
        return similarity

    def similar_items(
        self, movie_ids: Iterable[int], n: int = 10, exclude: Iterable[int] = ()
    ) -> list[int]:
        """Up to ``n`` raw movieIds most like ``movie_ids`` (their ``item_similarity``
        summed), most similar first; only movies with a positive similarity, never one
        of ``movie_ids`` or ``exclude``. Movies the model does not know are ignored (none
        known: an empty list). Ties go to the lower item index.
        """
        self._check_fitted()
        known = [int(m) for m in movie_ids if self.has_movie(m)]
        if not known or n <= 0:
            return []
        total = np.zeros(self.n_items, dtype=np.float64)
        for movie_id in known:
            total += self.item_similarity(movie_id)
        banned = self.items_of([*known, *(int(m) for m in exclude if self.has_movie(m))])
        total[banned] = -np.inf
        movie_index = np.asarray(self.movie_ids)
        return [int(movie_index[i]) for i in top_indices(total, n) if total[i] > 0]

    def _unit_item_vectors(self) -> Float32Array | None:
        """``(n_items, k)`` float32 ``item_vectors()`` rows scaled to length 1, built once
        per fit (``fit`` forgets them); None without item vectors."""
        if self._unit_vectors is None:
            vectors = self.item_vectors()
            if vectors is not None:
                vectors = np.asarray(vectors, dtype=np.float32)
                norms = np.linalg.norm(vectors, axis=1, keepdims=True)
                vectors = vectors / np.maximum(norms, np.float32(1e-9))
            self._unit_vectors = (vectors,)
        return self._unit_vectors[0]

    # -- id maps -------------------------------------------------------------------
    def items_of(self, movie_ids: Iterable[int]) -> Int64Array:
        """``(n,)`` int64 item indices of raw ids; ``InvalidInput`` naming an unknown one."""
        out = []
        for m in movie_ids:
            try:
                out.append(self._movie_index[int(m)])
            except (KeyError, TypeError, ValueError):
                raise InvalidInput(f"unknown movieId {m}", field="movieId") from None
        return np.asarray(out, dtype=np.int64)

    def has_movie(self, movie_id: int) -> bool:
        return int(movie_id) in self._movie_index

    def _set_ids(self, user_ids: IndexArray, movie_ids: IndexArray) -> None:
        self.user_ids = np.asarray(user_ids, dtype=np.int64)
        self.movie_ids = np.asarray(movie_ids, dtype=np.int64)
        self._user_index = {int(u): i for i, u in enumerate(self.user_ids)}
        self._movie_index = {int(m): i for i, m in enumerate(self.movie_ids)}

    def _check_fitted(self) -> None:
        if self.movie_ids is None:
            raise ModelError(f"model {self.name!r} is not fitted; call fit(ratings) first")

    # -- persistence -----------------------------------------------------------------
    #: dtype and shape of every array ``_arrays`` returns (see :class:`ArraySpec`)
    array_specs: ClassVar[dict[str, ArraySpec]] = {}

    def _check_arrays(
        self, arrays: Mapping[str, AnyArray], sizes: dict[str, int], prefix: str = ""
    ) -> None:
        """Raise ``UnusableFile`` naming the first of ``arrays`` (keys ``prefix + name``)
        that breaks ``array_specs``; ``sizes`` holds ``n_users`` and ``n_items``.

        Integer parameters (``n_factors``) are sizes too. Models made of members check
        theirs by overriding this and calling each member's with its prefix.
        """
        params = {
            k: v for k, v in self.params.items() if isinstance(v, int) and not isinstance(v, bool)
        }
        check_specs(self.array_specs, arrays, {**params, **sizes}, prefix)

    def _sizes(self) -> dict[str, int]:
        return {"n_users": self.n_users, "n_items": self.n_items}

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write arrays + JSON metadata (with a sha256 of every array) to one ``.npz``
        file, atomically and durably. Returns the path.

        Temp files an interrupted save left beside it are removed first.
        """
        self._check_fitted()
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_suffix(".npz")
        user_ids, movie_ids = self._ids()
        arrays = {
            "user_ids": user_ids,
            "movie_ids": movie_ids,
            **{f"{MODEL_PREFIX}{k}": np.asarray(v) for k, v in self._arrays().items()},
        }
        try:  # never write a file that load would refuse
            self._check_arrays(arrays, self._sizes(), MODEL_PREFIX)
            for name, array in arrays.items():
                check_finite(name, array)
        except UnusableFile as exc:
            raise ModelError(f"not saving model {self.name!r} to {path}; the model {exc}") from None
        meta = {
            "model": self.name,
            "params": self.params,
            "seed": self.seed,
            "global_mean": self.global_mean,
        }
        if self.calibration is not None:  # arrays ``c_*``, outside the model's own
            arrays.update(self.calibration.arrays())
            meta["calibration"] = self.calibration.info
        if self.training:
            meta["training"] = self.training
        if self.item_counts is not None:
            arrays["item_counts"] = np.asarray(self.item_counts, dtype=np.int64)
        self.version = FileVersion.of(write_model_file(path, arrays, meta))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Recommender:
        """Read a model written by ``save``; the file says which model class it is.

        Raises ``ModelError`` (one line naming the path) for a missing file and for any
        damage: a bad checksum, shape, dtype, id list, NaN weights, bad metadata.
        """
        path = Path(path)
        try:
            meta, arrays = read_model_file(path)
            model = _model_from(meta, arrays)
        except FileNotFoundError:
            raise ModelError(f"no saved model at {path}") from None
        except UnusableFile as exc:
            raise ModelError(f"model file {path} {exc}") from None
        if cls is not Recommender and not isinstance(model, cls):
            raise ModelError(f"{path} holds a {model.name!r} model, not {cls.name!r}")
        return model

    # -- declared arrays ----------------------------------------------------------------
    @classmethod
    def _keeps_rated(cls) -> bool:
        """True if the model declares ``RatedItems.specs`` (what each user rated)."""
        return all(name in cls.array_specs for name in RatedItems.specs)

    @classmethod
    def _own_array_specs(cls) -> dict[str, ArraySpec]:
        """The declared arrays held as attributes (all but ``self.rated``'s)."""
        return {k: v for k, v in cls.array_specs.items() if k not in RatedItems.specs}

    def _arrays(self) -> dict[str, AnyArray]:
        """Every declared array by name (``self.rated``'s included), in its declared dtype."""
        arrays = {
            name: _as_declared(getattr(self, name), spec)
            for name, spec in self._own_array_specs().items()
        }
        if self._keeps_rated():
            arrays.update(self._rated_items().arrays())
        return arrays

    def _set_arrays(self, arrays: dict[str, AnyArray]) -> None:
        """Restore what ``_arrays`` gave (checked against ``array_specs`` by ``load``),
        each cast to its declared dtype."""
        for name, spec in self._own_array_specs().items():
            setattr(self, name, _as_declared(arrays[name], spec))
        if self._keeps_rated():
            self.rated = RatedItems.from_arrays(arrays)

    def _rated_items(self) -> RatedItems:
        """``self.rated``: the training ratings by user (``ModelError`` before a fit)."""
        if self.rated is None:
            raise ModelError(f"model {self.name!r} holds no training ratings; fit it first")
        return self.rated

    # -- trained users -----------------------------------------------------------------
    def _user_state(self, user: int) -> UserState:
        """A training user's ratings (``self.rated``), factors (``_user_factors``) and
        bias (``self.user_bias`` where the model has one)."""
        items, stars = self._rated_items().row(user)
        bias = getattr(self, "user_bias", None)
        return UserState(
            items=items,
            stars=stars,
            factors=self._user_factors(user),
            bias=float(bias[user]) if bias is not None and bias.size else 0.0,
        )

    def _user_factors(self, user: int) -> Float32Array | None:
        """``(k,)`` float32 factors of training user ``user``; None for models without."""
        return None

    # -- for subclasses ----------------------------------------------------------------
    @abstractmethod
    def _fit(self, ratings: Ratings, progress: bool) -> None: ...

    @abstractmethod
    def _predict(self, users: Int64Array, items: Int64Array) -> FloatArray:
        """Estimates for index pairs; -1 marks a user/item unknown at fit time."""

    @abstractmethod
    def _fold_in(self, items: Int64Array, stars: Float32Array) -> UserState: ...

    def _fold_in_without_each(
        self, items: Int64Array, stars: Float32Array, only: Int64Array
    ) -> list[UserState]:
        """The fold-in of ``items``/``stars`` without rating ``i``, for each position
        ``i`` of ``only`` (``(m,)`` int64), e.g. to find which rating moved a pick most.
        The default folds in once a position; a model with a closed form (ridge
        fold-ins) answers all at once."""
        keep = np.ones(items.size, dtype=bool)
        states = []
        for i in only:
            keep[i] = False
            states.append(self._fold_in(items[keep], stars[keep]))
            keep[i] = True
        return states

    @abstractmethod
    def _score(self, state: UserState) -> FloatArray:
        """``(n_items,)`` estimated stars, unclipped (``score`` clips, ``rank`` may not)."""


def top_indices(values: FloatArray, k: int) -> Int64Array:
    """``(min(k, n),)`` int64 indices of the ``k`` largest of ``values`` ``(n,)``, largest
    first; among equal values the lower index wins, also at the cut (``argpartition``
    alone may keep any of several values tied with the ``k``-th).

    ``values`` must hold no NaN.
    """
    values = np.asarray(values)
    if values.size <= k:
        return np.argsort(-values, kind="stable")
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    part = np.argpartition(-values, k - 1)[:k]
    kth = values[part].min()
    above = np.flatnonzero(values > kth)  # fewer than k
    tied = np.flatnonzero(values == kth)[: k - above.size]
    chosen = np.concatenate([above, tied])
    return chosen[np.argsort(-values[chosen], kind="stable")]


def _as_declared(array: AnyArray, spec: ArraySpec) -> AnyArray:
    """``array`` in ``spec``'s dtype (no copy if it already is)."""
    array = np.asarray(array)
    return array if spec.dtype == "str" else array.astype(spec.dtype, copy=False)


def _model_from(meta: dict[str, Any], arrays: dict[str, AnyArray]) -> Recommender:
    """The model ``meta`` and ``arrays`` (checksums verified) describe; ``UnusableFile``
    if they do not describe a usable one."""
    from movierec.models.registry import model_class

    name, params, seed = meta.get("model"), meta.get("params"), meta.get("seed")
    try:
        klass = model_class(str(name))
    except InvalidInput:
        raise damaged(f"unknown model {str(name)[:40]!r}") from None
    try:
        if not isinstance(params, dict) or not isinstance(seed, int):
            raise TypeError("params must be an object and seed an integer")
        model = klass(seed=seed, **params)
        model.global_mean = float(meta["global_mean"])
    except (InvalidInput, TypeError, ValueError, KeyError) as exc:
        raise damaged(f"bad parameters for model {name!r}: {str(exc)[:100]}") from None
    if not np.isfinite(model.global_mean):
        raise damaged("global_mean is not finite")
    for ids in ("user_ids", "movie_ids"):
        ID_SPEC.check(ids, arrays.get(ids), {})
        if np.unique(arrays[ids]).size != arrays[ids].size:
            raise damaged(f"{ids} has duplicates")
    model._set_ids(arrays["user_ids"], arrays["movie_ids"])
    model._check_arrays(arrays, model._sizes(), MODEL_PREFIX)
    if "item_counts" in arrays:  # older files have none
        ArraySpec("int64", ("n_items",)).check("item_counts", arrays["item_counts"], model._sizes())
        model.item_counts = arrays["item_counts"]
    n = len(MODEL_PREFIX)
    try:
        model._set_arrays({k[n:]: v for k, v in arrays.items() if k.startswith(MODEL_PREFIX)})
    except (KeyError, IndexError, ValueError, TypeError) as exc:
        raise damaged(f"arrays do not fit model {name!r}: {str(exc)[:100]}") from None
    if "calibration" in meta:  # a file without one loads too (no figure is shown)
        model.calibration = LikeCalibration.from_file(meta["calibration"], arrays)
    model.version = FileVersion.of(meta)
    training = meta.get("training")
    model.training = dict(training) if isinstance(training, dict) else {}
    return model
