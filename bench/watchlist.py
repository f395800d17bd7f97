"""What the watchlist and "on my services" cost a picks page, as ratios to the plain page.

One visitor with 10 ratings; TMDB answered by the in-process fake with every movie's
answer (watch providers included) cached, so the figures are the app's own work. Timed
server-side through Flask's test client, each page alone after a warm-up (``time_calls``):

- ``GET /recommendations``: the plain picks page (5 picks), the baseline;
- the same with 20 movies on the watchlist (they leave the picks; "From your watchlist,
  best match first" ranks them: one more recommend call);
- ``GET /recommendations?on=mine`` with one service ticked (Netflix: half the movies):
  the best 60 picks ranked, their providers read from the cache, 5 kept;
- ``GET /watchlist?sort=match`` with those 20 movies.

    python bench/watchlist.py [--repeat 200] [--model ease]
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
WATCHLIST = 20


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--model", default="ease")
    args = parser.parse_args(argv)
    header(argv)
    with build_rated_client(load_settings(), RATINGS, model=args.model) as rated:
        settings, client, token = rated.settings, rated.client, rated.token

        def get(path: str) -> None:
            answer = client.get(path)
            assert answer.status_code == 200, (path, answer.status_code)

        rows = []
        plain, _ = time_calls(lambda: get("/recommendations"), args.repeat, warmup=5)
        rows.append(("picks page (5 picks)", plain))
        # the 20 best picks go on the watchlist
        picks = re.findall(
            r'<li class="result" data-movie-id="(\d+)"',
            client.get(f"/recommendations?n={WATCHLIST}").get_data(as_text=True),
        )
        for movie_id in picks[:WATCHLIST]:
            answer = client.post(
                "/watchlist/add", data={"csrf_token": token, "movie_id": movie_id, "next": "/"}
            )
            assert answer.status_code == 303
        with_list, _ = time_calls(lambda: get("/recommendations"), args.repeat, warmup=5)
        rows.append((f"picks page, {WATCHLIST} on the watchlist", with_list))
        answer = client.post("/where-to-watch", data={"csrf_token": token, "service": "8"})
        assert answer.status_code == 303
        mine, _ = time_calls(lambda: get("/recommendations?on=mine"), args.repeat, warmup=5)
        rows.append(("picks page, on my services", mine))
        listed, _ = time_calls(lambda: get("/watchlist?sort=match"), args.repeat, warmup=5)
        rows.append((f"watchlist page ({WATCHLIST}, by match)", listed))

    table = latency_rows(rows)
    print(
        f"movierec watchlist pages: {settings.dataset}, model {settings.model}, SQLite, "
        f"TMDB fake with warm cache, {args.repeat} requests each (wall ms)"
    )
    print_table(["page", "p50 ms", "p99 ms", "p50 vs plain"], table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
