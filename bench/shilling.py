"""How many fake visitors does it take to push one obscure movie into other visitors' picks?

A shilling attack on ``train --with-visitors``: N fake visitors each rate one obscure
movie 5 stars beside popular movies. After the retrain, how many *other* visitors (honest,
held out) find it in their top 10? The figure asked for is the smallest N that puts it in
at least 10 % of their top 10s, as a share of the data set's users, with the default
served model (``ease``) and the served ranking (:class:`movierec.recommend.RecommendService`:
fold-in, the 20-rating floor on the catalogue's counts, the genre re-ranking).

Per seed, ml-latest-small's users are split (seeded) into the data set (80 %) and held-out
visitors (20 %), who each bring up to ``--profile`` of their own ratings (seeded sample)
and are folded in. The catalogue's rating counts are the data set's, as ``serve``'s are
(visitors' ratings do not count towards the 20-rating floor). The target is a movie the
site may recommend (20+ ratings in the data set) with the fewest ratings (seeded pick
among those with 20-25). Two attacks:

- ``same``: every fake gives the target 5 stars and the same ``--fillers`` of the 50
  most-rated movies 4-5 stars (a script that copies one profile);
- ``varied``: each fake picks its own ``--fillers`` of the 50 most-rated (a script that
  varies the profile, which defeats a check for identical profiles).

Each N is merged by :func:`movierec.visitor_ratings.merge_visitors` (the code ``train
--with-visitors`` runs), ``bound=False`` being the merge without the mitigation. N is
found by doubling, then bisection, up to ``--max-share`` of the data set's users.

The honest-group check (``--groups`` pairs per seed): ``--group`` visitors each rate an
obscure movie (5-19 ratings) and a mid-popular one (40-80) 5 stars beside their own
(varied) ratings of 8 other movies; the obscure movie must then be in the mid-popular
one's similar list (top 10, :class:`movierec.similar.SimilarMovies`, as the movie page
shows it).

    python bench/shilling.py [--seeds 0-1] [--attacks same,varied] [--fillers 9]
                             [--group 40] [--groups 2]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import default_source, header, print_table, seed_range, temp_home  # noqa: E402

from movierec import models  # noqa: E402
from movierec.data import Catalog, Dataset, Ratings, fetch_dataset, load_dataset  # noqa: E402
from movierec.recommend import RecommendService  # noqa: E402
from movierec.similar import SimilarMovies  # noqa: E402
from movierec.visitor_ratings import merge_visitors  # noqa: E402

TOP = 10
REACH = 0.10  # the share of held-out visitors whose top 10 the attack must reach
POPULAR = 50  # fakes' fillers come from this many most-rated movies


@dataclass
class Split:
    base: Ratings  # the data set the site trains on
    catalog: Catalog  # with the base's rating counts
    profiles: list[dict[int, float]]  # held-out visitors' ratings


def split(dataset: Dataset, seed: int, profile: int) -> Split:
    """80 % of users are the data set, the rest held-out visitors (see the module doc)."""
    rng = np.random.default_rng(seed)
    frame = dataset.frame
    users = frame["userId"].unique()
    held = set(rng.choice(users, size=len(users) // 5, replace=False).tolist())
    is_held = frame["userId"].isin(held)
    train, test = frame[~is_held], frame[is_held]
    base = Ratings.from_frame(train)
    cat = dataset.catalog.frame.copy()
    stats = train.groupby("movieId")["rating"].agg(["size", "mean"])
    cat["n_ratings"] = stats["size"].reindex(cat.index, fill_value=0).astype(np.int64)
    cat["mean_rating"] = stats["mean"].reindex(cat.index)
    catalog = Catalog(cat, tags=dataset.catalog.tags)
    profiles = []
    for _, rows in test.groupby("userId"):
        take = rows.sample(n=min(profile, len(rows)), random_state=int(rng.integers(1 << 31)))
        profiles.append(dict(zip(take["movieId"].tolist(), take["rating"].tolist(), strict=True)))
    return Split(base, catalog, profiles)


def counts(split_: Split) -> pd.Series:
    return split_.catalog.frame["n_ratings"]


def pick(n: pd.Series, low: int, high: int, rng: np.random.Generator, avoid=()) -> int:
    pool = sorted(set(n.index[(n >= low) & (n <= high)].tolist()) - set(avoid))
    return int(rng.choice(pool))


def fakes(
    n_fakes: int, target: int, popular: np.ndarray, fillers: int, attack: str, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(visitor, movie_ids, stars)`` of ``n_fakes`` fake visitors (see the module doc)."""
    rng = np.random.default_rng(seed)
    same = rng.choice(popular, size=fillers, replace=False)
    visitor, movies, stars = [], [], []
    for v in range(n_fakes):
        chosen = same if attack == "same" else rng.choice(popular, size=fillers, replace=False)
        visitor += [v] * (fillers + 1)
        movies += [target, *chosen.tolist()]
        stars += [5.0, *rng.choice([4.0, 4.5, 5.0], size=fillers).tolist()]
    return np.array(visitor), np.array(movies), np.array(stars, dtype=np.float32)


