"""A linear blend of several models, weights learned on held-out training ratings.

``stars(u, i) = mu + sum_m w_m (stars_m(u, i) - mu)`` where ``stars_m`` are the members'
(clipped) estimates and ``mu`` the global mean: a blend of the members' departures from
the mean, so a pair nobody knows still gets ``mu``. Fitting: carve
``validation_fraction`` of the training ratings out at random, fit every member on the
rest, learn ``w`` by least squares of the held-out ``r - mu`` on the members'
``stars_m - mu``, then refit every member on all the training ratings. Fit time is
therefore about twice the members' total.

A visitor is folded in by every member (:class:`BlendState` keeps their states); scores
are the same weighted sum. Saved as one ``.npz``: the members' arrays under
``<index>.<name>``, the weights beside them; no pickle.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from movierec.data.arrays import AnyArray, Float32Array, Float64Array, FloatArray, Int64Array
from movierec.data.ratings import Ratings
from movierec.errors import InvalidInput
from movierec.models.base import STAR_MAX, STAR_MIN, Recommender, UserState
from movierec.models.files import ArraySpec, check_specs
from movierec.models.params import ModelParams, param

#: fewer held-out ratings than this per weight and the blend is the members' plain mean
MIN_HELD_OUT_PER_WEIGHT = 20
#: what ``members`` and ``member_params`` accept, as their error messages say it
MEMBERS_ARE = "a non-empty list of distinct model names"
MEMBER_PARAMS_ARE = "a map of member names to {param: value} dicts"


@dataclass
class BlendState(UserState):
    """A blend's user state: the shared ratings plus each member's own state."""

    members: tuple[UserState, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class BlendParams(ModelParams):
    """The typed parameters of :class:`Blend` (documented there)."""

    members: tuple[str, ...] = param(("svdpp", "itemknn"), accepts=MEMBERS_ARE)
    member_params: dict[str, dict[str, Any]] = param({}, accepts=MEMBER_PARAMS_ARE)
    validation_fraction: float = param(0.1, strict=True)  # and below 1: __init__


class Blend(Recommender):
    """Least-squares blend of registered models.

    Parameters (defaults from ``bench/tune.py`` on a validation split of ml-100k u1.base):

    - ``members``: model names, e.g. ``["svdpp", "svd", "als", "itemknn"]`` (distinct).
    - ``member_params``: ``{name: {param: value}}`` overriding a member's defaults.
    - ``validation_fraction``: share of the training ratings held out to learn weights
      (with fewer than ``MIN_HELD_OUT_PER_WEIGHT`` per weight: equal weights instead).

    Members that need the catalogue (``content``) get the one passed to
    ``fit(ratings, catalog=...)`` or ``with_catalog``.
    """

    name: ClassVar[str] = "blend"
    params_type: ClassVar[type[ModelParams]] = BlendParams
    config: BlendParams

    def __init__(self, seed: int = 0, **params: Any) -> None:
        super().__init__(seed=seed, **params)
        from movierec.models import model_class

        members = self.config.members
        if not members or len(set(members)) != len(members):
            raise InvalidInput(f"members must be {MEMBERS_ARE}, got {members!r}", field="members")
        for name in members:
            if name == self.name:
                raise InvalidInput("a blend cannot be its own member", field="members")
            model_class(name)  # unknown name -> InvalidInput naming it
        overrides = self.config.member_params
        if not all(isinstance(v, dict) for v in overrides.values()):
            raise InvalidInput(
                "member_params must map member names to {param: value} dicts",
                field="member_params",
            )
        extra = sorted(set(overrides) - set(members))
        if extra:
            raise InvalidInput(
                f"member_params names model(s) not among members: {', '.join(extra)}",
                field="member_params",
            )
        if not self.config.validation_fraction < 1:
            raise InvalidInput("validation_fraction must be below 1", field="validation_fraction")
        self.weights = np.zeros(0, dtype=np.float64)  # (n_members,) one per member
        self.members: list[Recommender] = self._new_members()  # bad member_params fail here

    def _new_members(self) -> list[Recommender]:
        from movierec.models import create

        overrides = self.config.member_params
        return [
            create(name, seed=self.seed + index, **overrides.get(name, {}))
            for index, name in enumerate(self.config.members)
        ]

    @property
    def needs_catalog(self) -> bool:
        """True when a member needs movie text (``fit(ratings, catalog=...)``)."""
        return any(member.needs_catalog for member in self.members)

    def _fit_member(self, member: Recommender, ratings: Ratings, progress: bool) -> None:
        if self.catalog is not None:
            member.with_catalog(self.catalog)
        member.fit(ratings, progress=progress)

    # -- Recommender -------------------------------------------------------------------
    def _fit(self, ratings: Ratings, progress: bool) -> None:
        rng = np.random.default_rng(self.seed)
        frame = ratings.to_frame()
        held_out = rng.random(len(frame)) < self.config.validation_fraction
        n_members = len(self.members)
        if held_out.sum() < MIN_HELD_OUT_PER_WEIGHT * n_members or held_out.all():
            # too little data to learn weights: the plain mean of the members
            self.weights = np.full(n_members, 1.0 / n_members)
        else:
            part_ratings = Ratings.from_frame(frame[~held_out])
            check = frame[held_out]
            del frame  # at 25 M ratings every copy is hundreds of MB: keep one at a time
            mean = part_ratings.global_mean
            estimates = []
            for index in range(n_members):  # one fitted member alive at a time
                member = self._new_members()[index]
                self._fit_member(member, part_ratings, progress)
                estimates.append(member.predict(check["userId"], check["movieId"]) - mean)
                del member
            del part_ratings
            stars = check["rating"].to_numpy(np.float64) - mean
            self.weights = np.linalg.lstsq(np.column_stack(estimates), stars, rcond=None)[0]
        self.members = self._new_members()
        for member in self.members:
            self._fit_member(member, ratings, progress)

    def _predict(self, users: Int64Array, items: Int64Array) -> Float64Array:
        est = np.full(users.shape, self.global_mean, dtype=np.float64)
        for weight, member in zip(self.weights, self.members, strict=True):
            member_est = np.clip(member._predict(users, items), STAR_MIN, STAR_MAX)
            est += weight * (member_est - self.global_mean)
        return est

    def _fold_in(self, items: Int64Array, stars: Float32Array) -> BlendState:
        states = tuple(member._fold_in(items, stars) for member in self.members)
        return BlendState(items=items, stars=stars, members=states)

    def _user_state(self, user: int) -> BlendState:
        states = tuple(member._user_state(user) for member in self.members)
        return BlendState(items=states[0].items, stars=states[0].stars, members=states)

    def _score(self, state: UserState) -> Float32Array:
        """``(n_items,)`` float32: ``mu + sum_m w_m (score_m - mu)``; unclipped."""
        if not isinstance(state, BlendState):
            state = self._fold_in(np.asarray(state.items, np.int64), np.asarray(state.stars))
        scores = np.full(self.n_items, self.global_mean, dtype=np.float64)
        for weight, member, member_state in zip(
            self.weights, self.members, state.members, strict=True
        ):
            scores += weight * (member.score(member_state) - self.global_mean)  # clipped, as fitted
        return scores.astype(np.float32)

    def item_vectors(self) -> FloatArray | None:
        """The first member's item vectors that has any (used to explain picks)."""
        self._check_fitted()
        for member in self.members:
            vectors = member.item_vectors()
            if vectors is not None:
                return vectors
        return None

    def _arrays(self) -> dict[str, AnyArray]:
        arrays: dict[str, AnyArray] = {"weights": self.weights}
        for index, member in enumerate(self.members):
            prefix = f"{index}.{member.name}."
            arrays.update({prefix + k: v for k, v in member._arrays().items()})
        return arrays

    def _check_arrays(
        self, arrays: Mapping[str, AnyArray], sizes: dict[str, int], prefix: str = ""
    ) -> None:
        check_specs(
            {"weights": ArraySpec("float64", ("n_members",))},
            arrays,
            {"n_members": len(self.members)},
            prefix,
        )
        for index, member in enumerate(self.members):
            member._check_arrays(arrays, sizes, f"{prefix}{index}.{member.name}.")

    def _set_arrays(self, arrays: dict[str, AnyArray]) -> None:
        self.weights = np.asarray(arrays["weights"], dtype=np.float64)
        self.members = self._new_members()
        for index, member in enumerate(self.members):
            prefix = f"{index}.{member.name}."
            member._set_ids(*self._ids())
            member.global_mean = self.global_mean
            member._set_arrays(
                {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}
            )
