"""Presenting an :class:`EvaluationResult`: a console table, ``report.md``, ``results.json``
and PNG plots (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

import json
import logging
import math
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from movierec.errors import InvalidInput
from movierec.evaluate.calibration import ece_columns, reliability_plot
from movierec.extras import MissingExtra, require

if TYPE_CHECKING:
    from movierec.evaluate.run import EvaluationResult

log = logging.getLogger(__name__)

LABELS = {
    "rmse": "RMSE",
    "mae": "MAE",
    "map": "MAP",
    "fit_s": "fit s",
    "predict_s": "predict s",
    "rank_s": "rank s",
    "fold_in_ms": "fold-in ms",
    "ece": "ECE",
    "taste_s": "taste s",
}
PREFIXES = {
    "precision": "P",
    "recall": "R",
    "ndcg": "NDCG",
    "hit_rate": "HR",
    "coverage": "cov",
    "novelty": "nov",
    "ties": "ties",
    "distinct": "distinct",
    "popularity": "pop%",
    "overlap": "overlap",
    "diversity": "ILD",
    "miscalibration": "miscal",
    "taste_loved": "loved",
    "taste_hated": "hated",
}
#: beyond-accuracy measures at one k, in the order the tables and the plot show them
BEYOND = (
    "distinct",
    "coverage",
    "popularity",
    "novelty",
    "overlap",
    "diversity",
    "miscalibration",
    "taste_loved",
    "taste_hated",
)
#: what each beyond-accuracy measure means, for the plot's panel titles
BEYOND_TITLES = {
    "distinct": "distinct movies listed",
    "coverage": "catalogue coverage",
    "popularity": "popularity percentile",
    "novelty": "novelty, bits",
    "overlap": "two lists' overlap (low: personal)",
    "diversity": "genre diversity",
    "miscalibration": "genre miscalibration, nats",
    "taste_loved": "share in loved genre",
    "taste_hated": "share in hated genre (low: good)",
}


def label(metric: str) -> str:
    """Short column name: ``recall@10`` -> ``R@10``."""
    if metric in LABELS:
        return LABELS[metric]
    name, _, k = metric.partition("@")
    return f"{PREFIXES.get(name, name)}@{k}" if k else name


def main_k(k_values: Sequence[int], wanted: int = 10) -> int:
    """``wanted`` if measured, else the middle k."""
    return wanted if wanted in k_values else sorted(k_values)[len(k_values) // 2]


def headline_metrics(result: EvaluationResult) -> list[list[str]]:
    """The metric groups the console table shows (one table each): accuracy, then the
    beyond-accuracy measures at k = 10 in two tables (popularity and personalisation;
    genres and taste)."""
    ks = result.k_values
    k = main_k(ks)
    if _asked_points(result):
        return [columns for _, columns in curve_groups(result)]
    beyond = beyond_metrics(result)
    split = beyond.index(f"diversity@{k}")
    tables = [beyond[:split], beyond[split:]]
    if result.protocol == "onboarding":
        hit_k, ndcg_k, recall_k = main_k(ks, 5), k, main_k(ks, 20)
        return [
            [
                f"hit_rate@{hit_k}",
                f"ndcg@{ndcg_k}",
                f"recall@{recall_k}",
                "map",
                f"coverage@{k}",
                "rmse",
                "ece",
                "fit_s",
                "fold_in_ms",
            ],
            *tables,
        ]
    return [
        ["rmse", "mae", "ece", "fit_s", "predict_s"],
        [
            f"precision@{k}",
            f"recall@{k}",
            f"ndcg@{k}",
            f"hit_rate@{k}",
            "map",
            f"coverage@{k}",
            f"novelty@{k}",
            "rank_s",
        ],
        *tables,
    ]


def beyond_metrics(result: EvaluationResult) -> list[str]:
    """The beyond-accuracy columns at k = 10 (or the middle k); taste share is at 10."""
    k = main_k(result.k_values)
    return [f"{name}@{10 if name.startswith('taste') else k}" for name in BEYOND]


def _cell(result: EvaluationResult, method: str, metric: str, with_std: bool) -> str:
    mean, std = result.mean(method, metric), result.std(method, metric)
    if math.isnan(mean):
        return "-"
    digits = 1 if metric.endswith("_s") or metric.endswith("_ms") or "novelty" in metric else 4
    if metric.startswith(("distinct", "popularity")):
        digits = 1
    if metric.startswith(("coverage", "ties", "overlap", "diversity", "miscal", "taste")):
        digits = 3
    text = f"{mean:.{digits}f}"
    if with_std and len(result.folds) > 1:
        text += f" ± {std:.{digits}f}"
    return text


def _table(result: EvaluationResult, columns: list[str], with_std: bool) -> list[list[str]]:
    rows = [["method", *[label(c) for c in columns]]]
    for method in result.method_names:
        rows.append([method, *[_cell(result, method, c, with_std) for c in columns]])
    return rows


def format_table(result: EvaluationResult) -> str:
    """Plain-text tables (mean ± std over folds) for the console."""
    lines = [
        f"{result.dataset}, split {result.split}, protocol {result.protocol}: "
        f"{len(result.folds)} fold(s), {result.seconds:.0f} s"
    ]
    measured = set(result.metric_names())
    for columns in headline_metrics(result):
        columns = [c for c in columns if c in measured]
        if not columns:
            continue
        rows = _table(result, columns, with_std=True)
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines.append("")
        for n, row in enumerate(rows):
            cells = [row[0].ljust(widths[0])]
            cells += [c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]
            lines.append("  ".join(cells))
            if n == 0:
                lines.append("  ".join("-" * w for w in widths))
    lines.append("")
    lines.append(_counts_line(result))
    for method in result.methods:
        for note in method["notes"]:
            lines.append(f"{method['name']}: {note}")
    return "\n".join(lines)


def _asked_points(result: EvaluationResult) -> list[int]:
    """Movies asked after each round (strategy comparison), or [] for other protocols."""
    s = result.settings
    if not s.get("strategies"):
        return []
    return [s["per_round"] * (r + 1) for r in range(s["rounds"])]


def curve_groups(result: EvaluationResult) -> list[tuple[str, list[str]]]:
    """The strategy comparison's tables: each metric after each round (``"metric/N"``)."""
    asked = _asked_points(result)
    return [
        ("NDCG@10 after N asked", [f"ndcg@10/{a}" for a in asked]),
        ("Hit rate@5 after N asked", [f"hit_rate@5/{a}" for a in asked]),
        ("Recall@20 after N asked", [f"recall@20/{a}" for a in asked]),
        (
            "Movies the visitor could rate (answers, and share of asked) after N asked",
            [*[f"rated/{a}" for a in asked], *[f"rated_share/{a}" for a in asked], "choose_ms"],
        ),
    ]


