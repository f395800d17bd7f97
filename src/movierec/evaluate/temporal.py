"""The ``temporal`` protocol: does the learning loop (issue 18) help later visitors?

Anchors:

- LensKit's temporal splits (``lenskit.splitting.split_global_time``): train before, test after.
- Ji et al. 2023 (ACM TOIS) on data leakage: random splits let a model see the future.

The timeline is cut at ``cutoff`` (an ISO date, or a fraction of the time span from the
first to the last rating; default 0.8). Users whose first rating is at or after the cutoff
are *visitors*. Each visitor's first ``first_k`` ratings (chronological; ties by movieId)
are folded in, and the rest of their ratings (>= 4 stars relevant) are scored, as in the
onboarding protocol (:func:`~movierec.evaluate.protocols.visitors_fold`). The period after
the cutoff is split into ``steps`` equal stretches of time; visitors are grouped by the
step in which they arrive. Two arms, per step ``t`` starting at ``start_t``:

- (a) ``<model>``: trained once on the ratings before the cutoff;
- (b) ``<model>+loop``: retrained, as ``train --with-visitors`` on a schedule would, on the
  ratings before the cutoff plus every rating before ``start_t`` by visitors who arrived
  earlier. A visitor of step ``t`` arrives at or after ``start_t``, so none of their own
  ratings is in the model that scores them.

Ratings after the cutoff by users who arrived before it are in neither arm (the site's
data set is fixed; only visitors add ratings). Peers that can fold in a visitor (the
original app's method) join both arms with ``peers``.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from movierec.data.arrays import Int64Array
from movierec.data.catalog import Catalog
from movierec.data.ratings import Ratings
from movierec.errors import InvalidInput
from movierec.evaluate.protocols import RELEVANT_STARS, Visitor, visitors_fold

if TYPE_CHECKING:
    from movierec.evaluate.adapters import Method

DEFAULT_CUTOFF = "0.8"
DEFAULT_FIRST_K = 5
DEFAULT_STEPS = 4
#: the per-step accuracy figures reported (and plotted)
ACCURACY = ("ndcg@10", "hit_rate@10", "recall@10")
#: the beyond-accuracy figures reported per step
BEYOND = ("distinct@10", "popularity@10", "novelty@10", "overlap@10", "coverage@10")
LOOP = "+loop"


def parse_cutoff(value: str | float, timestamps: Int64Array) -> int:
    """The cutoff in Unix seconds: ``value`` is a fraction in (0, 1) of the time span of
    ``timestamps`` (``(n,)`` int Unix seconds) or an ISO date (UTC) inside it.
    ``InvalidInput`` (field ``cutoff``) naming the value when it is malformed or outside."""
    if timestamps.size == 0:
        raise InvalidInput("the ratings have no timestamps to cut", field="cutoff")
    lo, hi = int(timestamps.min()), int(timestamps.max())
    text = str(value).strip()
    try:
        fraction = float(text)
    except ValueError:
        fraction = None
    if fraction is not None:
        if not 0.0 < fraction < 1.0 or not math.isfinite(fraction):
            raise InvalidInput(
                f"cutoff {text!r}: a fraction of the timeline must be between 0 and 1 "
                "(exclusive), e.g. 0.8",
                field="cutoff",
            )
        return int(lo + fraction * (hi - lo))
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(
            f"cutoff {text!r} is neither a date (YYYY-MM-DD) nor a fraction like 0.8",
            field="cutoff",
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    cut = int(when.timestamp())
    if not lo < cut <= hi:
        first = datetime.fromtimestamp(lo, UTC).date().isoformat()
        last = datetime.fromtimestamp(hi, UTC).date().isoformat()
        raise InvalidInput(
            f"cutoff {text!r} is outside the ratings' timeline ({first} to {last})",
            field="cutoff",
        )
    return cut


def arrivals(frame: pd.DataFrame) -> pd.Series:
    """Each user's first rating time (Unix seconds), indexed by userId."""
    return frame.groupby("userId")["timestamp"].min()


def step_edges(frame: pd.DataFrame, cutoff: int, steps: int) -> Int64Array:
    """``(steps + 1,)`` int64 Unix seconds: equal stretches from ``cutoff`` to just after
    the last rating; step ``t`` is ``[edges[t], edges[t + 1])``."""
    last = int(frame["timestamp"].max()) + 1
    return np.linspace(cutoff, last, steps + 1).round().astype(np.int64)


def loop_train(frame: pd.DataFrame, cutoff: int, start: int) -> pd.DataFrame:
    """Arm (b)'s training ratings for a step starting at ``start`` (Unix seconds): every
    rating before ``cutoff``, plus the ratings before ``start`` of users who arrived at or
    after ``cutoff`` (the earlier visitors). ``start == cutoff`` gives arm (a)'s."""
    first = frame["userId"].map(arrivals(frame))
    t = frame["timestamp"]
    return frame[(t < cutoff) | ((first >= cutoff) & (t < start))]


