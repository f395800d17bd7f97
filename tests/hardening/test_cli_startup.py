"""Every start-up and CLI problem is one line ``movierec: error: ...`` and exit code 2.

Covered: a corrupt SQLite file and a closed database port at ``serve``; a read-only,
misplaced (under a regular file) or full ``MOVIEREC_HOME``; a port in use and a host
that cannot be bound or resolved; ``evaluate --out`` where nothing can be written; a
short secret key; malformed settings. Each case runs in-process through
``movierec.cli.main`` and the main ones again as a real process, whose stderr must hold
no traceback.

A full or read-only disk is a real tmpfs mounted for the test (we run as root in CI);
where mounting is not allowed those cases skip and the monkeypatched ENOSPC case still
covers the rule.
"""

from __future__ import annotations

import _thread
import contextlib
import errno
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from movierec.cli import main

SMALL = "ml-latest-small"
REPO = Path(__file__).resolve().parents[2]
LONG_ENOUGH_KEY = "k" * 32
SERVE_WATCHDOG = 180  # seconds: a serve that should have failed is interrupted after this


# -- helpers -----------------------------------------------------------------------------------
def one_line_error(argv: list[str], capsys: pytest.CaptureFixture[str], *named: str) -> str:
    """Run the CLI in-process; it must exit 2 with one error line naming each of ``named``."""
    capsys.readouterr()
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("movierec: error: "), err
    for text in named:
        assert text in lines[0], err
    return lines[0]


def run_cli(*args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -m movierec.cli ARGS`` as a separate process with ``env``."""
    return subprocess.run(
        [sys.executable, "-m", "movierec.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=REPO,
    )


def assert_one_line_process(result: subprocess.CompletedProcess, *named: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("movierec: error:")]
    assert len(lines) == 1, result.stderr
    for text in named:
        assert text in lines[0], result.stderr


@pytest.fixture
def watchdog() -> Iterator[None]:
    """Interrupt the test (KeyboardInterrupt -> exit 130, a failure) if ``serve`` starts
    serving instead of failing."""
    timer = threading.Timer(SERVE_WATCHDOG, _thread.interrupt_main)
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


@pytest.fixture
def serve_env(web_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home with data and a quick ``popular`` model, a long enough secret key, and a
    fresh SQLite URL; returns the home."""
    monkeypatch.setenv("MOVIEREC_HOME", str(web_home))
    monkeypatch.setenv("MOVIEREC_DATASET", SMALL)
    monkeypatch.setenv("MOVIEREC_MODEL", "popular")
    monkeypatch.setenv("SECRET_KEY", LONG_ENOUGH_KEY)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'movierec.db'}")
    for key in ("TMDB_API_KEY", "TMDB_READ_TOKEN", "MOVIEREC_SECRET_KEY", "REDIS_URL"):
        monkeypatch.delenv(key, raising=False)
    return web_home


