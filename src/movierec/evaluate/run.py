"""``run_evaluation``: models (and peers) x folds -> :class:`EvaluationResult` (+ report).

Example::

    result = run_evaluation("ml-100k", "official", ["svd", "popular"], peers=True,
                            out=Path("bench/ml-100k"))
    print(format_table(result))
"""

from __future__ import annotations

import contextlib
import json
import math
import platform
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from movierec.data import load_dataset, official_folds
from movierec.data.catalog import Catalog
from movierec.errors import InvalidInput
from movierec.evaluate import calibration, metrics
from movierec.evaluate.adapters import Method, OurModel
from movierec.evaluate.peers import ORIGINAL, PEERS, create_peer, import_surprise
from movierec.evaluate.protocols import (
    N_POPULAR,
    N_SHOWN,
    RELEVANT_STARS,
    FoldOutcome,
    onboarding_fold,
    rating_fold,
    strategy_fold,
)
from movierec.evaluate.report import check_out_dir
from movierec.evaluate.splits import Split, parse_split, rating_folds, user_folds

PROTOCOLS = ("rating", "onboarding")


@dataclass
class EvaluationResult:
    """Everything one evaluation measured.

    folds: per fold ``{method: {metric: value}}`` (metrics: ``rmse``, ``mae``,
    ``precision@k``, ``recall@k``, ``ndcg@k``, ``hit_rate@k``, ``map``, ``coverage@k``,
    ``distinct@k``, ``popularity@k``, ``novelty@k``, ``overlap@k``, ``diversity@k``,
    ``miscalibration@k``, ``taste_loved@10``, ``taste_hated@10`` (see
    :mod:`movierec.evaluate.protocols`), ``fit_s``, ``predict_s``, ``rank_s``; onboarding
    adds ``fold_in_ms``).
    fold_info: per fold counts (ratings, users ranked and skipped, ...).
    methods: per method ``{"name", "kind" ("ours"/"peer"), "params", "notes"}``.
    """

    dataset: str
    split: str
    protocol: str
    k_values: tuple[int, ...]
    seed: int
    methods: list[dict[str, Any]]
    folds: list[dict[str, dict[str, float]]]
    fold_info: list[dict[str, Any]]
    settings: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    created: str = ""
    out: Path | None = None
    files: list[str] = field(default_factory=list)

    @property
    def method_names(self) -> list[str]:
        return [m["name"] for m in self.methods]

    def values(self, method: str, metric: str) -> list[float]:
        """The metric's value in each fold (NaN where the fold lacks it)."""
        return [fold.get(method, {}).get(metric, math.nan) for fold in self.folds]

    def mean(self, method: str, metric: str) -> float:
        return metrics.mean_std(self.values(method, metric))[0]

    def std(self, method: str, metric: str) -> float:
        return metrics.mean_std(self.values(method, metric))[1]

    def metric_names(self) -> list[str]:
        """Every metric measured for at least one method, in a stable order."""
        seen: dict[str, None] = {}
        for fold in self.folds:
            for values in fold.values():
                seen.update(dict.fromkeys(values))
        return list(seen)

    def summary(self) -> dict[str, dict[str, dict[str, float]]]:
        """``{method: {metric: {"mean", "std"}}}`` over folds."""
        out: dict[str, dict[str, dict[str, float]]] = {}
        for name in self.method_names:
            row = {}
            for metric in self.metric_names():
                vals = self.values(name, metric)
                if all(math.isnan(v) for v in vals):
                    continue
                mean, std = metrics.mean_std(vals)
                row[metric] = {"mean": mean, "std": std}
            out[name] = row
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: configuration, per-fold numbers, summary, notes."""
        out: dict[str, Any] = _jsonable(
            {
                "dataset": self.dataset,
                "split": self.split,
                "protocol": self.protocol,
                "k_values": list(self.k_values),
                "seed": self.seed,
                "settings": self.settings,
                "created": self.created,
                "seconds": self.seconds,
                "methods": self.methods,
                "folds": [
                    {"fold": i + 1, "info": info, "metrics": fold}
                    for i, (fold, info) in enumerate(zip(self.folds, self.fold_info, strict=True))
                ],
                "summary": self.summary(),
                "notes": self.notes,
            }
        )
        return out


def run_evaluation(
    dataset: str,
    split: str | None,
    models: Sequence[str],
    peers: bool = False,
    protocol: str = "rating",
    out: Path | None = None,
    k_values: Sequence[int] = (5, 10, 20),
    progress: bool = True,
    home: str | Path | None = None,
    seed: int = 0,
    *,
    model_params: Mapping[str, Mapping[str, Any]] | None = None,
    peer_names: Sequence[str] | None = None,
    min_ratings: int = 0,
    n_popular: int = N_POPULAR,
    n_shown: int = N_SHOWN,
    threshold: float = RELEVANT_STARS,
    strategies: Sequence[str] | None = None,
    rounds: int = 3,
    per_round: int = 5,
) -> EvaluationResult:
    """Evaluate ``models`` (and with ``peers`` the reference methods) on a data set.

    dataset: ``"ml-100k"`` or ``"ml-latest-small"`` (fetched on first use into ``home``).
    split: see :func:`parse_split`; ``official`` is ml-100k only, and the onboarding
        protocol needs ``kfold:K`` or ``holdout:F`` (it holds out users). None: the
        protocol's default (:func:`default_split`).
    protocol: ``"rating"`` (RMSE/MAE + top-N for trained users) or ``"onboarding"``
        (the web form simulated for held-out users).
    out: a directory to write ``report.md``, ``results.json`` and PNG plots into.
    model_params: per-name hyper-parameters, e.g. ``{"svd": {"n_epochs": 10}}`` (peer
        names too, e.g. ``{"surprise-svd": {"n_epochs": 5}}``).
    peer_names: which peers ``peers`` adds (default all: Surprise SVD, SVD++, NMF,
        KNNBaseline, and the original app's method).
    min_ratings: never recommend movies with fewer training ratings (the web app uses 20);
        0, the default, ranks every training movie.
    strategies: onboarding strategies (``movierec.onboarding.STRATEGIES``) to compare; the
        onboarding protocol then asks ``per_round`` movies per round for ``rounds`` rounds
        and reports curves (metrics after each round) per strategy.

    Bad arguments raise ``InvalidInput`` naming the field, before any fitting.
    """
    split = default_split(dataset, protocol) if split is None else split
    parsed = _check_args(dataset, split, protocol)
    _check_k(k_values)
    _check_rounds(protocol, strategies, rounds, per_round)
    if parsed.kind == "official" and dataset != "ml-100k":
        raise InvalidInput(
            f"official folds exist only for ml-100k, not {dataset!r}; use kfold:5 or holdout:0.2",
            field="split",
        )
    # unknown model names, peers without Surprise: fail before loading anything
    _methods(models, peers, protocol, seed, model_params, peer_names, scale=(0.5, 5.0))
    if out is not None:
        check_out_dir(Path(out))
    data = load_dataset(dataset, home=home, progress=progress)
    official = official_folds(dataset, home=home) if parsed.kind == "official" else None
    return evaluate_frame(
        data.frame,
        split,
        models,
        catalog=data.catalog,
        peers=peers,
        protocol=protocol,
        out=out,
        k_values=k_values,
        progress=progress,
        seed=seed,
        dataset_name=dataset,
        official=official,
        model_params=model_params,
        peer_names=peer_names,
        min_ratings=min_ratings,
        n_popular=n_popular,
        n_shown=n_shown,
        threshold=threshold,
        strategies=strategies,
        rounds=rounds,
        per_round=per_round,
    )


def evaluate_frame(
    frame: pd.DataFrame,
    split: str | None,
    models: Sequence[str],
    peers: bool = False,
    protocol: str = "rating",
    out: Path | None = None,
    k_values: Sequence[int] = (5, 10, 20),
    progress: bool = True,
    seed: int = 0,
    *,
    dataset_name: str = "custom",
    catalog: Catalog | None = None,
    official: list[tuple[pd.DataFrame, pd.DataFrame]] | None = None,
    model_params: Mapping[str, Mapping[str, Any]] | None = None,
    peer_names: Sequence[str] | None = None,
    min_ratings: int = 0,
    n_popular: int = N_POPULAR,
    n_shown: int = N_SHOWN,
    threshold: float = RELEVANT_STARS,
    strategies: Sequence[str] | None = None,
    rounds: int = 3,
    per_round: int = 5,
) -> EvaluationResult:
    """:func:`run_evaluation` on a ratings frame (``userId, movieId, rating`` columns).

    ``official`` supplies the folds for the ``official`` split; ``catalog`` the movie text
    for models that use it (``content``, ``blend``).
    """
    split = default_split(dataset_name, protocol) if split is None else split
    parsed = _check_args(dataset_name, split, protocol)
    k_values = _check_k(k_values)
    strategies = _check_rounds(protocol, strategies, rounds, per_round)
    if out is not None:
        check_out_dir(Path(out))
    missing = [c for c in ("userId", "movieId", "rating") if c not in frame.columns]
    if missing:
        raise InvalidInput(f"ratings frame lacks column(s) {', '.join(missing)}", "frame")
    scale = (float(frame["rating"].min()), float(frame["rating"].max()))
    methods = _methods(models, peers, protocol, seed, model_params, peer_names, scale, catalog)
    if protocol == "rating":
        folds = rating_folds(frame, parsed, seed=seed, official=official)
    else:
        folds = user_folds(frame, parsed, seed=seed)

    started = time.perf_counter()
    outcomes: list[FoldOutcome] = []
    bar = tqdm(
        total=len(folds) * len(methods) * max(len(strategies or ()), 1),
        desc="evaluate",
        unit="fit",
        disable=not progress,
        leave=True,
    )
    try:
        for index, (train, test) in enumerate(folds):

            def report(name: str, phase: str, fold: int = index) -> None:
                if phase == "done":
                    bar.update(1)
                else:
                    bar.set_description(f"fold {fold + 1}/{len(folds)} {name}: {phase}")

            if protocol == "rating":
                outcome = rating_fold(
                    methods,
                    train,
                    test,
                    k_values,
                    scale,
                    threshold=threshold,
                    min_ratings=min_ratings,
                    report=report,
                    catalog=catalog,
                )
            elif strategies:
                outcome = strategy_fold(
                    methods,
                    train,
                    test,
                    strategies,
                    rounds,
                    per_round,
                    catalog=catalog,
                    seed=seed * 1000 + index,
                    threshold=threshold,
                    min_ratings=min_ratings,
                    report=report,
                )
            else:
                outcome = onboarding_fold(
                    methods,
                    train,
                    test,
                    k_values,
                    scale,
                    seed=seed * 1000 + index,
                    threshold=threshold,
                    n_popular=n_popular,
                    n_shown=n_shown,
                    min_ratings=min_ratings,
                    report=report,
                    catalog=catalog,
                )
            outcomes.append(outcome)
    finally:
        bar.close()

    result = EvaluationResult(
        dataset=dataset_name,
        split=str(parsed),
        protocol=protocol,
        k_values=tuple(k_values),
        seed=seed,
        methods=_described(methods, strategies),
        folds=[o.metrics for o in outcomes],
        fold_info=[o.info for o in outcomes],
        settings={
            "split": parsed.describe(users=protocol == "onboarding"),
            "relevant_stars": threshold,
            "scale": list(scale),
            "n_popular": n_popular if protocol == "onboarding" else None,
            "n_shown": n_shown if protocol == "onboarding" else None,
            "min_ratings": min_ratings,
            "strategies": list(strategies) if strategies else None,
            "rounds": rounds if strategies else None,
            "per_round": per_round if strategies else None,
            "python": platform.python_version(),
            "versions": _versions(),
        },
        notes=_notes(protocol, methods, threshold, n_popular, n_shown, min_ratings, peers, catalog)
        if not strategies
        else _strategy_notes(strategies, rounds, per_round, threshold, min_ratings),
        seconds=time.perf_counter() - started,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    if out is not None:
        from movierec.evaluate.report import write_report

        write_report(result, Path(out))
    return result


#: above this many (published) ratings the onboarding protocol defaults to one hold-out
BIG_RATINGS = 2_000_000


def default_split(dataset: str, protocol: str = "rating") -> str:
    """``official`` for the rating protocol on ml-100k; ``holdout:0.2`` for the onboarding
    protocol on a set of more than ``BIG_RATINGS`` ratings (five fits of every model on
    25 M ratings would take an hour); else ``kfold:5``."""
    if dataset == "ml-100k" and protocol == "rating":
        return "official"
    if protocol == "onboarding" and _published_ratings(dataset) > BIG_RATINGS:
        return "holdout:0.2"
    return "kfold:5"


def _published_ratings(dataset: str) -> int:
    """The data set's rating count as its description gives it (0 if unknown)."""
    from movierec.data.movielens import get_spec

    try:
        return int(get_spec(dataset).ratings or 0)
    except InvalidInput:
        return 0


# -- helpers --------------------------------------------------------------------------------


def _check_args(dataset: str, split: str, protocol: str) -> Split:
    if protocol not in PROTOCOLS:
        raise InvalidInput(
            f"unknown protocol {protocol!r}; choose {' or '.join(PROTOCOLS)}", field="protocol"
        )
    parsed = parse_split(split)
    if protocol == "onboarding" and parsed.kind == "official":
        raise InvalidInput(
            "the onboarding protocol holds out whole users, so it needs kfold:K or "
            "holdout:F (e.g. holdout:0.2), not the official rating folds",
            field="split",
        )
    return parsed


def _check_rounds(
    protocol: str, strategies: Sequence[str] | str | None, rounds: int, per_round: int
) -> list[str] | None:
    """The strategy names (None: the plain onboarding protocol); ``InvalidInput`` naming
    ``strategy``, ``rounds`` or ``per_round`` when bad."""
    from movierec.onboarding import STRATEGIES, validate_strategy

    if strategies is None:
        return None
    if isinstance(strategies, str):
        strategies = [s.strip() for s in strategies.split(",") if s.strip()]
    names = [validate_strategy(s) for s in dict.fromkeys(strategies)]
    if not names:
        raise InvalidInput(f"name a strategy: {', '.join(STRATEGIES)}", field="strategy")
    if protocol != "onboarding":
        raise InvalidInput("strategies need the onboarding protocol", field="strategy")
    for value, name, top in ((rounds, "rounds", 20), (per_round, "per_round", 50)):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= top:
            raise InvalidInput(f"{name} must be a whole number from 1 to {top}", field=name)
    return names


def _described(methods: Sequence[Method], strategies: Sequence[str] | None) -> list[dict[str, Any]]:
    """One entry per method, or per method x strategy (named as ``strategy_fold`` does)."""
    if not strategies:
        return [m.describe() for m in methods]
    out = []
    for method in methods:
        for strategy in strategies:
            entry = method.describe()
            entry["name"] = strategy if len(methods) == 1 else f"{method.name}:{strategy}"
            entry["params"] = {**entry["params"], "model": method.name, "strategy": strategy}
            out.append(entry)
    return out


def _strategy_notes(
    strategies: Sequence[str], rounds: int, per_round: int, threshold: float, min_ratings: int
) -> list[str]:
    return [
        f"Onboarding in rounds: each held-out user is asked {per_round} movies per round for "
        f"{rounds} rounds by each strategy ({', '.join(strategies)}), chosen from the fold's "
        "training data only (popularity, rating entropy, who-rated-what and the fitted "
        "model's item factors). The user answers the asked movies they rated in the data; "
        "the others count as not seen.",
        "After each round the answers so far are folded in (model.fold_in, then model.rank "
        "as the recommend service does) and every training movie except the answered ones "
        f"is ranked against the user's other ratings of at least {threshold:g} stars; a "
        "user with no answer yet gets the training popularity ranking (the app's fallback). "
        "Users with no relevant movie left are not scored at that point.",
        "metric/N: the metric after N movies asked. rated/N: answers per user; "
        "rated_share/N: rated / N. choose_ms: mean time a strategy takes to choose one "
        "round's movies.",
        "Minimum support filter: "
        + (
            "none"
            if min_ratings <= 0
            else f"movies with fewer than {min_ratings} training ratings are never "
            "recommended nor relevant"
        )
        + ".",
        "Mean ± standard deviation over folds (population std, ddof=0).",
    ]


def _check_k(k_values: Sequence[int]) -> tuple[int, ...]:
    try:
        ks = sorted({int(k) for k in k_values})
        ok = bool(ks) and all(k >= 1 and float(k) == k for k in k_values)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise InvalidInput(f"k_values must be whole numbers >= 1, got {k_values!r}", "k_values")
    return tuple(ks)


def _methods(
    models: Sequence[str],
    peers: bool,
    protocol: str,
    seed: int,
    model_params: Mapping[str, Mapping[str, Any]] | None,
    peer_names: Sequence[str] | None,
    scale: tuple[float, float],
    catalog: Catalog | None = None,
) -> list[Method]:
    """Our models, then the peers (Surprise imported only if one is asked for)."""
    if isinstance(models, str):
        models = [m.strip() for m in models.split(",") if m.strip()]
    params = dict(model_params or {})
    names = list(dict.fromkeys(models))
    methods: list[Method] = [OurModel(n, seed, params.get(n), catalog) for n in names]
    if peers:
        chosen = list(PEERS if peer_names is None else dict.fromkeys(peer_names))
        if protocol == "onboarding":  # Surprise cannot fold in a new user
            chosen = [p for p in chosen if p == ORIGINAL]
        if any(p.startswith("surprise-") for p in chosen):
            import_surprise()
        methods += [create_peer(p, scale, seed, params.get(p)) for p in chosen]
    if not methods:
        raise InvalidInput("nothing to evaluate: name at least one model", field="models")
    return methods


def _notes(
    protocol: str,
    methods: Sequence[Method],
    threshold: float,
    n_popular: int,
    n_shown: int,
    min_ratings: int,
    peers: bool,
    catalog: Catalog | None = None,
) -> list[str]:
    liked = (
        "their training ratings" if protocol == "rating" else "the ratings they revealed"
    ) + f" of at least {threshold:g} stars"
    notes = [
        f"Relevant = a test rating of at least {threshold:g} stars on a movie in the fold's "
        "training data. Users with no relevant test movie are not ranked (counts per fold "
        "below).",
        "Ranking: scores sorted descending, ties broken by the lower item index (the "
        "training movies in movieId order).",
        "MAP is over the full ranking (average precision at every relevant movie's rank), "
        "not truncated at k.",
        "Novelty@k: mean self-information -log2(share of training users who rated the "
        "movie) of the recommended movies, in bits. Coverage@k: distinct recommended movies "
        "/ candidate movies.",
        "Beyond accuracy, of the top-k lists: distinct@k = distinct movies in all lists "
        "(per fold); popularity@k = mean popularity percentile (0-100) of the listed movies, "
        "a movie's percentile being the share of training movies with at most its number of "
        "training ratings; overlap@k = mean Jaccard overlap of two users' top-k sets, over "
        "every pair of ranked users (a seeded sample of 20,000 pairs when there are more; "
        "personalisation = 1 - overlap)."
        + (
            " diversity@k = mean over lists of the mean pairwise genre distance (1 - Jaccard "
            "of the two movies' genre sets); miscalibration@k = Steck 2018's "
            "KL(p || 0.99 q + 0.01 p) in nats, p the genre mix of what the user liked "
            f"({liked}), q that of the list, each movie's genres weighted 1/|genres|."
            if catalog is not None
            else " No catalogue was given, so no genre measure and no taste share."
        ),
        "Predictions for RMSE/MAE are clipped to the data set's star scale for every "
        "method (Surprise clips the same way).",
        "Mean ± standard deviation over folds (population std, ddof=0, as Surprise's "
        "cross_validate).",
    ]
    notes.insert(
        1,
        "Minimum support filter: "
        + (
            "none: every training movie is a candidate"
            if min_ratings <= 0
            else f"movies with fewer than {min_ratings} training ratings are never recommended "
            "nor counted as relevant"
        )
        + " (the web app hides movies with fewer than 20 ratings; min_ratings=20 measures that).",
    )
    if catalog is not None:
        notes.insert(
            -2,
            "Taste share: 90 simulated visitors, one per ordered pair of the 10 genres with "
            "most training ratings, rate 8 movies in the loved genre (and not the hated one) "
            "5 stars and 6 in the hated genre (and not the loved one) 1 star, drawn (seeded) "
            "from each fold's 300 most-rated training movies; each method folds them in as "
            "visitors and ranks every other training movie. taste_loved@10 / taste_hated@10 "
            "= mean share of their top 10 in the loved / hated genre. Methods that cannot "
            "fold in a new user have none.",
        )
    if protocol == "rating":
        notes.insert(
            1,
            "Top-N candidates: every training movie the user did not rate in training; each "
            "method ranks with its trained user state (ours: model.rank(model.user_state(u)), "
            "what the recommend service ranks by; it defaults to the predicted stars).",
        )
    else:
        notes.insert(
            0,
            f"Onboarding: the form shows {n_shown} movies drawn at random (seeded) from the "
            f"{n_popular} most-rated training movies; a held-out user reveals their ratings "
            "of the shown movies they rated. Each method folds those in "
            "(ours: model.fold_in, then model.rank as the recommend service does) and ranks "
            "every training movie except the revealed ones against the user's other ratings. "
            "RMSE/MAE are the folded-in stars (model.score) of those other ratings "
            "(cold-start error).",
        )
        if peers:
            notes.append(
                "Surprise's algorithms cannot score a user they were not trained on without "
                "refitting, so they are not in the onboarding comparison."
            )
    if any(m.kind == "ours" for m in methods):
        notes.append(calibration.NOTE)
    if any(m.name == ORIGINAL for m in methods):
        notes.append(
            "original: the app this project replaces: scikit-learn NMF on the dense user x "
            "movie matrix with blanks filled with 3 stars; trained users are scored from the "
            "fitted W, a new visitor by transform() of their 3-filled row against the fitted "
            "components (the original app's fold-in)."
        )
    if any(m.name == "surprise-knnbaseline" for m in methods):
        notes.append(
            "surprise-knnbaseline: item-based, pearson_baseline similarity, k=40 (Surprise's "
            "recommendation for KNNBaseline). Its top-N scores re-implement Surprise's "
            "estimate for all movies at once (checked equal to Surprise's predict in the "
            "tests); it is skipped when the catalogue is too large (see its notes)."
        )
    if any(m.name.startswith("surprise-") and m.name != "surprise-knnbaseline" for m in methods):
        notes.append(
            "Surprise SVD/SVD++/NMF: fitted by Surprise; its estimate() is evaluated from the "
            "fitted arrays in matrix products for the test pairs (clipped to the scale as its "
            "predict() does) and for top-N (checked equal to Surprise's predict in the tests)."
        )
    return notes


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {}
    for name in ("movierec", "numpy", "scipy", "scikit-learn", "scikit-surprise", "numba"):
        with contextlib.suppress(md.PackageNotFoundError):
            out[name] = md.version(name)
    return out


def _jsonable(value: Any) -> Any:
    """Plain JSON types (numpy scalars -> float/int, NaN -> None, Path -> str)."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return json.loads(json.dumps(value, default=str))
