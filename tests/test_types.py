"""mypy over src/movierec, as configured in pyproject.toml ([tool.mypy]: strict on
``models/``, ``recommend.py`` and ``web/``), so the one test command type-checks too."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "movierec"
#: a ``type: ignore`` must name its error code and say why on the same line
IGNORE = re.compile(r"#\s*type:\s*ignore(?P<codes>\[[^\]]*\])?(?P<rest>.*)$")


def test_mypy_finds_no_error() -> None:
    if importlib.util.find_spec("mypy") is None:
        if os.environ.get("MOVIEREC_REQUIRE_MYPY"):
            pytest.fail("mypy is not installed: pip install -e '.[test]'")
        pytest.skip("mypy is not installed (pip install -e '.[test]')")
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-error-summary", "--hide-error-context"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert done.returncode == 0, f"mypy found errors:\n{done.stdout}{done.stderr}"


def test_every_type_ignore_names_its_code_and_a_reason() -> None:
    bare = []
    for path in sorted(SRC.rglob("*.py")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            found = IGNORE.search(line)
            if found and (not found["codes"] or "#" not in found["rest"]):
                bare.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not bare, "a type: ignore without [code] and '# reason':\n" + "\n".join(bare)