def _counts_line(result: EvaluationResult) -> str:
    info = result.fold_info
    if _asked_points(result):
        held = sum(i["heldout_users"] for i in info)
        return (
            f"held-out users: {held} over {len(info)} fold(s); each asked "
            f"{result.settings['per_round']} movies per round for "
            f"{result.settings['rounds']} rounds"
        )
    if result.protocol == "onboarding":
        ranked = sum(i["users_ranked"] for i in info)
        held = sum(i["heldout_users"] for i in info)
        no_reveal = sum(i["skipped_no_reveal"] for i in info)
        no_rel = sum(i["skipped_no_relevant"] for i in info)
        revealed = [i["mean_revealed"] for i in info if i["users_ranked"]]
        mean_rev = sum(revealed) / len(revealed) if revealed else 0.0
        rankable = sum(i.get("visitors_rankable", i["users_ranked"]) for i in info)
        sampled = (
            f" (a random sample of {ranked} of the {rankable} who could be ranked)"
            if rankable > ranked
            else ""
        )
        return (
            f"held-out users: {held}; ranked {ranked}{sampled}, skipped {no_reveal} who "
            f"revealed no rating and {no_rel} with no relevant movie left; "
            f"{mean_rev:.1f} ratings revealed on average"
        )
    ranked = sum(i["users_ranked"] for i in info)
    return (
        f"users ranked over folds: {ranked} (skipped: "
        f"{sum(i['users_without_relevant'] for i in info)} with no relevant test movie, "
        f"{sum(i['test_users_unknown'] for i in info)} unknown to training); "
        f"test pairs with an unknown user or movie: {sum(i['test_pairs_unknown'] for i in info)}"
    )


# -- files -------------------------------------------------------------------------------------


