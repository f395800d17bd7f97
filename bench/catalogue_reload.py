"""What movies added to the catalogue cost a serving process (ml-latest-small).

In one process, as a worker has them: the svd, nmf and popular models (quick parameters,
as the web tests train them), their recommend services, the search index. Then:

- the look before every request (``Recommenders.refresh_catalog``) while the file has
  not changed: throttled (no ``stat``) and when it does ``stat`` the file, per call;
- the reload after ``--added`` movies were added (catalogue + every service rebuilt), and
  the search extras rebuilt for it (``CatalogueExtras`` with the previous ones), against
  building those extras the first time, in the same run;
- a recommendation (5 picks, explained) before and after: the genre matching of added
  movies on top of the model's ranking.

Times are CPU time of this thread (``time.thread_time``), the median of ``--repeat``
runs; the load average is printed with them.

    python bench/catalogue_reload.py [--added 12] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    default_source,
    header,
    print_table,
    ratio,
    stopwatch,
    temp_home,
)

from movierec.config import load_settings  # noqa: E402
from movierec.data import fetch_dataset  # noqa: E402
from movierec.data.added import NewMovie, add_movies, added_path  # noqa: E402
from movierec.web.catalogue import CatalogueExtras  # noqa: E402
from movierec.web.services import Recommenders  # noqa: E402
from movierec.web.testing import prepare_home  # noqa: E402

DATASET = "ml-latest-small"
GENRES = (("Crime", "Drama"), ("Comedy", "Drama", "Thriller"), ("Horror",), ("Animation",))


def cpu_ms(action: Callable[[], object], repeat: int) -> float:
    """Median thread CPU milliseconds of ``action()`` over ``repeat`` runs."""
    times = []
    for _ in range(repeat):
        with stopwatch(time.thread_time) as watch:
            action()
        times.append(watch.cpu_ms)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--added", type=int, default=12)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--source", default=default_source())
    args = parser.parse_args()
    header()
    with temp_home() as tmp:
        data_home = tmp / "data-home"
        fetch_dataset(DATASET, source=args.source, home=data_home, progress=False)
        home = tmp / "home"
        prepare_home(home, data_home, DATASET)  # quick svd, nmf, popular
        settings = load_settings({"MOVIEREC_HOME": str(home), "MOVIEREC_DATASET": DATASET,
                                  "MOVIEREC_MODEL": "svd"})  # fmt: skip
        recommenders = Recommenders(settings, choices=("svd", "nmf", "popular"))
        for name in recommenders.choices:
            recommenders.get(name)
        base = recommenders.catalog
        folder = home / "data" / DATASET
        first_extras = cpu_ms(lambda: CatalogueExtras(base, folder), 1)
        extras = CatalogueExtras(base, folder)
        visitor = {858: 5.0, 296: 4.5, 1: 2.0, 2571: 4.0, 593: 4.5}
        before = cpu_ms(lambda: recommenders.get("svd").recommend(visitor, n=5), args.repeat * 4)

        recommenders.catalog_check_every = 3.0
        throttled = cpu_ms(recommenders.refresh_catalog, 1000) * 1000
        recommenders.catalog_check_every = 0.0
        looked = cpu_ms(recommenders.refresh_catalog, 1000) * 1000

        reloads, rebuilds = [], []
        for k in range(args.repeat):
            new = [
                NewMovie(f"Added {k}-{i}", 2019 + i % 5, GENRES[i % len(GENRES)], None, None)
                for i in range(args.added if k == 0 else 1)
            ]
            add_movies(added_path(DATASET, home), recommenders.catalog, new)
            reloads.append(cpu_ms(recommenders.refresh_catalog, 1))
            catalog = recommenders.catalog
            rebuilds.append(cpu_ms(lambda c=catalog: CatalogueExtras(c, folder, None, extras), 1))
        after = cpu_ms(lambda: recommenders.get("svd").recommend(visitor, n=5), args.repeat * 4)
        picks = recommenders.get("svd").recommend(visitor, n=5).items
    reload, rebuild = statistics.median(reloads), statistics.median(rebuilds)
    n_added = recommenders.catalog.n_added
    services = len(recommenders.loaded)
    rows = [
        ("the look before a request, file unchanged: throttled (no `stat`)",
         f"{throttled:.2f} us", "", ""),
        ("the same when it `stat`s the file", f"{looked:.2f} us", "", ""),
        (f"reload after an add: catalogue + {services} recommend services",
         f"{reload:.0f} ms", "", ""),
        ("search extras (index, import matcher) for the new catalogue", f"{rebuild:.0f} ms",
         f"built the first time: {first_extras:.0f} ms", ratio(rebuild, first_extras)),
        (f"one recommendation, 5 picks, with {n_added} added movies", f"{after:.2f} ms",
         f"none added: {before:.2f} ms", ratio(after, before)),
    ]  # fmt: skip
    print(f"{DATASET}, {len(base):,} movies + {n_added} added; models "
          f"{', '.join(recommenders.loaded)}; thread CPU, medians")  # fmt: skip
    print_table(["what", "CPU", "against", "ratio"], rows)
    print(f"last pick: {picks[-1].reason}")


if __name__ == "__main__":
    main()
