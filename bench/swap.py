"""Swapping models under load: p99 latency while a new model file goes live, and RSS.

Starts ``movierec serve`` (as bench/load.py does, on ``--home``), then sends
``POST /api/v1/recommendations`` from ``--clients`` keep-alive clients twice:

1. *steady*: no swap, ``--seconds`` long;
2. *swaps*: the same load while the default model's file is replaced ``--swaps`` times,
   every ``--swap-every`` seconds, alternating between the served file and a second
   version of it (the same model trained with ``seed=1`` beforehand, in a scratch home,
   so no training competes for the CPU while measuring). Each replacement is what
   ``movierec train`` does: a copy written beside the file and renamed over it. The
   workers find it by themselves (``MOVIEREC_MODEL_CHECK_EVERY``) and swap it in.

Prints both phases' req/s, p50 and p99 (ms), failed requests, the p99 ratio (swaps /
steady), how long each new version took to be served by every worker (10 fresh
connections all answering it on ``GET /api/v1/model``), and the server's RSS and PSS
summed over its processes before and after the swaps.

    python bench/swap.py --home DIR [--workers 2] [--clients 32] [--swaps 5] [--swap-every 15]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    REPO,
    default_source,
    header,
    percentiles,
    print_table,
    ratio,
    temp_home,
)
from load import (  # noqa: E402
    Connection,
    Level,
    api_payloads,
    free_port,
    memory_mb,
    run_level,
    server_pids,
    start_server,
    stop_server,
    wait_ready,
)

HOST = "127.0.0.1"
VERSION_ASKS = 10  # fresh connections that must all answer the new version


def model_file(home: Path, dataset: str, model: str) -> Path:
    return home / "models" / f"{dataset}-{model}.npz"


def second_version(home: Path, dataset: str, model: str, scratch: Path) -> Path:
    """The same model trained with ``seed=1`` in a scratch home sharing ``home``'s data."""
    scratch.mkdir()
    (scratch / "data").symlink_to((home / "data").resolve(), target_is_directory=True)
    env = {**os.environ, "MOVIEREC_HOME": str(scratch)}
    source = default_source()
    if source:
        env["MOVIEREC_DATA_SOURCE"] = source
    command = [sys.executable, "-m", "movierec.cli", "train", "--dataset", dataset]
    command += ["--model", model, "-p", "seed=1"]
    subprocess.run(command, env=env, check=True, cwd=REPO, stdout=subprocess.DEVNULL)
    return model_file(scratch, dataset, model)


def replace_with(source: Path, target: Path) -> None:
    """What training does: write beside ``target``, then rename over it (atomic)."""
    temp = target.with_name(f"{target.stem}.tmp-{os.getpid()}-{secrets.token_hex(4)}.npz")
    shutil.copyfile(source, temp)
    os.replace(temp, target)


async def served_versions(port: int) -> set[str]:
    seen = set()
    for _ in range(VERSION_ASKS):
        conn = Connection(HOST, port)
        try:
            answer = await conn.request("GET", "/api/v1/model")
            seen.add(json.loads(answer.body)["version"])
        finally:
            await conn.close()
    return seen


async def swapper(
    port: int,
    files: list[Path],
    target: Path,
    every: float,
    live_after: list[float],
    root: int,
    rss_after: list[str],
) -> None:
    """Replace ``target`` with each of ``files`` in turn, ``every`` s apart; note how long
    each version took to be all that is served, and the workers' RSS then."""
    for source in files:
        await asyncio.sleep(every)
        replaced = time.monotonic()
        replace_with(source, target)
        version = version_of(source)
        while await served_versions(port) != {version}:
            await asyncio.sleep(0.2)
        live_after.append(time.monotonic() - replaced)
        rss_after.append(workers_rss(root))


def version_of(path: Path) -> str:
    from movierec.models.files import FileVersion, read_model_meta

    return FileVersion.of(read_model_meta(path)).version


def workers_rss(root: int) -> str:
    """Each worker's (the supervisor's children's) RSS, MB."""
    sizes = [memory_mb([pid])[0] for pid in server_pids(root) if pid != root]
    return ", ".join(f"{mb:.0f} MB" for mb in sizes)


def summary(name: str, level: Level) -> tuple[str, ...]:
    """One row of the phases' table (``PHASE_COLUMNS``)."""
    p50, p99 = percentiles(level.latencies_ms)
    rate = level.done / level.seconds if level.seconds else 0.0
    return (
        name, str(level.clients), str(level.done), str(level.errors), f"{rate:.0f}",
        f"{p50:.1f}", f"{p99:.1f}",
    )  # fmt: skip


