"""``movierec data fetch`` against hostile sources: zip bombs, corrupt zips, endless downloads.

Each case exits 2 with one line naming the source, writes at most a few MB on the way
(measured with the kernel's count of bytes this process wrote, ``/proc/self/io``), and
leaves no temporary folder and no half-installed data set behind.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from movierec.cli import main
from movierec.data import fetch as fetch_module
from movierec.errors import DataError

SMALL = "ml-latest-small"
MB = 1024 * 1024
WRITE_BUDGET = 4 * MB  # bytes a refused fetch may write in all (stderr included)
REPO = Path(__file__).resolve().parents[2]


# -- building hostile zips ---------------------------------------------------------------------
def zeros_zip(path: Path, unpacked: int, name: str = f"{SMALL}/ratings.csv") -> Path:
    """A zip whose one member inflates to ``unpacked`` zero bytes (deflated, level 9)."""
    with (
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf,
        zf.open(name, "w") as member,
    ):
        block = bytes(MB)
        for _ in range(unpacked // MB):
            member.write(block)
    return path


def lie_about_size(path: Path, declared: int) -> Path:
    """Rewrite the one member's uncompressed size in both headers to ``declared`` bytes."""
    data = bytearray(path.read_bytes())
    local = data.index(b"PK\x03\x04")
    central = data.index(b"PK\x01\x02")
    struct.pack_into("<I", data, local + 22, declared)
    struct.pack_into("<I", data, central + 24, declared)
    path.write_bytes(bytes(data))
    return path


def real_zip(source: Path, path: Path) -> Path:
    """ml-latest-small as the official zip holds it (deflated, in a folder)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for file in sorted((source / SMALL).iterdir()):
            zf.write(file, f"{SMALL}/{file.name}")
    return path


def flip_bytes(path: Path, member: str, count: int = 16) -> Path:
    """Invert ``count`` bytes in the middle of ``member``'s compressed data."""
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(member)
    data = bytearray(path.read_bytes())
    name_len, extra_len = struct.unpack_from("<HH", data, info.header_offset + 26)
    start = info.header_offset + 30 + name_len + extra_len + info.compress_size // 2
    for i in range(start, start + count):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    return path


@pytest.fixture
def source(home: Path) -> Path:
    """The folder holding ``ml-latest-small/`` (the tests' data source)."""
    path = Path(os.environ["MOVIEREC_DATA_SOURCE"])
    if not (path / SMALL).is_dir():
        pytest.skip(f"{path} is not a directory of data set folders")
    return path


