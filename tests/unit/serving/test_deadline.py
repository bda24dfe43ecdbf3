"""The model thread: calls run one at a time on a daemon thread, and callers stop waiting."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator

import pytest

from service.serving.deadline import DeadlineExceeded, ModelThread


@pytest.fixture
def gate() -> Iterator[threading.Event]:
    """Holds a call on the model thread until the test (or its teardown) opens it."""
    event = threading.Event()
    yield event
    event.set()


def test_no_deadline_runs_on_the_callers_thread_and_starts_none() -> None:
    before = set(threading.enumerate())
    runner = ModelThread(timeout=0)
    assert runner.call(threading.current_thread) is threading.current_thread()
    assert set(threading.enumerate()) - before == set()


def test_the_thread_starts_on_first_use_as_a_daemon() -> None:
    before = set(threading.enumerate())
    runner = ModelThread(timeout=5)
    assert set(threading.enumerate()) - before == set(), "the master must hold no model thread"
    worker = runner.call(threading.current_thread)
    assert worker is not threading.current_thread()
    assert (worker.name, worker.daemon) == ("model", True)
    assert runner.call(threading.current_thread) is worker, "one thread serves every call"


def test_results_and_exceptions_come_back_to_the_caller() -> None:
    runner = ModelThread(timeout=5)
    assert runner.call(lambda: 6 * 7) == 42
    error = KeyError("boom")

    def fail() -> None:
        raise error

    with pytest.raises(KeyError) as caught:
        runner.call(fail)
    assert caught.value is error
    assert runner.call(lambda: "still serving") == "still serving"


def test_calls_from_many_threads_share_the_one_model_thread() -> None:
    """The pipeline is not thread-safe: every caller's work runs on the same single thread."""
    runner = ModelThread(timeout=5)
    ran_on: list[threading.Thread] = []
    callers = [
        threading.Thread(
            target=runner.call, args=(lambda: ran_on.append(threading.current_thread()),)
        )
        for _ in range(8)
    ]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join(timeout=10)
    assert len(ran_on) == 8
    assert len(set(ran_on)) == 1
    assert ran_on[0] not in callers


def test_an_overdue_call_raises_while_it_keeps_running(gate: threading.Event) -> None:
    runner = ModelThread(timeout=0.05)
    finished = threading.Event()

    def stuck() -> None:
        gate.wait(10)
        finished.set()

    with pytest.raises(DeadlineExceeded, match=r"did not answer within 0\.05 s"):
        runner.call(stuck)
    assert not finished.is_set(), "Python cannot interrupt the call: it is still running"
    gate.set()
    assert finished.wait(5)
    runner.timeout = 5
    assert runner.call(lambda: "after") == "after", "the thread serves again once it is free"


def test_a_call_queued_behind_a_stuck_one_times_out_too(gate: threading.Event) -> None:
    runner = ModelThread(timeout=0.05)
    with pytest.raises(DeadlineExceeded):
        runner.call(lambda: gate.wait(10))
    ran = threading.Event()
    with pytest.raises(DeadlineExceeded):
        runner.call(ran.set)
    assert not ran.is_set()
    gate.set()
    assert ran.wait(5), "the queued call still runs once the thread is free"


def test_a_model_that_exits_does_not_end_the_thread() -> None:
    """``sys.exit`` inside a pipeline reaches its caller as an error; the next call runs."""
    thread = ModelThread(timeout=30)

    def exits() -> None:
        sys.exit(3)

    with pytest.raises(RuntimeError, match="SystemExit"):
        thread.call(exits)
    assert thread.call(lambda: 42) == 42