PHASE_COLUMNS = ["phase", "clients", "requests", "errors", "req/s", "p50 ms", "p99 ms"]


async def bench(args: argparse.Namespace, port: int, root: int, files: list[Path]) -> int:
    conn = Connection(HOST, port)
    onboarding = await conn.request("GET", "/api/v1/onboarding")
    await conn.close()
    movie_ids = [m["movieId"] for m in json.loads(onboarding.body)["movies"]]
    payloads = api_payloads(movie_ids, seed=0)
    target = model_file(args.home, args.dataset, args.model)
    many = 10**9  # the phases end by time

    await run_level(HOST, port, Level("api", args.clients), args.clients * 4, 10.0, payloads)
    rss, pss = memory_mb(server_pids(root))
    print(
        f"server: {len(server_pids(root))} processes, RSS {rss:.0f} MB, PSS {pss:.0f} MB (before)"
    )
    rss_before = workers_rss(root)
    print(f"workers' RSS (before): {rss_before}")
    steady = Level("api", args.clients)
    await run_level(HOST, port, steady, many, args.seconds, payloads)
    print("  " + "  ".join(summary("steady", steady)), file=sys.stderr, flush=True)

    swapping = Level("api", args.clients)
    live_after: list[float] = []
    rss_each: list[str] = []
    cycle = [files[(i + 1) % 2] for i in range(args.swaps)]  # second, first, second, ...
    seconds = args.swap_every * (args.swaps + 1)
    await asyncio.gather(
        run_level(HOST, port, swapping, many, seconds, payloads),
        swapper(port, cycle, target, args.swap_every, live_after, root, rss_each),
    )
    await asyncio.sleep(3.0)  # the last requests on the old model end
    rss_after, pss_after = memory_mb(server_pids(root))
    print(f"server: RSS {rss_after:.0f} MB, PSS {pss_after:.0f} MB (after {len(live_after)} swaps)")
    print(f"workers' RSS (after): {workers_rss(root)}\n")
    print_table(PHASE_COLUMNS, [summary("steady", steady), summary("swaps", swapping)])
    steady_p99 = percentiles(steady.latencies_ms, [99])[0]
    swaps_p99 = percentiles(swapping.latencies_ms, [99])[0]
    print(f"\np99 during swaps / steady p99: {ratio(swaps_p99, steady_p99)}\n")
    rows = [("before", "", rss_before)]
    rows += [
        (str(i), f"{after:.1f}", sizes)
        for i, (after, sizes) in enumerate(zip(live_after, rss_each, strict=True), 1)
    ]
    print_table(["swap", "served by every worker after s", "workers' RSS"], rows)
    failed = steady.errors + swapping.errors
    print(f"failed requests: {failed}")
    return 1 if failed or len(live_after) != args.swaps else 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--home", type=Path, required=True, help="MOVIEREC_HOME with trained models"
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--model", default="ease", help="the served (default) model")
    parser.add_argument("--dataset", default="ml-latest-small")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--swaps", type=int, default=5)
    parser.add_argument("--swap-every", type=float, default=15.0, help="seconds between swaps")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the steady phase")
    args = parser.parse_args(argv)
    args.no_train = True
    if args.swaps < 1 or args.swap_every <= 0 or not 1 <= args.clients <= 256:
        parser.error("--swaps at least 1, --swap-every positive, --clients 1-256")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    header(argv)
    served = model_file(args.home, args.dataset, args.model)
    if not served.exists():
        print(f"bench/swap.py: no {served}; run movierec train first", file=sys.stderr)
        return 2
    with temp_home(prefix="movierec-swap-") as tmp:
        first = tmp / "first.npz"
        shutil.copyfile(served, first)
        second = second_version(args.home, args.dataset, args.model, tmp / "scratch")
        port = free_port()
        log = tmp / "server.log"
        server = start_server(args.home, port, args, log)
        try:
            asyncio.run(wait_ready(HOST, port, server))
            code = asyncio.run(bench(args, port, server.pid, [first, second]))
        except RuntimeError as exc:
            print(f"bench/swap.py: {exc}; server log:\n{log.read_text()[-3000:]}", file=sys.stderr)
            return 2
        finally:
            stop_server(server)
            replace_with(first, served)  # the home keeps the file it had
        said = [ln for ln in log.read_text().splitlines() if "movierec.web.services" in ln]
        print(f"server log: {len(said)} swap lines, e.g. {said[0][:160] if said else '-'}")
        return code


if __name__ == "__main__":
    sys.exit(main())
