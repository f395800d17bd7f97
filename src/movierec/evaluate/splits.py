"""How ratings (or users) are split into train and test folds.

Split strings, as the CLI takes them (:func:`parse_split`):

- ``official``: ml-100k's five published folds u1..u5 (80,000 / 20,000 ratings each).
- ``kfold:K``: the ratings shuffled (seeded) and cut into ``K`` folds; each rating is in
  exactly one test fold, as Surprise's ``KFold``.
- ``holdout:F``: one fold; for every user a fraction ``F`` of their ratings (rounded,
  at least one kept for training) goes to test: per-user stratified, so every user with
  two or more ratings is both trained on and tested.
- ``holdout:F:random``: one fold; a fraction ``F`` of all ratings drawn at random.

The onboarding protocol splits *users* instead (:func:`user_folds`): ``kfold:K`` puts
each user in one of ``K`` held-out groups, ``holdout:F`` holds out a fraction ``F``.

Every function is deterministic given ``seed``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from movierec.data.arrays import BoolArray
from movierec.errors import InvalidInput

#: a fold: (train ratings, test ratings), frames with ``userId, movieId, rating`` columns
Fold = tuple[pd.DataFrame, pd.DataFrame]

MAX_FOLDS = 20


@dataclass(frozen=True)
class Split:
    """A parsed split string.

    kind: ``"official"``, ``"kfold"`` or ``"holdout"``.
    n_folds: folds produced (5 for official, ``K`` for kfold, 1 for holdout).
    fraction: test fraction of a holdout (None otherwise).
    per_user: holdout drawn per user (True) or over all ratings (False).
    """

    kind: str
    n_folds: int
    fraction: float | None = None
    per_user: bool = True

    def __str__(self) -> str:
        if self.kind == "kfold":
            return f"kfold:{self.n_folds}"
        if self.kind == "holdout":
            return f"holdout:{self.fraction:g}" + ("" if self.per_user else ":random")
        return self.kind

    def describe(self, users: bool = False) -> str:
        """One sentence for reports; ``users`` for the user folds of the onboarding protocol."""
        if users:
            if self.kind == "kfold":
                return f"users in {self.n_folds} groups, each held out once (seeded)"
            return f"{self.fraction:.0%} of users held out (seeded)"
        if self.kind == "official":
            return "ml-100k's official folds u1-u5 (80,000 train / 20,000 test ratings each)"
        if self.kind == "kfold":
            return f"{self.n_folds}-fold cross-validation over shuffled ratings (seeded)"
        how = "of each user's ratings" if self.per_user else "of all ratings, drawn at random"
        return f"one holdout: {self.fraction:.0%} {how} to test (seeded)"


def parse_split(text: str) -> Split:
    """``official``, ``kfold:K`` (2-20), ``holdout:F`` or ``holdout:F:random`` (0 < F < 1).

    Anything else raises ``InvalidInput`` naming the bad value (field ``split``).
    """
    if not isinstance(text, str):
        raise InvalidInput(f"split must be a string, got {text!r}", field="split")
    parts = text.strip().lower().split(":")
    kind = parts[0]
    if kind == "official" and len(parts) == 1:
        return Split("official", 5)
    if kind == "kfold" and len(parts) == 2:
        try:
            k = int(parts[1])
        except ValueError:
            k = -1
        if not 2 <= k <= MAX_FOLDS:
            raise InvalidInput(
                f"bad split {text!r}: kfold needs a whole number of folds from 2 to "
                f"{MAX_FOLDS}, e.g. kfold:5",
                field="split",
            )
        return Split("kfold", k)
    if kind == "holdout" and len(parts) in (2, 3):
        try:
            fraction = float(parts[1])
        except ValueError:
            fraction = float("nan")
        if not 0.0 < fraction < 1.0:
            raise InvalidInput(
                f"bad split {text!r}: holdout needs a test fraction between 0 and 1, "
                "e.g. holdout:0.2",
                field="split",
            )
        if len(parts) == 3 and parts[2] not in ("random", "user"):
            raise InvalidInput(
                f"bad split {text!r}: the holdout mode must be 'user' (per-user, the default) "
                "or 'random', e.g. holdout:0.2:random",
                field="split",
            )
        return Split("holdout", 1, fraction=fraction, per_user=parts[-1] != "random")
    raise InvalidInput(
        f"unknown split {text!r}; use official (ml-100k u1-u5), kfold:K (e.g. kfold:5) "
        "or holdout:FRACTION (e.g. holdout:0.2)",
        field="split",
    )


# -- rating splits --------------------------------------------------------------------
def kfold(frame: pd.DataFrame, n_folds: int, seed: int = 0) -> list[Fold]:
    """``n_folds`` (train, test) pairs; every rating lands in exactly one test fold.

    Ratings are shuffled with ``seed`` then cut into folds of sizes differing by at most one.
    """
    if not 2 <= n_folds <= len(frame):
        raise InvalidInput(f"cannot cut {len(frame)} ratings into {n_folds} folds", "split")
    order = np.random.default_rng(seed).permutation(len(frame))
    fold_of = np.empty(len(frame), dtype=np.int64)
    for f, chunk in enumerate(np.array_split(order, n_folds)):
        fold_of[chunk] = f
    return [(_rows(frame, fold_of != f), _rows(frame, fold_of == f)) for f in range(n_folds)]


def holdout(frame: pd.DataFrame, fraction: float, per_user: bool = True, seed: int = 0) -> Fold:
    """One (train, test) pair with ``fraction`` of the ratings in test.

    per_user: each user gives ``round(fraction * n_u)`` of their ratings to test, capped so
    at least one stays in train (users with one rating are train only). Otherwise the test
    ratings are drawn uniformly from all ratings.
    """
    rng = np.random.default_rng(seed)
    n = len(frame)
    if not per_user:
        n_test = int(round(fraction * n))
        test = np.zeros(n, dtype=bool)
        test[rng.choice(n, size=n_test, replace=False)] = True
        return _rows(frame, ~test), _rows(frame, test)
    users = frame["userId"].to_numpy()
    keys = rng.random(n)
    order = np.lexsort((keys, users))  # by user, then random within user
    sorted_users = users[order]
    starts = np.flatnonzero(np.r_[True, sorted_users[1:] != sorted_users[:-1]])
    counts = np.diff(np.r_[starts, n])
    position = np.arange(n) - np.repeat(starts, counts)  # rank within the user
    n_test = np.minimum(np.rint(fraction * counts).astype(np.int64), counts - 1)
    test = np.zeros(n, dtype=bool)
    test[order] = position < np.repeat(n_test, counts)
    return _rows(frame, ~test), _rows(frame, test)


def rating_folds(
    frame: pd.DataFrame,
    split: Split,
    seed: int = 0,
    official: list[Fold] | None = None,
) -> list[Fold]:
    """The folds of ``split`` over the ratings ``frame`` (``official`` given for that kind)."""
    if split.kind == "official":
        if official is None:
            raise InvalidInput("official folds exist only for ml-100k", field="split")
        return [(_columns(a), _columns(b)) for a, b in official]
    if split.kind == "kfold":
        return kfold(frame, split.n_folds, seed=seed)
    return [holdout(frame, split.fraction or 0.2, per_user=split.per_user, seed=seed)]


# -- user splits (onboarding) -----------------------------------------------------------
def user_folds(frame: pd.DataFrame, split: Split, seed: int = 0) -> list[Fold]:
    """(train, held-out) pairs where the held-out frame holds *all* ratings of some users.

    ``kfold:K`` partitions the users into ``K`` groups (every user held out once);
    ``holdout:F`` holds out ``round(F * n_users)`` users (at least one). ``official``
    splits ratings, not users, so it raises ``InvalidInput``.
    """
    if split.kind == "official":
        raise InvalidInput(
            "the onboarding protocol holds out whole users; the official ml-100k folds split "
            "ratings. Use kfold:5 or holdout:0.2",
            field="split",
        )
    users = np.unique(frame["userId"].to_numpy())
    shuffled = np.random.default_rng(seed).permutation(users)
    if split.kind == "kfold":
        groups = np.array_split(shuffled, split.n_folds)
    else:
        n_out = min(max(1, int(round((split.fraction or 0.2) * users.size))), users.size - 1)
        groups = [shuffled[:n_out]]
    folds = []
    for group in groups:
        out = frame["userId"].isin(group).to_numpy()
        folds.append((_rows(frame, ~out), _rows(frame, out)))
    return folds


def _rows(frame: pd.DataFrame, mask: BoolArray) -> pd.DataFrame:
    return _columns(frame.loc[mask])


def _columns(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[["userId", "movieId", "rating"]].reset_index(drop=True)