def step_visitors(frame: pd.DataFrame, start: int, end: int) -> pd.DataFrame:
    """All ratings of the users whose first rating is in ``[start, end)``."""
    first = arrivals(frame)
    users = first.index[(first >= start) & (first < end)]
    return frame[frame["userId"].isin(users)]


def visitors_of(
    train: Ratings, ratings: pd.DataFrame, first_k: int
) -> tuple[list[Visitor], dict[str, int]]:
    """Each user in ``ratings`` as a visitor: their first ``first_k`` ratings (by time,
    then movieId) revealed, the later ones the target; movies unknown to ``train`` are
    dropped from both. Counts users skipped for too few ratings or nothing to fold in."""
    counts = {"arrivals": 0, "skipped_short": 0, "skipped_no_reveal": 0}
    visitors = []
    ordered = ratings.sort_values(["userId", "timestamp", "movieId"], kind="stable")
    for user_id, rows in ordered.groupby("userId", sort=True):
        counts["arrivals"] += 1
        if len(rows) <= first_k:
            counts["skipped_short"] += 1
            continue
        items = train.items_of(rows["movieId"].to_numpy())
        stars = rows["rating"].to_numpy(np.float64)
        early = np.arange(items.size) < first_k
        revealed, target = early & (items >= 0), ~early & (items >= 0)
        if not revealed.any():
            counts["skipped_no_reveal"] += 1
            continue
        visitors.append(
            Visitor(
                user_id=int(user_id),
                shown=items[revealed],
                revealed=items[revealed],
                revealed_stars=stars[revealed],
                target=items[target],
                target_stars=stars[target],
            )
        )
    return visitors, counts


@dataclass
class TemporalResult:
    """What the temporal protocol measured.

    steps: per step ``{"step", "start", "end" (ISO dates), "info": {"a": counts,
    "b": counts}, "metrics": {method: {metric: value}}}``; arm (b)'s methods are named
    ``<method>+loop``. overall: per method, visitor-weighted means over steps.
    """

    dataset: str
    models: list[str]
    settings: dict[str, Any]
    steps: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    created: str = ""

    @property
    def method_names(self) -> list[str]:
        return list(self.steps[0]["metrics"]) if self.steps else []

    def overall(self) -> dict[str, dict[str, float]]:
        """``{method: {metric: mean}}``, each step weighted by the visitors it ranked."""
        out: dict[str, dict[str, float]] = {}
        for name in self.method_names:
            arm = "b" if name.endswith(LOOP) else "a"
            rows = [
                (s["metrics"].get(name, {}), s["info"][arm].get("users_ranked", 0))
                for s in self.steps
            ]
            out[name] = {}
            for metric in (*ACCURACY, *BEYOND):
                pairs = [(v[metric], w) for v, w in rows if metric in v and w]
                total = sum(w for _, w in pairs)
                if total:
                    out[name][metric] = sum(x * w for x, w in pairs) / total
        return out

    def ratios(self, metric: str = "ndcg@10") -> dict[str, dict[str, float | None]]:
        """``{method: {"step 1": b/a, ..., "overall": b/a}}`` for ``metric``."""
        overall = self.overall()
        out: dict[str, dict[str, float | None]] = {}
        for name in self.method_names:
            if name.endswith(LOOP):
                continue
            row: dict[str, float | None] = {}
            for s in self.steps:
                a, b = s["metrics"].get(name, {}), s["metrics"].get(name + LOOP, {})
                row[f"step {s['step']}"] = _ratio(b.get(metric), a.get(metric))
            row["overall"] = _ratio(
                overall.get(name + LOOP, {}).get(metric), overall.get(name, {}).get(metric)
            )
            out[name] = row
        return out

    def to_dict(self) -> dict[str, Any]:
        from movierec.evaluate.run import _jsonable

        out: dict[str, Any] = _jsonable(
            {
                "dataset": self.dataset,
                "protocol": "temporal",
                "models": self.models,
                "settings": self.settings,
                "created": self.created,
                "seconds": self.seconds,
                "steps": self.steps,
                "overall": self.overall(),
                "ndcg_ratio_loop_to_cutoff": self.ratios(),
                "notes": self.notes,
            }
        )
        return out


def _ratio(b: float | None, a: float | None) -> float | None:
    if a is None or b is None or not a or math.isnan(a) or math.isnan(b):
        return None
    return b / a


