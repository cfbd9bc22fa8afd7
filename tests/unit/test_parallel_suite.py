"""The suite runs on several processes: manage.py's defaults, and each worker's own Redis."""

from __future__ import annotations

import pytest

import manage
from tests.support import redis_url_of_this_process

PARALLEL = ["-n", str(manage.TEST_WORKERS), "--dist", "load"]


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ([], PARALLEL),
        (["--fast"], [*PARALLEL, "--fast"]),
        (
            ["-p", "no:cacheprovider", "tests/unit"],
            [*PARALLEL, "-p", "no:cacheprovider", "tests/unit"],
        ),
        (["-n", "0"], ["-n", "0"]),
        (["-n2", "-x"], ["-n2", "-x"]),
        (["--numprocesses=4"], ["--numprocesses=4"]),
        (["-p", "no:xdist"], ["-p", "no:xdist"]),
    ],
)
def test_manage_test_runs_in_parallel_unless_the_arguments_choose(
    given: list[str], expected: list[str]
) -> None:
    assert manage.parallel(given) == expected


def test_more_workers_than_cores() -> None:
    assert manage.TEST_WORKERS >= 2


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, "redis://127.0.0.1:6379/15"),
        ({"PYTEST_XDIST_WORKER": "gw0"}, "redis://127.0.0.1:6379/15"),
        ({"PYTEST_XDIST_WORKER": "gw2"}, "redis://127.0.0.1:6379/13"),
        (
            {"TEST_REDIS_URL": "redis://:pw@10.0.0.5:6380/9", "PYTEST_XDIST_WORKER": "gw1"},
            "redis://:pw@10.0.0.5:6380/8",
        ),
    ],
)
def test_each_test_worker_has_its_own_redis_database(
    environ: dict[str, str], expected: str
) -> None:
    assert redis_url_of_this_process(environ) == expected


def test_too_many_workers_for_the_redis_databases_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="would need Redis database -1"):
        redis_url_of_this_process(
            {"TEST_REDIS_URL": "redis://127.0.0.1:6379/2", "PYTEST_XDIST_WORKER": "gw3"}
        )