def fit(ratings: Ratings, catalog: Catalog, seed: int) -> models.Recommender:
    return models.create("ease", seed=seed).fit(ratings, catalog=catalog)


def reach(model: models.Recommender, split_: Split, target: int) -> float:
    """Share of held-out visitors with ``target`` in their top 10."""
    service = RecommendService(model, split_.catalog)
    hits = 0
    for ratings in split_.profiles:
        ratings = {m: s for m, s in ratings.items() if m != target}
        if not ratings:
            continue
        picks = service.recommend(ratings, n=TOP).items
        hits += any(p.movie.movie_id == target for p in picks)
    return hits / len(split_.profiles)


def needed(
    split_: Split, target: int, attack: str, bound: bool, seed: int, args: argparse.Namespace
) -> tuple[int | None, list[tuple[int, float]]]:
    """Smallest N of fakes reaching ``REACH`` (None: not up to the cap), and every
    (N, reach) tried."""
    popular = counts(split_).sort_values(ascending=False).index[:POPULAR].to_numpy()
    cap = math.ceil(args.max_share * split_.base.n_users)
    tried: dict[int, float] = {}

    def measure(n: int) -> float:
        if n not in tried:
            visitor, movies, stars = fakes(n, target, popular, args.fillers, attack, seed)
            merged = merge_visitors(split_.base, visitor, movies, stars, bound=bound)
            tried[n] = reach(fit(merged.ratings, split_.catalog, seed), split_, target)
            print(f"    {attack:6s} bound={bound!s:5s} N={n:4d}: reach {tried[n]:.3f}", flush=True)
        return tried[n]

    low, high = 0, 4
    while measure(high) < REACH:
        low, high = high, high * 2
        if low >= cap:
            return None, sorted(tried.items())
        high = min(high, cap)
    while high - low > max(1, low // 10):  # to within 10 %
        middle = (low + high) // 2
        if measure(middle) >= REACH:
            high = middle
        else:
            low = middle
    return high, sorted(tried.items())


def honest_group(split_: Split, size: int, bound: bool, seed: int) -> tuple[int, int, int | None]:
    """(obscure, mid-popular, the obscure movie's place in mid-popular's similar list or
    None) after ``size`` honest visitors rated both 5 stars (see the module doc); the pair
    and the visitors' other ratings are drawn with ``seed``."""
    rng = np.random.default_rng(seed + 1000)
    n = counts(split_)
    obscure = pick(n, 5, 19, rng)
    middle = pick(n, 40, 80, rng)
    others = n.index[n >= 20].to_numpy()
    visitor, movies, stars = [], [], []
    for v in range(size):
        chosen = rng.choice(others[(others != obscure) & (others != middle)], 8, replace=False)
        visitor += [v] * 10
        movies += [obscure, middle, *chosen.tolist()]
        stars += [5.0, 5.0, *rng.choice([2.0, 3.0, 3.5, 4.0, 4.5, 5.0], size=8).tolist()]
    merged = merge_visitors(
        split_.base, np.array(visitor), np.array(movies), np.array(stars, np.float32), bound=bound
    )
    model = fit(merged.ratings, split_.catalog, seed)
    similar = SimilarMovies(model, split_.catalog).similar(middle, TOP)
    return obscure, middle, (similar.index(obscure) + 1 if obscure in similar else None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=seed_range, default=seed_range("0-1"))
    parser.add_argument("--attacks", default="same,varied")
    parser.add_argument("--fillers", type=int, default=9, help="popular movies each fake rates")
    parser.add_argument("--profile", type=int, default=15, help="ratings per held-out visitor")
    parser.add_argument("--group", type=int, default=40, help="honest group size")
    parser.add_argument("--groups", type=int, default=2, help="honest groups tried per seed")
    parser.add_argument(
        "--target-ratings", default="5-19", help="the target's data-set ratings, LOW-HIGH"
    )
    parser.add_argument(
        "--max-share", type=float, default=0.5, help="give up beyond this share of users"
    )
    parser.add_argument("--source", default=default_source())
    args = parser.parse_args(argv)
    header(argv)
    started = time.monotonic()
    with temp_home() as home:
        fetch_dataset("ml-latest-small", source=args.source, home=home, progress=False)
        dataset = load_dataset("ml-latest-small", home=home)
    rows: list[list[object]] = []
    groups: list[list[object]] = []
    for seed in args.seeds:
        part = split(dataset, seed, args.profile)
        low, high = (int(x) for x in args.target_ratings.split("-"))
        target = pick(counts(part), low, high, np.random.default_rng(seed))
        title = part.catalog.get(target).title
        base_reach = reach(fit(part.base, part.catalog, seed), part, target)
        print(
            f"seed {seed}: {part.base.n_users} data-set users, {len(part.profiles)} held-out "
            f"visitors; target {target} {title!r} ({counts(part)[target]} ratings), "
            f"reach with no fakes {base_reach:.3f}",
            flush=True,
        )
        for attack in args.attacks.split(","):
            for bound in (False, True):
                n, tried = needed(part, target, attack, bound, seed, args)
                users = part.base.n_users
                limit = math.ceil(args.max_share * users)
                best_n, best = max(tried, key=lambda t: (t[1], -t[0]))
                rows.append([
                    seed, attack, "bounded" if bound else "none",
                    f"> {limit}" if n is None else n,
                    f"> {limit / users:.1%}" if n is None else f"{n / users:.1%}",
                    f"{best:.1%} at N={best_n}",
                ])  # fmt: skip
        for group in range(args.groups):
            for bound in (False, True):
                obscure, middle, place = honest_group(part, args.group, bound, seed * 100 + group)
                found = "no" if place is None else f"yes, #{place}"
                print(f"  honest group, bound={bound}: {obscure} in {middle}'s list: {found}")
                groups.append([
                    seed, f"{part.catalog.get(obscure).title} ({counts(part)[obscure]})",
                    f"{part.catalog.get(middle).title} ({counts(part)[middle]})",
                    "bounded" if bound else "none", found,
                ])  # fmt: skip
    headers = ["seed", "attack", "mitigation", "fakes for 10 % reach", "share of users"]
    print_table([*headers, "highest reach seen"], rows)
    headers = ["seed", "obscure (ratings)", "mid-popular (ratings)", "mitigation"]
    print(f"\n{args.group} honest visitors rate both 5 stars; obscure in the similar list?\n")
    print_table([*headers, "in top 10"], groups)
    print(f"\n{time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