def check_out_dir(out: Path) -> None:
    """Make sure the report can be written into ``out`` (created if missing), before a
    long run starts; raise :class:`InvalidInput` naming the folder if not."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as exc:
        raise InvalidInput(
            f"cannot write the report into {out}: {exc.strerror or exc}", field="out"
        ) from None


def write_report(result: EvaluationResult, out: Path) -> list[Path]:
    """Write ``report.md``, ``results.json`` and the plots into ``out`` (created)."""
    out.mkdir(parents=True, exist_ok=True)
    try:
        plots = write_plots(result, out)
    except MissingExtra as missing:  # the tables are still worth having
        log.warning("%s; report.md and results.json are written without them", missing)
        plots = []
    result.out = out
    result.files = ["report.md", "results.json", *[p.name for p in plots]]
    (out / "results.json").write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    (out / "report.md").write_text(markdown(result, [p.name for p in plots]))
    return [out / "report.md", out / "results.json", *plots]


def markdown(result: EvaluationResult, plots: Sequence[str] = ()) -> str:
    """The report: configuration, tables (every k), plots, per-fold counts, notes."""
    s = result.settings
    title = "Onboarding evaluation" if result.protocol == "onboarding" else "Evaluation"
    lines = [
        f"# {title}: {result.dataset}, {result.split}",
        "",
        f"- Data set: **{result.dataset}**; split: {s['split']} ({len(result.folds)} fold(s))",
        f"- Protocol: **{result.protocol}**; seed {result.seed}; relevant = "
        f"{s['relevant_stars']:g}+ stars; k = {', '.join(map(str, result.k_values))}",
        f"- Run {result.created}, {result.seconds:.0f} s; versions: "
        + ", ".join(f"{k} {v}" for k, v in s["versions"].items()),
        f"- Methods: {_methods_line(result)}",
        "",
        "Values are mean ± std over folds. Per-fold numbers are in `results.json`.",
        "",
    ]
    ks = result.k_values
    if _asked_points(result):
        groups = [(f"Onboarding strategies: {h}", c) for h, c in curve_groups(result)]
    elif result.protocol == "onboarding":
        groups = [
            ("Onboarding: top-N after folding in the form's ratings", headline_metrics(result)[0]),
        ]
    else:
        groups = [("Rating prediction", headline_metrics(result)[0])]
    for name in ("precision", "recall", "ndcg", "hit_rate"):
        groups.append((f"Top-N: {name.replace('_', ' ')}@k", [f"{name}@{k}" for k in ks]))
    groups.append(
        (
            "Top-N: MAP, coverage and novelty",
            ["map", *[f"coverage@{k}" for k in ks], *[f"novelty@{k}" for k in ks]],
        )
    )
    k = main_k(ks)
    groups.append(
        (
            f"Beyond accuracy at k={k} (taste share at 10), beside NDCG@{k}",
            [f"ndcg@{k}", *beyond_metrics(result)],
        )
    )
    groups.append(
        (
            "Beyond accuracy at every k",
            [
                f"{name}@{k}"
                for name in ("distinct", "popularity", "overlap", "diversity", "miscalibration")
                for k in ks
            ],
        )
    )
    groups.append(
        (
            "Ties at the cut: share of users whose k-th and (k+1)-th scores are equal, so "
            "the tie-break (lower movieId first) decides the list",
            [f"ties@{k}" for k in ks],
        )
    )
    groups.append(
        (
            "Like probability: expected calibration error, all visitors and by their number "
            "of usable ratings (reliability.png)",
            ece_columns(result),
        )
    )
    groups.append(("Time (seconds per fold)", _time_metrics(result)))
    measured = set(result.metric_names())
    for heading, columns in groups:
        columns = [c for c in columns if c in measured]
        if not columns:
            continue
        lines += [f"## {heading}", "", *_md_table(_table(result, columns, with_std=True)), ""]
    if plots:
        lines += ["## Plots", ""]
        lines += [f"![{p}]({p})" for p in plots]
        lines.append("")
    lines += ["## Users and ratings per fold", "", _counts_line(result), ""]
    keys = list(result.fold_info[0]) if result.fold_info else []
    rows = [["fold", *keys]]
    for i, info in enumerate(result.fold_info):
        rows.append([str(i + 1), *[_fmt(info[k]) for k in keys]])
    lines += [*_md_table(rows), ""]
    lines += ["## How it was measured", ""]
    lines += [f"- {note}" for note in result.notes]
    for method in result.methods:
        for note in method["notes"]:
            lines.append(f"- {method['name']}: {note}")
    lines += ["", "## Parameters", ""]
    for method in result.methods:
        params = ", ".join(f"{k}={v!r}" for k, v in method["params"].items()) or "defaults"
        lines.append(f"- {method['name']} ({method['kind']}): {params}")
    lines.append("")
    return "\n".join(lines)


def _methods_line(result: EvaluationResult) -> str:
    ours = [m["name"] for m in result.methods if m["kind"] == "ours"]
    peers = [m["name"] for m in result.methods if m["kind"] == "peer"]
    text = "ours: " + (", ".join(ours) or "none")
    if peers:
        text += "; peers: " + ", ".join(peers)
    return text


def _time_metrics(result: EvaluationResult) -> list[str]:
    if result.protocol == "onboarding":
        return ["fit_s", "rank_s", "fold_in_ms", "taste_s"]
    return ["fit_s", "predict_s", "rank_s", "taste_s"]


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _md_table(rows: list[list[str]]) -> list[str]:
    header, *body = rows
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in body]
    return out


# -- plots -----------------------------------------------------------------------------------


def write_plots(result: EvaluationResult, out: Path) -> list[Path]:
    """PNG plots; returns the paths written (raises MissingExtra without matplotlib)."""
    matplotlib = require("matplotlib", "plots", "the report's plots")
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    if _asked_points(result):
        return [_curve_plot(result, out, plt)]
    written: list[Path] = []
    names = result.method_names
    colours = ["tab:blue" if m["kind"] == "ours" else "tab:gray" for m in result.methods]
    cold = " (folded-in, cold start)" if result.protocol == "onboarding" else ""

    def save(fig, filename: str) -> None:
        fig.tight_layout()
        path = out / filename
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)

    # RMSE per method
    rmse = [result.mean(n, "rmse") for n in names]
    if any(not math.isnan(v) for v in rmse):
        fig, ax = plt.subplots(figsize=(max(5.0, 0.8 * len(names) + 2), 4))
        err = [0 if math.isnan(result.std(n, "rmse")) else result.std(n, "rmse") for n in names]
        ax.bar(names, rmse, yerr=err, color=colours, capsize=4)
        finite = [v for v in rmse if not math.isnan(v)]
        ax.set_ylim(max(0.0, min(finite) - 0.1), max(finite) + 0.05)
        ax.set_ylabel("RMSE (stars)")
        ax.set_title(f"RMSE{cold}, {result.dataset} {result.split} (mean ± std)")
        ax.tick_params(axis="x", rotation=30)
        for tick in ax.get_xticklabels():
            tick.set_horizontalalignment("right")
        save(fig, "rmse.png")

    # recall@k curves
    ks = list(result.k_values)
    ranked = [n for n in names if not math.isnan(result.mean(n, f"recall@{ks[0]}"))]
    if ranked:
        fig, ax = plt.subplots(figsize=(8, 4.5))
        palette = [plt.get_cmap("tab20")(i) for i in range(20)]  # its 20 colours
        for i, n in enumerate(ranked):
            means = [result.mean(n, f"recall@{k}") for k in ks]
            stds = [result.std(n, f"recall@{k}") for k in ks]
            kind = next(m["kind"] for m in result.methods if m["name"] == n)
            ax.errorbar(
                ks,
                means,
                yerr=stds,
                marker="osD^v<>ph*"[i % 10],
                color=palette[(2 * i) % 20 + (i // 10) % 2],
                capsize=3,
                label=n,
                linestyle="-" if kind == "ours" else "--",
            )
        ax.set_xlabel("k (list length)")
        ax.set_ylabel("recall@k")
        ax.set_xticks(ks)
        ax.set_title(f"recall@k, {result.dataset} {result.split} ({result.protocol})")
        ax.legend(fontsize="small", loc="center left", bbox_to_anchor=(1.01, 0.5))
        save(fig, "recall_at_k.png")

    # fit time vs RMSE
    points = [
        (result.mean(n, "fit_s"), result.mean(n, "rmse"), n, c)
        for n, c in zip(names, colours, strict=True)
        if not math.isnan(result.mean(n, "rmse"))
    ]
    if points:
        fig, ax = plt.subplots(figsize=(6, 4))
        for fit_s, r, n, c in points:
            ax.scatter([max(fit_s, 1e-3)], [r], color=c)
            ax.annotate(
                n,
                (max(fit_s, 1e-3), r),
                textcoords="offset points",
                xytext=(4, 4),
                fontsize="small",
            )
        ax.set_xscale("log")
        ax.set_xlabel("fit time per fold (s, log scale)")
        ax.set_ylabel("RMSE (stars)")
        ax.set_title(f"fit time vs RMSE{cold}")
        save(fig, "fit_time_vs_rmse.png")

    # onboarding headline metrics
    if result.protocol == "onboarding" and ranked:
        metrics = headline_metrics(result)[0][:3]
        fig, ax = plt.subplots(figsize=(max(6.0, 1.2 * len(ranked) + 2), 4))
        width = 0.8 / len(metrics)
        for j, metric in enumerate(metrics):
            xs = [i + (j - (len(metrics) - 1) / 2) * width for i in range(len(ranked))]
            ax.bar(
                xs,
                [result.mean(n, metric) for n in ranked],
                width,
                yerr=[
                    0 if math.isnan(result.std(n, metric)) else result.std(n, metric)
                    for n in ranked
                ],
                capsize=3,
                label=label(metric),
            )
        ax.set_xticks(range(len(ranked)))
        ax.set_xticklabels(ranked, rotation=30, ha="right")
        ax.set_ylim(0, 1)
        ax.set_title(f"onboarding, {result.dataset} {result.split}")
        ax.legend(fontsize="small")
        save(fig, "onboarding.png")
    reliability = reliability_plot(result, out, plt)
    if reliability is not None:
        written.append(reliability)

    beyond = _beyond_plot(result, plt)
    if beyond is not None:
        save(beyond, "beyond_accuracy.png")
    return written


def _beyond_plot(result: EvaluationResult, plt):
    """One bar chart per measure at k = 10, accuracy first (NDCG, recall, hit rate), then
    the beyond-accuracy ones; bars: methods (ours blue, peers grey), error bars: std over
    folds. None if nothing was ranked."""
    k = main_k(result.k_values)
    panels = [
        (f"ndcg@{k}", "NDCG"),
        (f"recall@{k}", "recall"),
        (f"hit_rate@{k}", "hit rate"),
        *[(metric, BEYOND_TITLES[metric.partition("@")[0]]) for metric in beyond_metrics(result)],
    ]
    measured = set(result.metric_names())
    panels = [(m, t) for m, t in panels if m in measured]
    kinds = {m["name"]: m["kind"] for m in result.methods}
    names = [n for n in result.method_names if not math.isnan(result.mean(n, f"ndcg@{k}"))]
    if not panels or not names:
        return None
    cols = 4
    rows = -(-len(panels) // cols)
    width = max(3.2, 0.45 * len(names) + 1.4)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * width, rows * 2.9), squeeze=False)
    for ax, (metric, title) in zip(axes.ravel(), panels, strict=False):
        means = [result.mean(n, metric) for n in names]
        stds = [result.std(n, metric) for n in names]
        ax.bar(
            range(len(names)),
            [0.0 if math.isnan(v) else v for v in means],
            yerr=[0.0 if math.isnan(v) else v for v in stds],
            color=["tab:blue" if kinds[n] == "ours" else "tab:gray" for n in names],
            capsize=3,
        )
        for i, v in enumerate(means):
            if math.isnan(v):
                ax.text(i, 0, "n/a", ha="center", va="bottom", fontsize="x-small")
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels(names, rotation=30, ha="right", fontsize="small")
        ax.set_title(f"{label(metric)}: {title}", fontsize="small")
    for ax in axes.ravel()[len(panels) :]:
        ax.axis("off")
    fig.suptitle(
        f"accuracy and beyond, {result.dataset} {result.split} ({result.protocol}; "
        "mean ± std over folds)"
    )
    return fig


def _curve_plot(result: EvaluationResult, out: Path, plt) -> Path:
    """``onboarding_curves.png``: NDCG@10, HR@5, recall@20 and the share rated against
    movies asked, one line per strategy (error bars: std over folds)."""
    asked = _asked_points(result)
    panels = [("ndcg@10", "NDCG@10"), ("hit_rate@5", "HR@5"), ("recall@20", "recall@20")]
    panels.append(("rated_share", "share of asked rated"))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.8))
    for ax, (metric, title) in zip(axes, panels, strict=True):
        for name in result.method_names:
            means = [result.mean(name, f"{metric}/{a}") for a in asked]
            stds = [result.std(name, f"{metric}/{a}") for a in asked]
            stds = [0.0 if math.isnan(v) else v for v in stds]
            ax.errorbar(asked, means, yerr=stds, marker="o", capsize=3, label=name)
        ax.set_xticks(asked)
        ax.set_xlabel("movies asked")
        ax.set_title(title)
        ax.set_ylim(bottom=0)
    axes[0].legend(fontsize="small")
    fig.suptitle(f"onboarding strategies, {result.dataset} {result.split}")
    fig.tight_layout()
    path = out / "onboarding_curves.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
