"""The evaluation harness: splits, metrics, protocols, peers and reports.

Example::

    from movierec.evaluate import format_table, run_evaluation

    result = run_evaluation("ml-100k", "official", ["svd", "popular"], peers=True,
                            out=Path("bench/ml-100k"))
    print(format_table(result))

- :mod:`.splits`: ``official`` / ``kfold:K`` / ``holdout:F`` folds, and user folds.
- :mod:`.metrics`: RMSE, MAE, precision/recall/NDCG/hit rate@k, MAP, coverage, novelty,
  popularity percentile, genre diversity and miscalibration, personalisation overlap.
- :mod:`.personas`: simulated visitors who love one genre and hate another (taste share).
- :mod:`.adapters` / :mod:`.peers`: our models, Surprise and the original app's method
  behind one interface, so every number comes from the same metric code.
- :mod:`.protocols`: the ``rating`` and ``onboarding`` protocols, fold by fold.
- :mod:`.temporal`: the ``temporal`` protocol (does retraining on visitors help later ones?).
- :mod:`.report`: console table, ``report.md``, ``results.json`` and plots.

Nothing is imported from Surprise until a peer is asked for.
"""

from movierec.evaluate.report import format_table, write_report
from movierec.evaluate.run import (
    EvaluationResult,
    default_split,
    evaluate_frame,
    run_evaluation,
)
from movierec.evaluate.splits import Split, parse_split

__all__ = [
    "EvaluationResult",
    "Split",
    "default_split",
    "evaluate_frame",
    "format_table",
    "parse_split",
    "run_evaluation",
    "write_report",
]