def serve_args(port: int = 0, host: str = "127.0.0.1") -> list[str]:
    return ["serve", "--host", host, "--port", str(port or free_port()), "--workers", "1"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def tmpfs(path: Path, size: str, read_only: bool = False) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``path`` (skips the test where mounting is refused)."""
    path.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (",ro" if read_only else "")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(folder: Path) -> None:
    """Write into ``folder`` until its file system is full."""
    block = bytes(64 * 1024)
    with open(folder / "filler", "wb") as out:
        try:
            while True:
                out.write(block)
                out.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC


# -- the database ------------------------------------------------------------------------------
def test_corrupt_sqlite_file(
    serve_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, watchdog
) -> None:
    bad = tmp_path / "corrupt.db"
    bad.write_bytes(os.urandom(64 * 1024))
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{bad}")
    one_line_error(serve_args(), capsys, str(bad))
    assert bad.stat().st_size == 64 * 1024  # left as it was


def test_corrupt_sqlite_file_as_a_process(serve_env: Path, tmp_path: Path) -> None:
    bad = tmp_path / "corrupt.db"
    bad.write_bytes(os.urandom(64 * 1024))
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{bad}"}
    assert_one_line_process(run_cli(*serve_args(), env=env), str(bad))


def test_database_at_a_closed_port(
    serve_env: Path, monkeypatch: pytest.MonkeyPatch, capsys, watchdog
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres:hunter2@127.0.0.1:1/x")
    line = one_line_error(serve_args(), capsys, "127.0.0.1:1")
    assert "hunter2" not in line  # the password is never shown


def test_unparsable_database_url(serve_env: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv("DATABASE_URL", "not a database url")
    one_line_error(["store", "prune", "--dry-run"], capsys, "database")


# -- MOVIEREC_HOME that cannot be used -----------------------------------------------------------
@pytest.mark.parametrize("command", ["fetch", "serve"])
def test_home_under_a_regular_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, watchdog, command: str
) -> None:
    # as root, chmod does not stop writes; a home below a regular file cannot be made
    # by anyone (NotADirectoryError)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    home = blocker / "home"
    monkeypatch.setenv("MOVIEREC_HOME", str(home))
    monkeypatch.setenv("MOVIEREC_MODEL", "popular")
    monkeypatch.setenv("SECRET_KEY", LONG_ENOUGH_KEY)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    argv = ["data", "fetch", SMALL] if command == "fetch" else serve_args()
    one_line_error(argv, capsys, str(blocker))


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a 0555 folder regardless")
def test_home_without_write_permission(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o555)
    monkeypatch.setenv("MOVIEREC_HOME", str(home))
    try:
        one_line_error(["data", "fetch", SMALL], capsys, str(home))
    finally:
        home.chmod(0o755)


def test_read_only_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    with tmpfs(tmp_path / "ro", "1m", read_only=True) as home:
        monkeypatch.setenv("MOVIEREC_HOME", str(home))
        line = one_line_error(["data", "fetch", SMALL], capsys, str(home))
        assert "Read-only file system" in line


def test_full_disk_while_fetching(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    with tmpfs(tmp_path / "full", "1m") as home:  # ml-latest-small needs 3.2 MB
        monkeypatch.setenv("MOVIEREC_HOME", str(home))
        line = one_line_error(["data", "fetch", SMALL], capsys, str(home))
        assert "No space left on device" in line
        assert [p.name for p in (home / "data").iterdir()] == []  # nothing half-written


def test_full_disk_while_training(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    with tmpfs(tmp_path / "full", "8m") as home:
        monkeypatch.setenv("MOVIEREC_HOME", str(home))
        assert main(["data", "fetch", SMALL]) == 0
        fill(home)
        line = one_line_error(["train", "--model", "popular"], capsys, str(home))
        assert "No space left on device" in line
        models = home / "models"
        assert not models.exists() or [p for p in models.iterdir() if p.stat().st_size] == []


def test_any_os_error_names_its_path(home: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    import movierec.training

    target = home / "models" / "ml-latest-small-popular.npz"

    def disk_full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(target))

    monkeypatch.setattr(movierec.training, "train_model", disk_full)
    line = one_line_error(["train", "--model", "popular"], capsys, str(target))
    assert line.endswith(": No space left on device")


# -- where to listen -------------------------------------------------------------------------------
def test_port_in_use(serve_env: Path, capsys, watchdog) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        one_line_error(serve_args(port=port), capsys, str(port))


def test_port_in_use_as_a_process(serve_env: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert_one_line_process(run_cli(*serve_args(port=port), env=dict(os.environ)), str(port))


def test_address_not_on_this_machine(serve_env: Path, capsys, watchdog) -> None:
    # 192.0.2.1 (TEST-NET-1) is no interface here: binding fails at once, no traffic sent
    one_line_error(serve_args(host="192.0.2.1"), capsys, "192.0.2.1")


def test_host_that_does_not_resolve(
    serve_env: Path, monkeypatch: pytest.MonkeyPatch, capsys, watchdog
) -> None:
    # resolution is faked so that no DNS query leaves the machine
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host: object, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        if host == "no-such-host.invalid":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real_getaddrinfo(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    one_line_error(serve_args(host="no-such-host.invalid"), capsys, "no-such-host.invalid")


# -- evaluate --out ------------------------------------------------------------------------------
def test_evaluate_out_unwritable_is_refused_before_the_run(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    import movierec.evaluate.run

    def no_loading(*args: object, **kwargs: object) -> None:
        raise AssertionError("the data set was loaded before --out was checked")

    monkeypatch.setattr(movierec.evaluate.run, "load_dataset", no_loading)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    out = blocker / "report"
    argv = ["evaluate", "--dataset", "ml-100k", "--models", "popular", "--out", str(out)]
    line = one_line_error(argv, capsys, str(out))
    assert "Not a directory" in line


# -- settings and secrets ------------------------------------------------------------------------
def test_short_secret_key(
    serve_env: Path, monkeypatch: pytest.MonkeyPatch, capsys, watchdog
) -> None:
    monkeypatch.setenv("SECRET_KEY", "short")
    one_line_error(serve_args(), capsys, "SECRET_KEY", "16")


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("MOVIEREC_MAX_BODY", "abc"),
        ("MOVIEREC_RETENTION_DAYS", "-1"),
        ("MOVIEREC_HTTPS", "maybe"),
        ("MOVIEREC_WORKERS", "x" * 5000),
        ("MOVIEREC_CONNECTIONS_PER_ADDRESS", "-1"),
        ("MOVIEREC_REQUEST_READ_TIMEOUT", "0"),
    ],
)
def test_malformed_setting(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    line = one_line_error(["data", "list"], capsys, variable)
    assert len(line) < 300  # quotes at most 100 characters of the value


def test_help_works_with_a_malformed_setting(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setenv("MOVIEREC_MAX_BODY", "abc")
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    assert "usage: movierec" in capsys.readouterr().out


def test_malformed_setting_as_a_process(home: Path) -> None:
    env = {**os.environ, "MOVIEREC_MAX_BODY": "abc"}
    assert_one_line_process(run_cli("serve", env=env, timeout=60), "MOVIEREC_MAX_BODY")
    helped = run_cli("serve", "--help", env=env, timeout=60)
    assert helped.returncode == 0 and "--no-train" in helped.stdout, helped.stderr


def test_settings_are_read_once(home: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    import movierec.cli
    import movierec.config

    calls = []
    real = movierec.config.load_settings

    def counting(*args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        calls.append(args)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(movierec.cli, "load_settings", counting)
    monkeypatch.setattr(movierec.config, "load_settings", counting)
    assert main(["data", "list"]) == 0
    assert len(calls) == 1


# -- serve --no-train ----------------------------------------------------------------------------
def test_no_train_without_a_saved_model(
    serve_env: Path, monkeypatch: pytest.MonkeyPatch, capsys, watchdog
) -> None:
    monkeypatch.setenv("MOVIEREC_MODEL", "itemknn")  # the home holds no itemknn file
    missing = serve_env / "models" / f"{SMALL}-itemknn.npz"
    assert not missing.exists()
    one_line_error([*serve_args(), "--no-train"], capsys, str(missing))
    assert not missing.exists()
