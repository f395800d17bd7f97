"""bench/common.py, the toolkit every bench prints its tables with (issue 21 item 4): the
tables docs/benchmarks.md pastes, the header line naming the command and date above them,
and the "against the plain case" rows."""

from __future__ import annotations

import ast
import datetime
import importlib.util
import re
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.fixture(scope="module")
def common():
    spec = importlib.util.spec_from_file_location("bench_common", BENCH / "common.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def test_markdown_table_aligns_numbers_right_and_text_left(common):
    table = common.markdown_table(["page", "p50 ms"], [("plain", "9.5"), ("with 20", "12.25")])
    assert table.splitlines() == [
        "| page    | p50 ms |",
        "|---------|-------:|",
        "| plain   |    9.5 |",
        "| with 20 |  12.25 |",
    ]


def test_header_names_the_command_the_date_and_the_cores(common, capsys):
    line = common.header(["--repeat", "100", "--model", "ease svd"], script="steer.py")
    today = datetime.datetime.now(datetime.UTC).date().isoformat()
    assert line.startswith("`python bench/steer.py --repeat 100 --model 'ease svd'` (")
    assert re.search(rf"\({today}, \d+ cores, load average \d+\.\d\)$", line)
    assert capsys.readouterr().out == line + "\n\n"  # a blank line before what follows


def test_latency_rows_compare_each_p50_with_the_first(common):
    rows = common.latency_rows([("plain", [10.0, 10.0, 30.0]), ("steered", [20.0, 25.0, 30.0])])
    assert rows == [("plain", "10.0", "29.6", "1.00x"), ("steered", "25.0", "29.9", "2.50x")]
    assert common.ratio(3.0, 0.0) == "n/a"


def test_print_table_keeps_the_lines_around_it_out_of_the_table(common, capsys):
    print("title")
    common.print_table(["a"], [["1"]])
    print("after")
    assert capsys.readouterr().out == "title\n\n| a |\n|--:|\n| 1 |\n\nafter\n"


def module_prints_tables_itself(path: Path) -> list[int]:
    """Line numbers of ``print`` calls whose text starts a markdown row (``"|``)."""
    tree = ast.parse(path.read_text())
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print":
            first = node.args[0] if node.args else None
            text = ast.unparse(first) if first is not None else ""
            if re.match(r"""f?["']\|""", text):
                lines.append(node.lineno)
    return lines


@pytest.mark.parametrize(
    "script", sorted(p.name for p in BENCH.glob("*.py") if p.name not in {"common.py", "load.py"})
)
def test_every_bench_prints_its_header_and_no_table_of_its_own(script):
    text = (BENCH / script).read_text()
    assert re.search(r"^\s+header\((argv)?\)$", text, re.M), f"{script} prints no header"
    assert not module_prints_tables_itself(BENCH / script), f"{script} formats a table by hand"
