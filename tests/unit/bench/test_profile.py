"""The benchmark's profile summary: py-spy's collapsed stacks counted by stage and function."""

from __future__ import annotations

from bench.profile import summarise

WORKER = 'process 10:"gunicorn master";process 11:"gunicorn worker"'
HANDLE = "ThreadWorker.handle_request (gunicorn/workers/gthread.py:771)"
FLASK = "Flask.wsgi_app (flask/app.py:1511)"
ROUTE = "predict (service/http/routes.py:157)"
PLAN = "Plan.score (service/model/plan/core.py:80)"
PARSE = "parse_json (service/model/payload.py:40)"
RAW = "\n".join(
    [
        f"{WORKER};{HANDLE};{FLASK};{ROUTE};{PLAN} 6",
        f"{WORKER};{HANDLE};{FLASK};{ROUTE};{PARSE} 3",
        f"{WORKER};{HANDLE} 1",
        "",
    ]
)


def test_a_sample_counts_for_the_innermost_stage_it_is_in() -> None:
    profile = summarise(RAW, "linear", "B", "profiles/linear-B.txt")
    assert profile.samples == 10
    assert profile.stages == {
        "plan (the arithmetic)": 6,
        "JSON parse": 3,
        "gunicorn (sockets, HTTP parsing)": 1,
    }


def test_functions_are_counted_by_their_own_samples_without_the_process_frames() -> None:
    profile = summarise(RAW, "linear", "B", "profiles/linear-B.txt")
    assert profile.functions == {
        "service/model/plan/core.py:Plan.score": 6,
        "service/model/payload.py:parse_json": 3,
        "gunicorn/workers/gthread.py:ThreadWorker.handle_request": 1,
    }
