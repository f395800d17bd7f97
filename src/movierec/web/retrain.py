"""``movierec serve --retrain-every 6h``: the supervisor retrains the served models.

Every ``every`` seconds (counted from the end of the previous round) the supervisor runs
``movierec train --with-visitors --dataset D --model M`` for each served model, one at a
time, each as a process of its own at low priority (``nice -n 10``): never inside a
serving worker, and never in the supervisor, which must not start the thread pools that
training starts before it forks again (see :mod:`movierec.training`). The supervisor
only polls the child on each turn of its loop (``poll``); nothing blocks.

``train`` saves through :func:`movierec.training.save_checked`: the new model goes to a
temporary file, is read back and checked, and only then renamed over the old one, so a
failed, killed or damaged training leaves the model in use alone. The workers then swap
the new file in by themselves (:meth:`movierec.web.services.Recommenders.refresh`, every
``MOVIEREC_MODEL_CHECK_EVERY`` seconds); ``on_trained`` lets the supervisor refresh its own copy,
from which later workers fork. Each training's time and figures are logged in one line
and kept in its record (:func:`movierec.training.read_training_record`), which
``GET /api/v1/model`` shows. The same is what a cron line running
``movierec train --with-visitors`` does (docs/operating.md).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from pathlib import Path
from typing import IO, Any

from movierec.config import Settings
from movierec.errors import InvalidInput
from movierec.models.files import utc_now
from movierec.training import model_path, read_training_record, write_training_record

#: niceness of a training process (0 normal, 19 lowest): serving goes first
NICENESS = 10
#: shortest period accepted (a round on ml-latest-small takes about 30 s per model)
MIN_EVERY = 10.0
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd])")


def parse_every(text: str) -> float:
    """Seconds in ``text``: a number and a unit, ``30m``, ``6h``, ``1d`` (``s`` too);
    ``InvalidInput`` naming the value otherwise, or below :data:`MIN_EVERY` s."""
    match = _DURATION.fullmatch(str(text).strip().lower())
    if match is None:
        raise InvalidInput(
            f"--retrain-every {str(text)[:40]!r} is not a duration; give a number and a unit "
            "(s, m, h or d), e.g. 30m, 6h or 1d",
            field="retrain_every",
        )
    seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds < MIN_EVERY:
        raise InvalidInput(
            f"--retrain-every {text!r} is too short; at least {MIN_EVERY:g} s",
            field="retrain_every",
        )
    return seconds


def train_command(dataset: str, model: str) -> list[str]:
    """``[nice -n 10] python -m movierec.cli train --with-visitors --dataset D --model M``."""
    command = [sys.executable, "-m", "movierec.cli", "train", "--with-visitors"]
    command += ["--dataset", dataset, "--model", model]
    nice = shutil.which("nice")
    return [nice, "-n", str(NICENESS), *command] if nice else command


class Retrainer:
    """Retrains ``models`` every ``every`` seconds, driven by :meth:`poll`.

    ``on_trained(model)`` is called after a training that saved a new file. ``log``
    receives one line per training (default: stderr, as the supervisor's own lines).
    """

    def __init__(
        self,
        every: float,
        settings: Settings,
        models: Sequence[str],
        on_trained: Callable[[str], object] | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.every = float(every)
        self.settings = settings
        self.models = list(models)
        self.on_trained = on_trained
        self.log = log or _print
        self.due = time.monotonic() + self.every
        self.queue: list[str] = []
        self.child: subprocess.Popen[bytes] | None = None
        self.current: str | None = None
        self.started = 0.0
        self.output: IO[bytes] | None = None

    def poll(self, now: float) -> None:
        """One look: reap a finished training, start the next one that is due."""
        if self.child is not None:
            if self.child.poll() is None:
                return
            self._finished(self.child.returncode)
        if not self.queue and now >= self.due:
            self.queue = list(self.models)
        if self.queue:
            self._start(self.queue.pop(0))
            if not self.queue:
                self.due = float("inf")  # set again when this last one ends

    def _start(self, model: str) -> None:
        path = model_path(self.settings.dataset, model, self.settings)
        path.parent.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "MOVIEREC_HOME": str(self.settings.home),
            "MOVIEREC_DATASET": self.settings.dataset,
        }
        self.current, self.started = model, time.monotonic()
        self.log(f"retraining {model} on {self.settings.dataset} with visitors' ratings")
        try:
            # its progress and errors go to a file beside the model, not the server's log
            self.output = path.with_suffix(".last-training.log").open("wb")
            self.child = subprocess.Popen(
                train_command(self.settings.dataset, model),
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=self.output,
                stderr=self.output,
                start_new_session=True,  # a Ctrl-C to serve is the supervisor's to pass on
            )
        except OSError as exc:  # no room, no permission: this round is over, the next comes
            self.current = None
            if self.output is not None:
                self.output.close()
            self.queue, self.due = [], time.monotonic() + self.every
            self.log(f"retraining {model} could not start ({exc}); the model in use stays")

    def _finished(self, code: int) -> None:
        model, child = self.current, self.child
        assert model is not None and child is not None
        self.child, self.current = None, None
        if self.output is not None:
            self.output.close()
        if not self.queue:
            self.due = time.monotonic() + self.every
        path = model_path(self.settings.dataset, model, self.settings)
        record = read_training_record(path)
        if record is None or record.get("pid") != child.pid:
            # killed before it could say: its record is written here
            record = {"model": model, "dataset": self.settings.dataset, "pid": child.pid}
            record.update(
                finished_at=utc_now(),
                outcome="failed",
                seconds=round(time.monotonic() - self.started, 1),
                reason=f"train {_exit(code)}: {_last_line(path)}",
            )
            write_training_record(path, record)
        self.log(describe(record))
        if record.get("outcome") == "saved" and self.on_trained is not None:
            try:
                self.on_trained(model)
            except Exception as exc:  # the workers take the file by themselves anyway
                self.log(f"after retraining {model}: {exc}")

    def stop(self) -> None:
        """End a training in progress (serve is stopping): its temporary file is removed
        by the next save, the model in use stays."""
        if self.child is not None and self.child.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(self.child.pid, signal.SIGTERM)
            try:
                self.child.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with suppress(ProcessLookupError):
                    os.killpg(self.child.pid, signal.SIGKILL)
                self.child.wait()
        if self.output is not None:
            self.output.close()


def describe(record: dict[str, Any]) -> str:
    """One log line for a training's record."""
    what = f"{record.get('model')} on {record.get('dataset')}"
    seconds = record.get("seconds")
    took = f" in {seconds:.0f} s" if isinstance(seconds, int | float) else ""
    if record.get("outcome") != "saved":
        return (
            f"retraining {what} failed{took} ({record.get('reason', 'no reason recorded')}); "
            "the model in use stays"
        )
    figures = ", ".join(
        f"{record[k]:,} {label}"
        for k, label in (("ratings", "ratings"), ("dataset_users", "data-set users"))
        if isinstance(record.get(k), int)
    )
    visitors = record.get("visitors")
    if isinstance(visitors, int):
        figures += f", {visitors:,} visitors"
    if isinstance(record.get("rmse"), float) and isinstance(record.get("mean_rmse"), float):
        figures += f"; training RMSE {record['rmse']:.3f} (the mean's {record['mean_rmse']:.3f})"
    return f"retrained {what}{took} ({figures}): version {record.get('version')}"


def _exit(code: int) -> str:
    return f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"


def _last_line(path: Path) -> str:
    """The last line the training printed (its one-line error), cut to 200 characters."""
    try:
        text = path.with_suffix(".last-training.log").read_bytes()[-4000:]
    except OSError:
        return "no output"
    lines = [ln.strip() for ln in text.decode("utf-8", "replace").replace("\r", "\n").split("\n")]
    lines = [ln for ln in lines if ln]
    return lines[-1][:200] if lines else "no output"


def _print(line: str) -> None:
    print(f"movierec: {line}", file=sys.stderr, flush=True)
