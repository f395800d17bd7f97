"""What steering the picks costs a picks page, as ratios to the plain page (issue 20).

One visitor with 10 ratings; TMDB answered by the in-process fake with its cache warm, so
the figures are the app's own work. Timed server-side through Flask's test client, each
page alone after a warm-up (``time_calls``):

- ``GET /recommendations``: the plain picks page (5 shown; the pages rank 50 and show the
  first 5, so "show 5 more" only adds below), the baseline;
- ``?n=50``: "Show 5 more" at its end (50 cards rendered);
- ``?genre=Horror``: only one genre;
- ``?like=<the first pick>``: "More like this" (its 40 most similar movies, ranked for the
  visitor by the same recommend call);
- and the recommend call alone, 5 picks against 50 (what ranking 50 for every page costs).

    python bench/steer.py [--repeat 200] [--model ease]
"""

from __future__ import annotations

import argparse
import re
import sys

from common import (  # bench/common.py
    build_rated_client,
    header,
    latency_rows,
    print_table,
    time_calls,
)

from movierec.config import load_settings

#: the visitor's ratings (movieId: stars): popular movies, mixed tastes
RATINGS = {
    260: 5.0, 1196: 4.5, 2571: 5.0, 318: 4.0, 356: 3.5,
    1: 3.0, 296: 4.5, 593: 4.0, 2959: 4.5, 480: 2.5,
}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--model", default="ease")
    args = parser.parse_args(argv)
    header(argv)
    with build_rated_client(load_settings(), RATINGS, model=args.model) as rated:
        app, settings, client = rated.app, rated.settings, rated.client
        first = re.search(
            r'<li class="result" data-movie-id="(\d+)"',
            client.get("/recommendations").get_data(as_text=True),
        ).group(1)

        def get(path: str) -> None:
            answer = client.get(path)
            assert answer.status_code == 200, (path, answer.status_code)

        rows = []
        for name, path in (
            ("picks page (5 shown)", "/recommendations"),
            ("show 5 more, at 50", "/recommendations?n=50"),
            ("only Horror", "/recommendations?genre=Horror"),
            ("more like the first pick", f"/recommendations?like={first}"),
        ):
            wall, _ = time_calls(lambda path=path: get(path), args.repeat, warmup=5)
            rows.append((name, wall))
        service = app.extensions["movierec"].recommender(settings.model)
        for n in (5, 50):
            wall, _ = time_calls(lambda n=n: service.recommend(RATINGS, n=n), args.repeat, 5)
            rows.append((f"recommend call alone, n={n}", wall))

    table = latency_rows(rows)
    print(
        f"movierec steered picks: {settings.dataset}, model {settings.model}, SQLite, "
        f"TMDB fake with warm cache, {args.repeat} requests each (wall ms)"
    )
    print_table(["page", "p50 ms", "p99 ms", "p50 vs plain page"], table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