def run_temporal(
    dataset: str,
    models: Sequence[str],
    peers: bool = False,
    cutoff: str | float = DEFAULT_CUTOFF,
    first_k: int = DEFAULT_FIRST_K,
    steps: int = DEFAULT_STEPS,
    out: Path | None = None,
    progress: bool = True,
    home: str | Path | None = None,
    seed: int = 0,
    *,
    model_params: Mapping[str, Mapping[str, Any]] | None = None,
    min_ratings: int = 0,
) -> TemporalResult:
    """Load ``dataset`` and run :func:`temporal_frame` on it (bad arguments raise
    ``InvalidInput`` before any fitting)."""
    from movierec.data import load_dataset
    from movierec.evaluate.report import check_out_dir
    from movierec.evaluate.run import _methods

    _check_counts(first_k, steps)
    parse_cutoff(cutoff, np.array([0, 2**40]))  # malformed: fail before loading anything
    _methods(models, peers, "onboarding", seed, model_params, None, scale=(0.5, 5.0))
    if out is not None:
        check_out_dir(Path(out))
    data = load_dataset(dataset, home=home, progress=progress)
    return temporal_frame(
        data.frame,
        models,
        peers=peers,
        cutoff=cutoff,
        first_k=first_k,
        steps=steps,
        out=out,
        seed=seed,
        dataset_name=dataset,
        catalog=data.catalog,
        model_params=model_params,
        min_ratings=min_ratings,
    )


def _check_counts(first_k: int, steps: int) -> None:
    for value, name, top in ((first_k, "first_k", 100), (steps, "steps", 50)):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= top:
            raise InvalidInput(f"{name} {value!r} must be a whole number from 1 to {top}", name)


def temporal_frame(
    frame: pd.DataFrame,
    models: Sequence[str],
    peers: bool = False,
    cutoff: str | float = DEFAULT_CUTOFF,
    first_k: int = DEFAULT_FIRST_K,
    steps: int = DEFAULT_STEPS,
    out: Path | None = None,
    seed: int = 0,
    *,
    dataset_name: str = "custom",
    catalog: Catalog | None = None,
    model_params: Mapping[str, Mapping[str, Any]] | None = None,
    min_ratings: int = 0,
    k_values: Sequence[int] = (5, 10, 20),
) -> TemporalResult:
    """The temporal protocol (module doc) on a ratings frame with ``userId, movieId,
    rating, timestamp`` columns (timestamp in Unix seconds)."""
    from movierec.evaluate.run import _methods

    _check_counts(first_k, steps)
    if "timestamp" not in frame.columns or frame["timestamp"].isna().any():
        raise InvalidInput(
            f"the temporal protocol needs rating timestamps; {dataset_name!r} has none",
            field="dataset",
        )
    cut = parse_cutoff(cutoff, frame["timestamp"].to_numpy(np.int64))
    edges = step_edges(frame, cut, steps)
    scale = (float(frame["rating"].min()), float(frame["rating"].max()))

    def make() -> list[Method]:
        return _methods(models, peers, "onboarding", seed, model_params, None, scale, catalog)

    before, loop = make(), make()
    base = Ratings.from_frame(loop_train(frame, cut, cut))
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    for t in range(steps):
        start, end = int(edges[t]), int(edges[t + 1])
        arriving = step_visitors(frame, start, end)
        grown = Ratings.from_frame(loop_train(frame, cut, start))
        info: dict[str, dict[str, Any]] = {}
        merged: dict[str, dict[str, float]] = {}
        for arm, train, methods in (("a", base, before), ("b", grown, loop)):
            visitors, counts = visitors_of(train, arriving, first_k)
            outcome = visitors_fold(
                methods,
                train,
                visitors,
                {"n_heldout_ratings": len(arriving), **counts},
                k_values,
                scale,
                seed=seed,
                threshold=RELEVANT_STARS,
                min_ratings=min_ratings,
                catalog=catalog,
                reliability=False,  # seconds per fit, and not what this protocol asks
            )
            info[arm] = outcome.info
            suffix = LOOP if arm == "b" else ""
            merged.update({name + suffix: v for name, v in outcome.metrics.items()})
        rows.append(
            {
                "step": t + 1,
                "start": _iso(start),
                "end": _iso(end),
                "info": info,
                "metrics": merged,
            }
        )
    result = TemporalResult(
        dataset=dataset_name,
        models=[m.name for m in before],
        settings={
            "cutoff": str(cutoff),
            "cutoff_date": _iso(cut),
            "first_k": first_k,
            "steps": steps,
            "relevant_stars": RELEVANT_STARS,
            "min_ratings": min_ratings,
            "k_values": list(k_values),
            "seed": seed,
            "n_before_cutoff": base.nnz,
        },
        steps=rows,
        notes=[
            "(a) <model>: trained once on the ratings before the cutoff. (b) <model>+loop: "
            "retrained at each step's start on those plus every earlier visitor's ratings "
            "before that start. A step's visitors are never in the model that scores them.",
            f"Each visitor's first {first_k} ratings (by time) are folded in; the later ones "
            f"of at least {RELEVANT_STARS:g} stars on movies the arm's model knows are the "
            "relevant ones (arm (b) knows movies first rated by earlier visitors).",
            "overall: means over steps weighted by visitors ranked; ratio = (b) / (a).",
        ],
        seconds=time.perf_counter() - started,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    if out is not None:
        write_temporal_report(result, Path(out))
    return result


def _iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).date().isoformat()


