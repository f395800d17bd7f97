"""What checking a ``POST /api/v1/recommendations`` body costs, by way of checking.

Peers in the same run, on the same bodies (5, 50 and 200 ratings):

- ``pydantic``: the API's way (:func:`movierec.inputs.validated` on the request model of
  :mod:`movierec.web.schemas`; pydantic-core checks the declared schema, the Python
  parsers only word a refusal);
- ``python loop``: the ratings walked in Python by the same parsers
  (:func:`movierec.web.schemas._ratings_problem`, what the API did before the schema
  checked the body), for the ratings alone.

Prints one markdown table: p50 and p99 CPU microseconds per body, and the ratio.

    python bench/inputs.py [--repeat 2000]
"""

from __future__ import annotations

import argparse

from common import header, percentiles, print_table, time_calls

from movierec.inputs import validated
from movierec.web.schemas import _ratings_problem, request_models

MODELS = ("ease", "svd", "nmf", "popular")
GENRES = ("Action", "Comedy", "Drama")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2000, help="timed calls per cell")
    args = parser.parse_args()
    header()
    model = request_models(MODELS, GENRES).recommendations
    rows = []
    for size in (5, 50, 200):
        body = {"ratings": {str(i): 0.5 * (1 + i % 10) for i in range(1, size + 1)}, "n": 10}
        _, schema_cpu = time_calls(lambda b=body: validated(model, b), args.repeat)
        _, loop_cpu = time_calls(lambda b=body: _ratings_problem(b["ratings"]), args.repeat)
        s50, s99 = (1000 * v for v in percentiles(schema_cpu))
        l50, l99 = (1000 * v for v in percentiles(loop_cpu))
        rows.append(
            [size, f"{s50:.1f}", f"{s99:.1f}", f"{l50:.1f}", f"{l99:.1f}", f"{l50 / s50:.2f}"]
        )
    headers = [
        "ratings",
        "pydantic p50 us",
        "pydantic p99 us",
        "python loop p50 us",
        "python loop p99 us",
        "loop / pydantic (p50)",
    ]
    print_table(headers, rows)


if __name__ == "__main__":
    main()
