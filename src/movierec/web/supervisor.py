"""The pre-fork supervisor of ``movierec serve`` and what each worker does to be watched.

What it does: ``workers`` children are forked from the prepared app (see
:mod:`movierec.web.serve`); a child that dies is restarted with back-off; SIGTERM or
SIGINT stops the listening socket at once, then drains and stops them all; SIGHUP
replaces them one by one (the socket listening all along); a worker that hangs is
killed and replaced; a worker whose supervisor dies (even by ``kill -9``) stops itself.

**Hung**, here, means one of two things, both seen from the supervisor through a page of
shared memory (two numbers a worker, no pipe to read or block on):

- *the worker stopped serving*: waitress's I/O loop (the thread that accepts connections
  and reads requests) wakes at least once a second and writes a timestamp on each turn.
  No timestamp for ``MOVIEREC_WORKER_TIMEOUT`` seconds (default 60) means the process
  is stopped, deadlocked or stuck holding the GIL: nothing it holds will be answered.
- *a request never ends*: every request the app runs is noted with its start time, and
  the loop publishes the oldest one. A heartbeat thread alone would miss this case: when
  every worker thread is stuck in a request, the I/O loop and any other thread are alive
  and happy, while requests queue for ever. A request older than the timeout means a
  thread that will not come back (Python cannot kill a thread), so the process goes.

Either way the supervisor sends SIGKILL (a stuck process may not act on SIGTERM), logs
one line saying which and why, and the usual restart replaces it. The timeout is long
next to any legitimate request (a 5 MB ratings import takes seconds), so a kill means a
bug or a stuck dependency; the other requests that worker held are lost with it.

**SIGHUP** replaces the workers one at a time: a new worker is forked, and once its loop
is serving, an old one is told to stop (SIGTERM). A stopping worker no longer accepts
connections (the others take them from the shared listening socket), answers what it has
already accepted (each answer with ``Connection: close``), closes keep-alive
connections idle for a second, and exits; it is SIGKILLed if still
there after ``STOP_GRACE`` seconds. Before the first is replaced, ``on_reload`` runs in
the supervisor (``serve`` swaps in newer model files there), so the new workers fork
with the newest good models.

**SIGTERM** (or SIGINT) to the supervisor stops every worker, and with them the
listening socket: the supervisor marks the board "every worker stops" before it signals
them, and the first worker to act on it (on the next turn of its loop) stops the socket
for all, since it is one socket shared since the fork. It holds new handshakes (a socket
filter drops SYNs, so a client sends its SYN again a second later), accepts the
connections the kernel has already completed (queued, and maybe with a request sent),
waits 10 ms for handshakes begun before the hold, accepts again, and shuts the socket
down. From then on a connect is refused (a proxy retries it on another host), and every
connection the kernel had accepted is in a worker, answered as in a SIGHUP drain; the
workers exit once they have answered, SIGKILLed after ``STOP_GRACE`` at worst. Before,
each worker just stopped accepting while the socket stayed open in every process:
connections queued in it were reset when it closed, after their requests were sent
(16 of about 2,000 requests in a measured stop; none now, tests/hardening/
test_supervisor.py). Without the hold a connection completed between the last accept
and the shutdown is reset too (4 in 80 stops under a connect storm; 0 with it). A
worker whose supervisor is gone stops the socket the same way. A single-process
``serve`` does too (:meth:`WorkerWatch.alone`).

**Supervisor death**: each worker asks Linux for SIGTERM when its parent dies
(``prctl(PR_SET_PDEATHSIG)``, set right after fork), then checks that its parent is still
the process that forked it (the parent may have died before the ``prctl``), and a daemon
thread checks that again every second (other systems, and any gap). A worker whose
supervisor is gone drains and exits as on SIGTERM, within ``STOP_GRACE`` at most.

Why not gunicorn: gunicorn's arbiter does all this (``--timeout``, HUP, ``--max-requests``),
but only for its own workers. Its threaded worker hands each readable socket to a thread,
which then blocks on a trickled request (the attack ``serve`` is built to withstand: see
"Why waitress" in :mod:`movierec.web.serve`), and a gunicorn worker class wrapping
waitress's loop would be more code than this, against an internal interface, with its
own configuration next to ours. supervisord and systemd restart a whole service, not
workers that share one socket and one loaded model. So the supervisor stays: fork, watch,
restart, drain, about 550 lines with their explanations, tested against real processes in
tests/hardening/test_supervisor.py.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import signal
import socket
import struct
import sys
import threading
import time
import traceback
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

STOP_GRACE = 10.0  # seconds a stopping worker gets to answer what it has accepted
RESTART_BACKOFF = (0.5, 30.0)  # seconds: first and longest wait before a restart
STABLE_AFTER = 30.0  # seconds a worker must live for the back-off to start over
DRAIN_QUIET = 1.0  # seconds an idle connection waits for a next request while draining
BEAT_EVERY = 0.25  # seconds between a worker's writes to its slot
PARENT_CHECK = 1.0  # seconds between a worker's checks that its supervisor lives
_SLOT = struct.Struct("dd")  # loop beat, oldest running request's start (monotonic s; 0: none)
_HEAD = 8  # bytes before the first slot: byte 0 is the "every worker stops" flag
HANDSHAKES_SETTLE = 0.01  # s: handshakes begun before the listening socket was held complete
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
_SO_ATTACH_FILTER = 26  # from <asm-generic/socket.h>
# classic BPF run on every packet reaching the listening socket (from its TCP header):
# drop a SYN without ACK (a new handshake), keep everything else
_HOLD_SYNS = [
    (0x30, 0, 0, 13),  # ldb [13]: the TCP flags
    (0x54, 0, 0, 0x12),  # and #(SYN|ACK)
    (0x15, 0, 1, 0x02),  # jeq #SYN: next, else skip one
    (0x06, 0, 0, 0),  # ret #0: drop
    (0x06, 0, 0, 0xFFFFFFFF),  # ret #-1: keep whole
]

#: a WSGI application: ``(environ, start_response) -> iterable of bytes``
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Any]


class Board:
    """Shared memory: one flag, then one slot per worker: ``(loop beat, oldest request
    start)``, in ``time.monotonic()`` seconds (one clock for every process on Linux), 0
    for never/none. The flag says that every worker is stopping (SIGTERM to the
    supervisor), not one being replaced (SIGHUP).

    Mapped before forking, so every worker writes into the page the supervisor reads.
    """

    def __init__(self, slots: int) -> None:
        self.memory = mmap.mmap(-1, _HEAD + slots * _SLOT.size)  # anonymous and shared
        self.free = list(range(slots))

    def take(self) -> int | None:
        """A cleared slot, or None while all are in use (by workers still stopping)."""
        if not self.free:
            return None
        slot = self.free.pop(0)
        self.write(slot, 0.0, 0.0)
        return slot

    def give_back(self, slot: int) -> None:
        self.free.append(slot)

    def write(self, slot: int, beat: float, oldest: float) -> None:
        _SLOT.pack_into(self.memory, _HEAD + slot * _SLOT.size, beat, oldest)

    def read(self, slot: int) -> tuple[float, float]:
        beat, oldest = _SLOT.unpack_from(self.memory, _HEAD + slot * _SLOT.size)
        return beat, oldest

    def stop_all(self) -> None:
        """Say, before the workers are signalled, that every one of them is stopping."""
        self.memory[0] = 1

    @property
    def stopping_all(self) -> bool:
        return self.memory[0] == 1


class WorkerWatch:
    """A worker's side: publishes its loop's beat and oldest request, drains on SIGTERM,
    and stops itself when its supervisor is gone.

    ``track(wsgi_app)`` wraps the app; ``serving(server)`` is given waitress's server
    before it runs (its ``readable()`` is called on every turn of the I/O loop, at least
    once a second, so that is where the beat is written and the drain is checked).
    """

    def __init__(self, board: Board, slot: int, parent: int) -> None:
        self.board, self.slot, self.parent = board, slot, parent
        self.server: Any = None
        self.draining_until: float | None = None  # monotonic deadline once SIGTERMed
        self.running: dict[int, float] = {}  # request key -> start (monotonic s)
        self.lock = threading.Lock()
        self.last_beat = 0.0
        self.listening = True  # False once this process has stopped the shared socket
        self.solo = False  # True without a supervisor: its SIGTERM stops everything

    @classmethod
    def alone(cls) -> WorkerWatch:
        """The watch of a server with no supervisor (``serve`` in one process), for its
        SIGTERM to stop it as every worker stops: listening socket shut, queue answered."""
        watch = cls(Board(1), 0, os.getppid())
        watch.solo = True
        return watch

    # -- supervisor death -------------------------------------------------------------
    def die_with_parent(self) -> None:
        """SIGTERM from the kernel when the supervisor dies; exit now if it already has."""
        with suppress(OSError, AttributeError):  # not Linux: the thread below still checks
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != self.parent:
            raise SystemExit(0)
        threading.Thread(target=self._check_parent, name="parent-check", daemon=True).start()

    def _check_parent(self) -> None:
        while os.getppid() == self.parent:
            time.sleep(PARENT_CHECK)
        os.kill(os.getpid(), signal.SIGTERM)

    # -- stopping ---------------------------------------------------------------------
    def on_sigterm(self, _signum: int, _frame: Any) -> None:
        """Before serving: exit. While serving: drain (see :meth:`_drain`). Only sets a
        deadline: waitress's locks may be held by the code this handler interrupted."""
        if self.server is None:
            raise SystemExit(0)
        if self.draining_until is None:
            self.draining_until = time.monotonic() + STOP_GRACE

    def _everyone_stops(self) -> bool:
        """Whether every worker is stopping (the supervisor was told to stop, or is gone),
        rather than this one being replaced while the others go on."""
        return self.solo or self.board.stopping_all or os.getppid() != self.parent

    def _stop_listening(self) -> None:
        """Stop the listening socket for every process at once (it is one socket, shared
        since the fork): new handshakes are held (their SYN dropped, so the client sends it
        again a second later), the connections the kernel has already completed are
        accepted here to be answered, and the socket is shut down, so that from then on
        a connect is refused (a proxy retries it on another host). Run by each worker on
        its first turn once every worker stops; the first does it, the others find the
        socket shut (accept fails) and do nothing more."""
        self.listening = False
        listener = self.server.socket
        hold_new_connections(listener)
        _accept_queued(self.server)
        time.sleep(HANDSHAKES_SETTLE)  # a handshake begun before the hold completes
        _accept_queued(self.server)
        with suppress(OSError):  # ENOTCONN: another worker shut it down already
            listener.shutdown(socket.SHUT_RDWR)

    def _drain(self, now: float) -> None:
        """Close idle connections; exit (SystemExit ends waitress's loop) once none is
        left or the grace is over. Connections with a request being read, run or sent
        are left to finish."""
        if self.draining_until is not None and now >= self.draining_until:
            raise SystemExit(0)
        quiet_since = time.time() - DRAIN_QUIET
        for channel in list(self.server.active_channels.values()):
            busy = channel.requests or channel.request is not None or channel.total_outbufs_len
            if not busy and channel.last_activity < quiet_since:
                channel.will_close = True  # closed on the loop's next turn
        if not self.server.active_channels:
            raise SystemExit(0)

    # -- being watched ----------------------------------------------------------------
    def track(self, wsgi_app: WsgiApp) -> WsgiApp:
        """``wsgi_app`` with each call's start time kept while it runs."""
        running, lock = self.running, self.lock

        def tracked(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
            key = id(environ)
            with lock:
                running[key] = time.monotonic()
            try:
                return wsgi_app(environ, start_response)
            finally:
                with lock:
                    running.pop(key, None)

        return tracked

    def serving(self, server: Any) -> None:
        """Hook into waitress's loop: beat on every turn, refuse new connections and
        drain once told to stop; while draining, every response says
        ``Connection: close``, so a keep-alive client moves to another worker without
        racing a close."""
        self.server = server
        plain = server.readable
        watch = self

        class DrainingTask(server.channel_class.task_class):  # type: ignore[misc]  # waitress has no type information
            def build_response_header(self) -> Any:
                if watch.draining_until is not None:
                    self.set_close_on_finish()
                return super().build_response_header()

        class DrainingChannel(server.channel_class):  # type: ignore[misc]  # waitress has no type information
            task_class = DrainingTask

        server.channel_class = DrainingChannel

        def readable() -> bool:
            now = time.monotonic()
            if now - self.last_beat >= BEAT_EVERY:
                self.last_beat = now
                with self.lock:
                    oldest = min(self.running.values(), default=0.0)
                self.board.write(self.slot, now, oldest)
            accepting = bool(plain())  # waitress's own housekeeping runs here
            if self.draining_until is None and self.board.stopping_all:
                self.draining_until = now + STOP_GRACE  # the stop's SIGTERM is on its way
            if self.draining_until is not None:
                if self.listening and self._everyone_stops():
                    self._stop_listening()
                self._drain(now)
                return False  # the listening socket is left to the other workers, if any
            return accepting

        def handle_close() -> None:
            """The listening socket "closed": a sibling worker shut it down at a stop.
            waitress's default would drop the server from its loop, and this hook with it,
            so the worker would never drain its keep-alive connections nor exit."""

        server.readable = readable
        server.handle_close = handle_close


@dataclass
class _Child:
    slot: int
    started: float  # monotonic s
    stop_by: float | None = None  # set when told to stop: SIGKILL after this
    killed: bool = False


class Supervisor:
    """Pre-fork process supervisor: ``workers`` children each run ``child(watch)``.

    A child that dies unexpectedly is restarted after a wait that doubles from 0.5 s up
    to 30 s while children keep dying young. ``timeout``: seconds a worker may go without
    a loop beat, or have a request running, before it is SIGKILLed (and so restarted).
    """

    def __init__(
        self,
        child: Callable[[WorkerWatch], None],
        workers: int,
        timeout: float,
        on_reload: Callable[[], object] | None = None,
        every_turn: Callable[[float], None] | None = None,
    ) -> None:
        self.child = child
        self.workers = workers
        self.timeout = timeout
        #: run in this process on SIGHUP before any worker is replaced
        self.on_reload = on_reload
        #: run on every turn of the loop (about 10 a second) with the monotonic time, while
        #: not stopping: the retraining schedule. It must not block, and its own children
        #: are its to reap (the loop reaps only workers).
        self.every_turn = every_turn
        # room for the workers, those a SIGHUP replaced that are still stopping, and more
        self.board = Board(4 * workers + 4)
        self.children: dict[int, _Child] = {}
        self.stopping = False
        self.reload_asked = False
        self.to_replace: list[int] = []  # old workers a SIGHUP still has to replace
        self.replacement: int | None = None  # the new worker not yet serving
        self.backoff = RESTART_BACKOFF[0]
        self.restart_at: list[float] = []  # monotonic times when a worker is due

    def run(self) -> None:
        """Fork the workers and watch them until SIGTERM or SIGINT; then stop them."""
        previous = {s: signal.getsignal(s) for s in _SIGNALS}
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        signal.signal(signal.SIGHUP, self._on_hup)
        try:
            for _ in range(self.workers):
                self._spawn()
            while self.children or (self.restart_at and not self.stopping):
                self._reap()
                now = time.monotonic()
                due = [t for t in self.restart_at if t <= now]
                if due and not self.stopping:
                    self.restart_at = [t for t in self.restart_at if t > now]
                    for _ in due:
                        if self._spawn() is None:  # no slot yet: try again shortly
                            self.restart_at.append(now + 0.5)
                if not self.stopping:
                    self._reload()
                    self._watch(now)
                    if self.every_turn is not None:
                        try:
                            self.every_turn(now)
                        except Exception as exc:  # the workers go on being watched
                            print(f"movierec: {exc}", file=sys.stderr, flush=True)
                time.sleep(0.1)
        finally:
            self._stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _spawn(self) -> int | None:
        """Fork a worker; its pid, or None when no slot is free."""
        slot = self.board.take()
        if slot is None:
            return None
        parent = os.getpid()
        # no supervisor handler may run in the child between fork and its own handlers
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
        pid = os.fork()
        if pid == 0:  # the child never returns into the parent's code
            code = 0
            try:
                watch = WorkerWatch(self.board, slot, parent)
                signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent says when to stop
                signal.signal(signal.SIGHUP, signal.SIG_IGN)
                signal.signal(signal.SIGTERM, watch.on_sigterm)
                signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
                watch.die_with_parent()
                self.child(watch)
            except SystemExit:
                pass
            except BaseException:
                traceback.print_exc()
                code = 1
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        self.children[pid] = _Child(slot, time.monotonic())
        return pid

    def _reap(self) -> None:
        """Collect the workers that exited; each is waited for by pid, so other children
        of this process (a training run by ``every_turn``) stay their owners' to reap."""
        for pid in list(self.children):
            try:
                done, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done, status = pid, 0  # already reaped: gone all the same
            if done == 0:
                continue
            child = self.children.pop(pid)
            _forget_metrics(pid)
            self.board.give_back(child.slot)
            if self.stopping or child.stop_by is not None:
                continue  # told to stop: not replaced
            lived = time.monotonic() - child.started
            if pid == self.replacement:
                self.replacement, self.to_replace = None, []
                print(
                    f"movierec: new worker {pid} {_describe(status)} after {lived:.0f} s; "
                    "reload abandoned, the old workers keep serving",
                    file=sys.stderr,
                    flush=True,
                )
                continue
            if lived >= STABLE_AFTER:
                self.backoff = RESTART_BACKOFF[0]
            print(
                f"movierec: worker {pid} {_describe(status)} after {lived:.0f} s; "
                f"restarting it in {self.backoff:.1f} s",
                file=sys.stderr,
                flush=True,
            )
            self.restart_at.append(time.monotonic() + self.backoff)
            self.backoff = min(self.backoff * 2, RESTART_BACKOFF[1])

    def _watch(self, now: float) -> None:
        """SIGKILL a hung worker (see the module docstring), or one told to stop that is
        still there after ``STOP_GRACE``."""
        for pid, child in self.children.items():
            if child.killed:
                continue
            if child.stop_by is not None:
                if now > child.stop_by:
                    self._kill(pid, child, f"did not stop within {STOP_GRACE:.0f} s")
                continue
            beat, oldest = self.board.read(child.slot)
            silent = now - max(beat, child.started)
            if silent > self.timeout:
                self._kill(pid, child, f"has not served for {silent:.0f} s")
            elif oldest and now - oldest > self.timeout:
                self._kill(pid, child, f"has had a request running for {now - oldest:.0f} s")

    def _kill(self, pid: int, child: _Child, why: str) -> None:
        print(
            f"movierec: worker {pid} {why} (MOVIEREC_WORKER_TIMEOUT={self.timeout:g}); killing it",
            file=sys.stderr,
            flush=True,
        )
        child.killed = True
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)

    def _on_hup(self, _signum: int, _frame: Any) -> None:
        self.reload_asked = True  # acted on by the loop, not in the handler

    def _reload(self) -> None:
        """One step of a rolling restart: fork a replacement, and once it serves, tell
        one old worker to stop."""
        if self.reload_asked:
            self.reload_asked = False
            if self.on_reload is not None:
                try:
                    self.on_reload()
                except Exception as exc:  # the rolling restart goes on regardless
                    print(f"movierec: SIGHUP: {exc}", file=sys.stderr, flush=True)
            self.to_replace = [
                pid
                for pid, child in self.children.items()
                if child.stop_by is None and pid != self.replacement
            ]
            print(
                f"movierec: SIGHUP: replacing {len(self.to_replace)} worker(s) one by one",
                file=sys.stderr,
                flush=True,
            )
        self.to_replace = [p for p in self.to_replace if p in self.children]
        if self.replacement is None:
            if self.to_replace:
                self.replacement = self._spawn()  # None: no slot yet, next turn
            return
        beat, _ = self.board.read(self.children[self.replacement].slot)
        if not beat:
            return  # not serving yet (one that never serves is killed by the watch)
        self.replacement = None
        old = self.to_replace.pop(0)
        self.children[old].stop_by = time.monotonic() + STOP_GRACE
        with suppress(ProcessLookupError):
            os.kill(old, signal.SIGTERM)
        if not self.to_replace:
            print("movierec: SIGHUP: every worker replaced", file=sys.stderr, flush=True)

    def _on_stop(self, signum: int, _frame: Any) -> None:
        if not self.stopping:
            self.stopping = True
            self.board.stop_all()  # so each worker stops the listening socket, too
            self._signal_all(signal.SIGTERM)

    def _signal_all(self, signum: int) -> None:
        for pid in list(self.children):
            with suppress(ProcessLookupError):
                os.kill(pid, signum)

    def _stop_all(self) -> None:
        """SIGTERM every child, wait up to ``STOP_GRACE`` s, then SIGKILL the rest."""
        self.stopping = True
        self.board.stop_all()
        self._signal_all(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        while self.children and time.monotonic() < deadline:
            self._reap()
            time.sleep(0.05)
        self._signal_all(signal.SIGKILL)
        for pid in list(self.children):
            with suppress(ChildProcessError):
                os.waitpid(pid, 0)
        self.children.clear()


def hold_new_connections(listener: socket.socket) -> bool:
    """Make ``listener`` ignore new handshakes (Linux: a socket filter dropping SYNs),
    while those already begun complete; False where that cannot be done."""
    if not sys.platform.startswith("linux"):
        return False
    program = b"".join(struct.pack("HBBI", *step) for step in _HOLD_SYNS)
    code = ctypes.create_string_buffer(program, len(program))
    fprog = struct.pack("HxxxxxxP", len(_HOLD_SYNS), ctypes.addressof(code))  # sock_fprog
    try:
        listener.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_FILTER, fprog)
    except OSError:
        return False
    return True


def _accept_queued(server: Any) -> None:
    """Accept into waitress's ``server`` every connection the kernel has queued on its
    listening socket (as its ``handle_accept`` does for one), until none is left or the
    socket is no longer listening."""
    while True:
        try:
            conn, addr = server.socket.accept()
        except ConnectionAbortedError:
            continue
        except OSError:  # none queued (EAGAIN), or shut down by another worker (EINVAL)
            return
        try:
            server.set_socket_options(conn)
        except OSError:  # the client has gone already
            conn.close()
            continue
        server.channel_class(server, conn, server.fix_addr(addr), server.adj, map=server._map)


def _forget_metrics(pid: int) -> None:
    """A dead worker's live gauges leave ``/metrics`` (only when metrics were imported)."""
    module = sys.modules.get("movierec.web.metrics")
    if module is not None:
        module.worker_exited(pid)


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"was killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exited with code {os.WEXITSTATUS(status)}"
