"""Fetching data sets from every kind of source, verified and all-or-nothing."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import pytest

from movierec.data import fetch as fetch_module
from movierec.data import fetch_dataset, is_fetched, load_dataset
from movierec.data.fetch import MARKER_FILE
from movierec.data.movielens import DATASETS
from movierec.errors import DataError, InvalidInput

from .helpers import MakeZip, copy_dataset, leftovers, replace_line, snapshot

SMALL = "ml-latest-small"


def fetch(source: object, home: Path, **kwargs: object) -> Path:
    return fetch_dataset(SMALL, source=source, home=home, progress=False, **kwargs)  # type: ignore[arg-type]


def assert_fetched(folder: Path, home: Path, name: str = SMALL) -> None:
    assert folder == home / "data" / name
    assert is_fetched(DATASETS[name], folder)
    assert leftovers(home) == []


# -- local sources ------------------------------------------------------------------------------
def test_directory_of_dataset_folders(shared: Path, tmp_path: Path) -> None:
    for name in ("ml-latest-small", "ml-100k"):  # the sets the shared mirror holds
        folder = fetch_dataset(name, source=shared, home=tmp_path, progress=False)
        assert_fetched(folder, tmp_path, name)
        copied = {n: b for n, b in snapshot(shared / name).items() if not n.startswith(".")}
        assert copied.items() <= snapshot(folder).items()  # all data files copied
    marker = json.loads((tmp_path / "data" / SMALL / MARKER_FILE).read_text())
    assert marker["source"] == str(shared / SMALL)
    assert marker["files"]["ratings.csv"] == (shared / SMALL / "ratings.csv").stat().st_size


def test_the_dataset_folder_itself(shared: Path, tmp_path: Path) -> None:
    assert_fetched(fetch(shared / SMALL, tmp_path), tmp_path)


@pytest.mark.parametrize("prefix", [SMALL, "", "some-folder"])
def test_zip_file(make_zip: MakeZip, tmp_path: Path, prefix: str) -> None:
    folder = fetch(make_zip(SMALL, prefix=prefix, crlf=True, checksums=False), tmp_path / "h")
    assert_fetched(folder, tmp_path / "h")
    assert b"\r\n" in (folder / "ratings.csv").read_bytes()
    assert load_dataset(SMALL, home=tmp_path / "h").ratings.nnz == 100_836


def test_directory_holding_zip(make_zip: MakeZip, tmp_path: Path) -> None:
    archive = make_zip(SMALL)  # with SHA256SUMS: checked
    assert_fetched(fetch(str(archive.parent), tmp_path / "h"), tmp_path / "h")


def test_source_and_home_from_environment(home: Path) -> None:
    folder = fetch_dataset(SMALL, progress=False)
    assert_fetched(folder, home)


def test_refetch_is_a_no_op(shared: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = fetch(shared, tmp_path)
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}

    def no_gathering(*args: object) -> str:
        raise AssertionError("should not fetch again")

    monkeypatch.setattr(fetch_module, "_gather", no_gathering)
    assert fetch("/does/not/exist", tmp_path) == folder
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == before
    monkeypatch.undo()
    assert fetch(shared, tmp_path, force=True) == folder  # force fetches again
    assert_fetched(folder, tmp_path)


def test_changed_copy_is_fetched_again(shared: Path, tmp_path: Path) -> None:
    folder = fetch(shared, tmp_path)
    (folder / "tags.csv").write_text("userId,movieId,tag,timestamp\n")
    assert not is_fetched(DATASETS[SMALL], folder)
    fetch(shared, tmp_path)
    assert (folder / "tags.csv").read_bytes() == (shared / SMALL / "tags.csv").read_bytes()


def test_unmarked_good_copy_is_adopted(shared: Path, tmp_path: Path) -> None:
    copy_dataset(shared / SMALL, tmp_path / "data" / SMALL)
    assert_fetched(fetch("/does/not/exist", tmp_path), tmp_path)


def test_unknown_name(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"unknown data set 'ml-5m'; known: ml-100k, ml-10m"):
        fetch_dataset("ml-5m", source=str(tmp_path), home=tmp_path)


# -- failures leave nothing behind -----------------------------------------------------------
def corrupt_source(shared: Path, tmp_path: Path, problem: str) -> Path:
    source = copy_dataset(shared / SMALL, tmp_path / "bad" / SMALL, checksums=False)
    if problem == "bad line":
        replace_line(source / "ratings.csv", 4242, "28,1,4.0,x")
    elif problem == "short":
        lines = (source / "tags.csv").read_text().splitlines()[:-1]
        (source / "tags.csv").write_text("\n".join(lines) + "\n")
    elif problem == "missing":
        (source / "links.csv").unlink()
    elif problem == "checksum":
        (source / "SHA256SUMS").write_bytes((shared / SMALL / "SHA256SUMS").read_bytes())
        (source / "README.txt").write_text("changed\n")
    return source


@pytest.mark.parametrize(
    ("problem", "message"),
    [
        ("bad line", r"ratings\.csv, line 4242: timestamp 'x' is not an integer"),
        ("short", r"tags\.csv: 3,682 rows, expected 3,683"),
        ("missing", r"ml-latest-small lacks links\.csv"),
        ("checksum", r"README\.txt: SHA-256 differs from SHA256SUMS"),
    ],
)
def test_bad_source_leaves_no_trace(
    shared: Path, tmp_path: Path, problem: str, message: str
) -> None:
    source = corrupt_source(shared, tmp_path, problem)
    home = tmp_path / "home"
    with pytest.raises(DataError, match=message) as caught:
        fetch(source, home)
    assert str(source) in str(caught.value)  # names where the bad file came from
    assert not (home / "data" / SMALL).exists()
    assert leftovers(home) == []


def test_failed_fetch_keeps_previous_copy(shared: Path, tmp_path: Path) -> None:
    folder = fetch(shared, tmp_path)
    before = snapshot(folder)
    with pytest.raises(DataError, match="line 4242"):
        fetch(corrupt_source(shared, tmp_path, "bad line"), tmp_path, force=True)
    assert snapshot(folder) == before
    assert_fetched(folder, tmp_path)


def test_forced_fetch_replaces_previous_copy(shared: Path, tmp_path: Path) -> None:
    folder = fetch(shared, tmp_path)
    (folder / "stray.txt").write_text("old")
    fetch(shared, tmp_path, force=True)
    assert not (folder / "stray.txt").exists()
    assert_fetched(folder, tmp_path)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("missing-dir", r"data source .*missing-dir does not exist"),
        ("empty-dir", r"empty-dir holds no ml-latest-small: expected ml-latest-small/"),
        ("not-a-zip.zip", r"not-a-zip\.zip: not a readable zip file"),
    ],
)
def test_unusable_sources(tmp_path: Path, source: str, message: str) -> None:
    (tmp_path / "empty-dir").mkdir()
    (tmp_path / "not-a-zip.zip").write_text("hello")
    with pytest.raises(DataError, match=message):
        fetch(tmp_path / source, tmp_path / "home")
    assert leftovers(tmp_path / "home") == []


def test_zip_without_the_dataset(make_zip: MakeZip, tmp_path: Path) -> None:
    archive = make_zip("ml-100k")
    with pytest.raises(DataError, match=r"ml-100k\.zip: no ml-latest-small inside"):
        fetch(archive, tmp_path / "home")
    assert leftovers(tmp_path / "home") == []


def test_stale_temporary_folders_are_swept(shared: Path, tmp_path: Path) -> None:
    stale = tmp_path / "data" / f".{SMALL}-killed.partial"
    fresh = tmp_path / "data" / f".{SMALL}-running.partial"
    for path in (stale, fresh):
        (path / SMALL).mkdir(parents=True)
    long_ago = time.time() - 2 * fetch_module.STALE_AFTER
    os.utime(stale, (long_ago, long_ago))
    fetch(shared, tmp_path)
    assert leftovers(tmp_path) == [fresh.name]  # another fetch may still be using it


# -- downloads over HTTP (a local server, no internet) ----------------------------------------
def publish(make_zip: MakeZip, root: Path, md5: str | None = None) -> Path:
    archive = make_zip(SMALL, crlf=True, checksums=False)
    served = root / archive.name
    served.write_bytes(archive.read_bytes())
    if md5 == "right":
        digest = hashlib.md5(served.read_bytes()).hexdigest()
        (root / f"{archive.name}.md5").write_text(f"MD5 ({archive.name}) = {digest}\n")
    elif md5 == "wrong":
        (root / f"{archive.name}.md5").write_text("0" * 32 + f"  {archive.name}\n")
    return served


def test_base_url_mirror(make_zip: MakeZip, http_server: tuple[Path, str], tmp_path: Path) -> None:
    root, url = http_server
    publish(make_zip, root)  # no .md5 beside it: fine for a mirror
    folder = fetch(url + "/", tmp_path / "home")
    assert_fetched(folder, tmp_path / "home")
    assert json.loads((folder / MARKER_FILE).read_text())["source"] == f"{url}/{SMALL}.zip"


def test_zip_url_with_progress_bar(
    make_zip: MakeZip,
    http_server: tuple[Path, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root, url = http_server
    publish(make_zip, root, md5="right")
    fetch_dataset(SMALL, source=f"{url}/{SMALL}.zip", home=tmp_path, progress=True)
    assert f"{SMALL}.zip" in capsys.readouterr().err
    assert_fetched(tmp_path / "data" / SMALL, tmp_path)


def test_mirror_md5_mismatch(
    make_zip: MakeZip, http_server: tuple[Path, str], tmp_path: Path
) -> None:
    root, url = http_server
    publish(make_zip, root, md5="wrong")
    with pytest.raises(DataError, match=r"md5 differs from the published .*\.zip\.md5"):
        fetch(url, tmp_path)
    assert leftovers(tmp_path) == []


def test_missing_zip_on_server(http_server: tuple[Path, str], tmp_path: Path) -> None:
    _, url = http_server
    with pytest.raises(DataError, match=rf"cannot download {url}/{SMALL}\.zip: HTTP 404"):
        fetch(url, tmp_path)
    assert leftovers(tmp_path) == []


def test_unreachable_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    with pytest.raises(DataError, match=r"cannot download http://127\.0\.0\.1:9/"):
        fetch("http://127.0.0.1:9", tmp_path)  # discard port: connection refused
    assert leftovers(tmp_path) == []


@pytest.fixture
def official(
    http_server: tuple[Path, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Path:
    """The 'official' site is the local server; no mirror configured."""
    root, url = http_server
    monkeypatch.setattr(fetch_module, "OFFICIAL_URL", url)
    monkeypatch.delenv("MOVIEREC_DATA_SOURCE", raising=False)
    monkeypatch.setenv("MOVIEREC_HOME", str(tmp_path / "home"))
    return root


def test_official_download_checks_md5(make_zip: MakeZip, official: Path, tmp_path: Path) -> None:
    publish(make_zip, official, md5="right")
    folder = fetch_dataset(SMALL, progress=False)
    assert_fetched(folder, tmp_path / "home")


def test_official_download_needs_md5(make_zip: MakeZip, official: Path, tmp_path: Path) -> None:
    publish(make_zip, official)
    with pytest.raises(DataError, match=r"ml-latest-small\.zip\.md5: no md5 digest published"):
        fetch_dataset(SMALL, progress=False)
    assert leftovers(tmp_path / "home") == []
    assert not (tmp_path / "home" / "data" / SMALL).exists()


def test_home_not_writable(shared: Path, tmp_path: Path) -> None:
    home = tmp_path / "a-file"
    home.write_text("not a folder")
    with pytest.raises(DataError, match=r"cannot fetch ml-latest-small into .*a-file/data"):
        fetch(shared, home)
