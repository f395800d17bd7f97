"""ComputeTurns (movierec.web.turns): one request computes at a time in a process, and
gives its turn up while it waits for the network."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy.exc import OperationalError

from movierec.web.turns import ComputeTurns


def test_requests_compute_one_at_a_time():
    turns = ComputeTurns()
    inside, most = 0, 0
    lock = threading.Lock()

    def app(environ, start_response):
        nonlocal inside, most
        with lock:
            inside += 1
            most = max(most, inside)
        time.sleep(0.01)
        with lock:
            inside -= 1
        return [b"ok"]

    gated = turns.wrap(app)
    threads = [threading.Thread(target=gated, args=({}, None)) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most == 1


def test_a_wait_gives_the_turn_to_another_request():
    turns = ComputeTurns()
    waiting, other_ran = threading.Event(), threading.Event()

    def waits(environ, start_response):
        with turns.released():  # e.g. for TMDB's answer
            waiting.set()
            assert other_ran.wait(5), "the other request never got the turn"
        assert turns.held  # taken back after the wait
        return [b"waited"]

    def computes(environ, start_response):
        other_ran.set()
        return [b"computed"]

    first = threading.Thread(target=turns.wrap(waits), args=({}, None))
    first.start()
    assert waiting.wait(5)
    assert turns.wrap(computes)({}, None) == [b"computed"]
    first.join(5)
    assert not first.is_alive() and not turns.held


def test_a_failing_request_gives_its_turn_back():
    turns = ComputeTurns()

    def fails(environ, start_response):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        turns.wrap(fails)({}, None)
    with turns.turn():  # free again: this would wait forever otherwise
        assert turns.held
    with turns.released():  # outside a turn: nothing to give up
        assert not turns.held


def test_statements_of_a_networked_database_run_outside_the_turn(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'x.db'}")  # stands in for PostgreSQL
    turns = ComputeTurns()
    turns.release_during_queries(engine)
    seen = []

    @event.listens_for(engine, "before_cursor_execute", retval=False)
    def _during(*_args):
        seen.append(turns.held)

    with turns.turn(), engine.connect() as conn:
        assert conn.execute(text("SELECT 1")).scalar() == 1
        assert turns.held  # taken back after the statement
        with pytest.raises(OperationalError):  # a failed statement gives the turn back too
            conn.execute(text("SELECT * FROM no_such_table"))
        assert turns.held
    assert seen and not any(seen)
    assert not turns.held


def test_a_request_hanging_with_the_turn_delays_the_others_by_turn_wait_only(monkeypatch):
    monkeypatch.setattr("movierec.web.turns.TURN_WAIT", 0.2)
    turns = ComputeTurns()
    hanging, release = threading.Event(), threading.Event()

    def hangs(environ, start_response):
        hanging.set()
        release.wait(10)  # a stuck dependency, the turn not given up
        return [b"late"]

    first = threading.Thread(target=turns.wrap(hangs), args=({}, None))
    first.start()
    assert hanging.wait(5)
    started = time.monotonic()
    assert turns.wrap(lambda e, s: [b"answered"])({}, None) == [b"answered"]
    waited = time.monotonic() - started
    assert 0.15 <= waited < 2.0
    started = time.monotonic()  # the holder is now known to hang: nobody waits again
    assert turns.wrap(lambda e, s: [b"at once"])({}, None) == [b"at once"]
    assert time.monotonic() - started < 0.1
    release.set()
    first.join(5)
    with turns.turn():  # the lock is free again: nothing was released twice
        assert turns.held
