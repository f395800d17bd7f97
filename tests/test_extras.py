"""Optional parts are extras: the default install runs the app and CLI without them, and
a missing extra is one line naming the extra to install."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from movierec.extras import MissingExtra, require

#: run in a child Python in which the extras' packages cannot be imported
BLOCK_EXTRAS = textwrap.dedent(
    """
    import importlib.abc, sys

    class NoExtras(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {"redis", "matplotlib", "pyspark"}:
                raise ImportError(f"blocked {name}")
            return None

    sys.meta_path.insert(0, NoExtras())
    """
)


def run_without_extras(code: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", BLOCK_EXTRAS + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "MOVIEREC_HOME": str(home)},
    )


def test_require_names_the_extra_in_one_line():
    with pytest.raises(MissingExtra) as missing:
        require("movierec_no_such_module", "plots", "the report's plots")
    message = str(missing.value)
    assert "\n" not in message
    assert message.startswith("the report's plots needs the [plots] extra")
    assert "pip install 'movierec[plots]'" in message


def test_the_app_and_cli_work_without_any_extra(tmp_path):
    done = run_without_extras(
        """
        from movierec.cli import main
        from movierec.web import create_app  # noqa: F401
        import movierec.evaluate.report, movierec.web.limits  # noqa: F401
        try:
            main(["--help"])
        except SystemExit as stop:
            assert stop.code == 0
        for name in ("redis", "matplotlib", "pyspark"):
            assert name not in sys.modules, name
        print("ok")
        """,
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("ok")


def test_redis_url_without_the_redis_extra_is_one_line(tmp_path):
    done = run_without_extras(
        """
        from movierec.extras import MissingExtra
        from movierec.web.limits import init_limits
        from movierec.config import load_settings
        from flask import Flask

        app = Flask("t")
        app.config["RATELIMIT_STORAGE_URI"] = "redis://127.0.0.1:1/0"
        try:
            init_limits(app, load_settings({}))
        except MissingExtra as missing:
            print(missing)
        """,
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith("REDIS_URL (rate limits shared in Redis) needs the")
    assert "movierec[redis]" in done.stdout


def test_a_report_without_the_plots_extra_keeps_its_tables(tmp_path, session_home):
    out = tmp_path / "report"
    done = run_without_extras(
        f"""
        from pathlib import Path
        from movierec.cli import main
        code = main(["evaluate", "--dataset", "ml-100k", "--split", "holdout:0.2",
                     "--models", "popular", "--out", {str(out)!r}])
        print("exit", code)
        """,
        session_home,
    )
    assert "exit 0" in done.stdout, done.stderr
    assert "needs the [plots] extra" in done.stderr
    assert (out / "report.md").exists() and (out / "results.json").exists()
    assert not list(out.glob("*.png"))