def written_bytes() -> int:
    """Bytes this process has written so far (every write(2), files and pipes alike)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    raise AssertionError("no wchar in /proc/self/io")


def leftovers(home: Path) -> list[str]:
    data = home / "data"
    return sorted(p.name for p in data.iterdir() if p.name.startswith(".")) if data.is_dir() else []


def fetch_is_refused(
    archive: Path, home: Path, capsys: pytest.CaptureFixture[str], message: str
) -> str:
    """Run ``movierec data fetch`` on ``archive``; check the refusal; return the error line."""
    capsys.readouterr()
    before = written_bytes()
    code = main(["data", "fetch", SMALL, "--source", str(archive)])
    written = written_bytes() - before
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("movierec: error: ") and str(archive) in lines[0], err
    assert message in lines[0], err
    assert written < WRITE_BUDGET, f"{written:,} bytes written"
    assert not (home / "data" / SMALL).exists()
    assert leftovers(home) == []
    return lines[0]


# -- zip bombs ---------------------------------------------------------------------------------
def test_zip_bomb_is_refused_before_extracting(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bomb = zeros_zip(tmp_path / "bomb.zip", 200 * MB)
    assert bomb.stat().st_size < 400_000  # ~200 KB that would unpack to 200 MB
    line = fetch_is_refused(bomb, home, capsys, "refusing a possible zip bomb")
    assert "209,715,200 bytes" in line


def test_high_compression_ratio_is_refused(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bomb = zeros_zip(tmp_path / "ratio.zip", 20 * MB)  # under the size cap, ratio ~1000
    line = fetch_is_refused(bomb, home, capsys, "refusing a possible zip bomb")
    assert "ratings.csv inflates" in line


def test_lying_header_lets_out_no_more_than_declared(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    liar = lie_about_size(zeros_zip(tmp_path / "liar.zip", 50 * MB), declared=1000)
    fetch_is_refused(liar, home, capsys, "not a readable zip file")


def test_bounded_copy_stops_at_the_declared_size(tmp_path: Path) -> None:
    # zipfile itself stops at the declared size; the copy must too, whatever the reader does
    import io

    out = io.BytesIO()
    with pytest.raises(DataError, match=r"x\.zip: m holds more than the 10 bytes its header"):
        fetch_module._copy_bounded(io.BytesIO(bytes(5 * MB)), out, 10, Path("x.zip"), "m")
    assert out.tell() == 0


# -- corrupt zips ------------------------------------------------------------------------------
@pytest.mark.parametrize("damage", ["truncated", "flipped", "empty", "garbage"])
def test_corrupt_zip_is_one_line(
    source: Path, home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], damage: str
) -> None:
    archive = real_zip(source, tmp_path / f"{damage}.zip")
    if damage == "truncated":
        archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    elif damage == "flipped":
        flip_bytes(archive, f"{SMALL}/ratings.csv")
    elif damage == "empty":
        archive.write_bytes(b"")
    else:
        archive.write_bytes(os.urandom(50_000))
    fetch_is_refused(archive, home, capsys, "not a readable zip file")


def test_intact_zip_still_fetches(
    source: Path, home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archive = real_zip(source, tmp_path / "good.zip")
    assert main(["data", "fetch", SMALL, "--source", str(archive)]) == 0
    assert (home / "data" / SMALL / "ratings.csv").stat().st_size == (
        source / SMALL / "ratings.csv"
    ).stat().st_size
    assert leftovers(home) == []


def test_zip_bomb_through_the_console_script(home: Path, tmp_path: Path) -> None:
    bomb = zeros_zip(tmp_path / "bomb.zip", 200 * MB)
    result = subprocess.run(
        [sys.executable, "-m", "movierec.cli", "data", "fetch", SMALL, "--source", str(bomb)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and "zip bomb" in result.stderr, result.stderr
    assert leftovers(home) == []


# -- endless downloads -------------------------------------------------------------------------
class _EndlessZip(BaseHTTPRequestHandler):
    """Serves ``/<name>.zip`` as 8 MB of bytes, with or without a Content-Length."""

    protocol_version = "HTTP/1.0"
    size = 8 * MB

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        if not self.path.endswith(".zip"):
            self.send_error(404)
            return
        self.send_response(200)
        if "with-length" in self.path:
            self.send_header("Content-Length", str(self.size))
        self.end_headers()
        block = bytes(64 * 1024)
        try:
            for _ in range(self.size // len(block)):
                self.wfile.write(block)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client stopped reading: what we want

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture
def endless_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EndlessZip)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("with-length/x.zip", r"8,388,608 bytes is more than expected \(1,048,576 at most\)"),
        ("no-length/x.zip", r"more than the 1,048,576 bytes expected; stopped the download"),
    ],
)
def test_download_is_capped(endless_server: str, tmp_path: Path, path: str, message: str) -> None:
    target = tmp_path / "x.zip"
    with pytest.raises(DataError, match=message):
        fetch_module._download(f"{endless_server}/{path}", target, False, max_bytes=MB)
    assert not target.exists() or target.stat().st_size <= MB


def test_oversized_download_through_the_cli(
    endless_server: str, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # ml-latest-small's cap is 32 MB; a source that declares more is refused unread
    _EndlessZip.size = 64 * MB
    try:
        code = main(["data", "fetch", SMALL, "--source", f"{endless_server}/with-length/"])
    finally:
        _EndlessZip.size = 8 * MB
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert "67,108,864 bytes is more than expected" in err and endless_server in err
    assert leftovers(home) == []
