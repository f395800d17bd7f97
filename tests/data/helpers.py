"""Helpers for the data-layer tests: copying, corrupting and inspecting data folders."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

MakeZip = Callable[..., Path]  # the make_zip fixture: (name, prefix=, checksums=, crlf=)


def copy_dataset(src: Path, dest: Path, crlf: bool = False, checksums: bool = True) -> Path:
    """Copy a data set folder (optionally with CRLF line ends, without SHA256SUMS)."""
    dest.mkdir(parents=True)
    for path in src.iterdir():
        if path.name == "SHA256SUMS" and not checksums:
            continue
        data = path.read_bytes()
        if crlf:
            data = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        (dest / path.name).write_bytes(data)
    return dest


def replace_line(path: Path, line_no: int, text: str) -> None:
    """Replace 1-based line ``line_no`` of ``path`` by ``text``."""
    lines = path.read_text(encoding="latin-1").split("\n")
    lines[line_no - 1] = text
    path.write_text("\n".join(lines), encoding="latin-1")


def leftovers(home: Path) -> list[str]:
    """Hidden entries (temporary folders) left in ``<home>/data/``."""
    data = home / "data"
    return sorted(p.name for p in data.iterdir() if p.name.startswith(".")) if data.is_dir() else []


def snapshot(folder: Path) -> dict[str, bytes]:
    """File name -> contents, to compare a folder before and after."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}