def format_temporal(result: TemporalResult) -> str:
    """The console table: per step and overall, each method's accuracy and the ratio."""
    from movierec.evaluate.report import label

    s = result.settings
    lines = [
        f"{result.dataset}, protocol temporal: cutoff {s['cutoff_date']} ({s['cutoff']}), "
        f"first {s['first_k']} ratings folded in, {s['steps']} steps"
    ]
    for row in _table_rows(result):
        lines.append("  ".join(f"{c:>14}" if i else f"{c:<34}" for i, c in enumerate(row)))
    ratios = result.ratios()
    for name, by_step in ratios.items():
        cells = ", ".join(f"{k} {_fmt(v)}" for k, v in by_step.items())
        lines.append(f"{label('ndcg@10')} ratio {name}{LOOP} / {name}: {cells}")
    return "\n".join(lines)


def _table_rows(result: TemporalResult) -> list[list[str]]:
    from movierec.evaluate.report import label

    columns = [*ACCURACY, *BEYOND]
    rows = [["step / method", "visitors", *[label(c) for c in columns]]]
    for s in result.steps:
        for name, values in s["metrics"].items():
            arm = "b" if name.endswith(LOOP) else "a"
            n = s["info"][arm].get("users_ranked", 0)
            head = f"{s['step']} {s['start']} {name}"
            rows.append([head, str(n), *[_fmt(values.get(c)) for c in columns]])
    for name, values in result.overall().items():
        rows.append([f"all {name}", "", *[_fmt(values.get(c)) for c in columns]])
    return rows


def _fmt(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}" if abs(value) >= 10 else f"{value:.4f}"
    return str(value)


def write_temporal_report(result: TemporalResult, out: Path) -> list[Path]:
    """``report.md``, ``results.json`` and ``temporal.png`` (without matplotlib: no PNG)."""
    from movierec.evaluate.report import _md_table
    from movierec.extras import MissingExtra

    out.mkdir(parents=True, exist_ok=True)
    plots: list[Path] = []
    with contextlib.suppress(MissingExtra):  # the tables are still worth having
        plots.append(_plot(result, out))
    (out / "results.json").write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    s = result.settings
    text = [
        f"# Temporal evaluation: {result.dataset}",
        "",
        f"- Cutoff {s['cutoff_date']} (`--cutoff {s['cutoff']}`); {s['n_before_cutoff']:,} "
        f"ratings before it; first {s['first_k']} ratings folded in; {s['steps']} steps.",
        f"- Created {result.created}; {result.seconds:.1f} s.",
        "",
        *_md_table(_table_rows(result)),
        "",
        "NDCG@10 ratio, (b) retrained with visitors / (a) before the cutoff only:",
        "",
    ]
    ratios = result.ratios()
    if ratios:
        keys = list(next(iter(ratios.values())))
        text += _md_table(
            [["method", *keys], *[[n, *[_fmt(r[k]) for k in keys]] for n, r in ratios.items()]]
        )
    text += ["", *[f"![{p.stem}]({p.name})" for p in plots], "", "## Notes", ""]
    text += [f"- {n}" for n in result.notes]
    (out / "report.md").write_text("\n".join(text) + "\n")
    return [out / "report.md", out / "results.json", *plots]


def _plot(result: TemporalResult, out: Path) -> Path:
    """One panel per accuracy and beyond-accuracy figure, over steps; solid (b), dashed
    (a)."""
    from movierec.evaluate.report import label
    from movierec.extras import require

    matplotlib = require("matplotlib", "plots", "the report's plots")
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    panels = ("ndcg@10", "recall@10", "distinct@10", "popularity@10")
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.6))
    x = [s["start"] for s in result.steps]
    for ax, metric in zip(axes, panels, strict=True):
        for name in result.method_names:
            y = [s["metrics"].get(name, {}).get(metric, math.nan) for s in result.steps]
            ax.plot(x, y, "-o" if name.endswith(LOOP) else "--o", label=name)
        ax.set_title(label(metric))
        ax.set_xlabel("step start")
        ax.tick_params(axis="x", labelrotation=30)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"the learning loop over time, {result.dataset}")
    fig.tight_layout()
    path = out / "temporal.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
