"""Fixtures for the data-layer tests: copies of the shared data, zips, a local HTTP server."""

from __future__ import annotations

import os
import threading
import zipfile
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from .helpers import MakeZip

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def shared() -> Path:
    """The folder holding ``ml-latest-small/`` and ``ml-100k/`` (read-only)."""
    path = Path(os.environ.get("MOVIEREC_DATA_SOURCE") or REPO.parent / "shared" / "data")
    if not (path / "ml-latest-small").is_dir():
        pytest.skip(f"{path} is not a directory of data set folders")
    return path


@pytest.fixture
def make_zip(shared: Path, tmp_path: Path) -> MakeZip:
    """``make_zip(name, prefix=name, checksums=True, crlf=False) -> Path`` of a new zip."""

    def make(
        name: str, prefix: str | None = None, checksums: bool = True, crlf: bool = False
    ) -> Path:
        prefix = name if prefix is None else prefix
        out = tmp_path / "zips" / f"{name}.zip"
        out.parent.mkdir(exist_ok=True)
        with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zf:
            if prefix:
                zf.writestr(f"{prefix}/", "")
            for path in sorted((shared / name).iterdir()):
                if path.name == "SHA256SUMS" and not checksums:
                    continue
                data = path.read_bytes()
                if crlf:
                    data = data.replace(b"\n", b"\r\n")
                zf.writestr(f"{prefix}/{path.name}" if prefix else path.name, data)
        return out

    return make


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture
def http_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, str]]:
    """A real HTTP server on 127.0.0.1 serving a fresh folder: ``(folder, base_url)``."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    root = tmp_path / "www"
    root.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
