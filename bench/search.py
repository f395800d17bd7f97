"""Title search latency: p50/p99 per query at 9.7k titles (ml-latest-small) and at 60k.

The 60k catalogue is ml-latest-small's titles plus synthetic ones made here (no 60k title
set is published with the data sets we fetch): 1-5 words drawn from the real titles'
vocabulary by frequency, a year from 1900-2024, a trailing article on 1 in 8, an
alternative title in parentheses on 1 in 10, Zipf-like rating counts. Queries mix what
visitors type: whole titles (some with "The" in front or ", The" behind), prefixes as typed
(3-12 characters), one or two title words, titles with a typo (a swapped, dropped or
changed letter, the first one included), accent-free spellings, and title + year. Each
query is timed alone after a warm-up (``common.time_calls``), by the wall clock and by
the thread's CPU time (``time.thread_time``: what the query itself cost, without the
waits of a busy shared machine); figures are per query, in milliseconds. The load average
is printed with them.

    python bench/search.py [--queries 2000] [--sizes 9742,60000] [--seed 0]

Targets (issue 8): p99 <= 10 ms at 9.7k titles and <= 30 ms at 60k.
"""

from __future__ import annotations

import argparse
import random
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
from common import (  # bench/common.py
    default_source,
    header,
    percentiles,
    print_table,
    stopwatch,
    time_calls,
)

from movierec.search import TitleIndex, split_title

ARTICLES = ("The", "A", "An", "Le", "La", "Les", "Die")


def real_titles(source: Path) -> list[tuple[int, str, int]]:
    movies = pd.read_csv(source / "ml-latest-small" / "movies.csv")
    counts = pd.read_csv(source / "ml-latest-small" / "ratings.csv").groupby("movieId").size()
    n = counts.reindex(movies["movieId"]).fillna(0).astype(int)
    return list(zip(movies["movieId"], movies["title"], n, strict=True))


def synthetic(real: list[tuple[int, str, int]], size: int, rng: random.Random):
    """``size - len(real)`` made-up titles appended to ``real``."""
    words = Counter(w for _, t, _ in real for n in split_title(t)[0] for w in n.split())
    vocab, weights = zip(*words.items(), strict=True)
    out = list(real)
    next_id = max(m for m, _, _ in real) + 1
    zipf = np.random.default_rng(rng.randrange(2**32)).zipf(1.6, size)
    while len(out) < size:
        name = " ".join(rng.choices(vocab, weights=weights, k=rng.randint(1, 5)))
        if rng.random() < 1 / 8:
            name = f"{name}, {rng.choice(ARTICLES)}"
        if rng.random() < 1 / 10:
            name += " (" + " ".join(rng.choices(vocab, weights=weights, k=rng.randint(1, 3))) + ")"
        out.append((next_id, f"{name} ({rng.randint(1900, 2024)})", int(zipf[len(out)] - 1)))
        next_id += 1
    return out


def typo(text: str, rng: random.Random) -> str:
    letters = [i for i, c in enumerate(text) if c.isalpha()]
    if len(letters) < 4:
        return text
    i = rng.choice(letters[:-1])  # the first letter too: people mistype it as often
    kind = rng.randrange(3)
    if kind == 0:
        return text[:i] + text[i + 1] + text[i] + text[i + 2 :]
    if kind == 1:
        return text[:i] + text[i + 1 :]
    return text[:i] + rng.choice("aeiourstn") + text[i + 1 :]


def queries(movies: list[tuple[int, str, int]], n: int, rng: random.Random) -> list[str]:
    popular = sorted(movies, key=lambda m: -m[2])[:2000]
    out = []
    for _ in range(n):
        _, title, _ = rng.choice(popular)
        names, year = split_title(title)
        name = names[0]
        kind = rng.randrange(6)
        if kind == 0:
            out.append(name)
        elif kind == 1:
            out.append(name[: rng.randint(3, 12)])
        elif kind == 2:
            out.append(" ".join(rng.sample(name.split(), min(2, len(name.split())))))
        elif kind == 3:
            out.append(typo(name, rng))
        elif kind == 4:
            out.append(f"{name} {year}" if year else name)
        else:
            out.append(name.lower().replace("é", "e").replace("the ", ""))
    return [q for q in out if q.strip()]


def measure(movies, qs: list[str], limit: int = 10) -> dict[str, float]:
    with stopwatch() as build:
        index = TitleIndex(movies)
    for q in qs[:50]:  # warm-up
        index.search(q, limit)
    asked = iter(qs)
    times, cpu = time_calls(lambda: index.search(next(asked), limit), len(qs), warmup=0)
    p50, p99 = percentiles(times)
    cpu_p50, cpu_p99 = percentiles(cpu)
    return {
        "titles": len(movies),
        "build_s": build.wall,
        "p50": p50,
        "p99": p99,
        "max": float(times.max()),
        "cpu_p50": cpu_p50,
        "cpu_p99": cpu_p99,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--sizes", default="9742,60000")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--source", type=Path, default=Path(default_source() or "data"))
    args = parser.parse_args()
    rng = random.Random(args.seed)
    real = real_titles(args.source)
    header()
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        movies = real if size <= len(real) else synthetic(real, size, rng)
        qs = queries(movies, args.queries, random.Random(args.seed + size))
        r = measure(movies, qs)
        rows.append(
            [r["titles"], f"{r['build_s']:.2f}"]
            + [f"{r[k]:.2f}" for k in ("p50", "p99", "max", "cpu_p50", "cpu_p99")]
        )
    headers = ["titles", "build s", "p50 ms", "p99 ms", "max ms", "cpu p50", "cpu p99"]
    print_table(headers, rows)


if __name__ == "__main__":
    main()
