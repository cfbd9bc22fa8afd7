"""``python -m bench``: run the benchmark suite and regenerate ``docs/benchmarks.md``.

    python -m bench                  # everything (about 40 minutes on 2 cores)
    python -m bench --quick          # a short smoke run (about 7 minutes)
    python -m bench --only latency   # one group (comma-separate several)
    python -m bench --only endtoend --quick   # the end-to-end group only (~5 minutes)
    python -m bench --report-only    # rewrite the Markdown from docs/benchmarks.json

Run from the project root. Outside the project's virtual environment it
re-runs itself with ``.venv/bin/python``, creating and installing the environment
first (as ``python3 manage.py start`` does) when there is none. PostgreSQL and Redis are taken from
``BENCH_POSTGRES_URL`` (default ``postgresql://postgres@127.0.0.1:5432/postgres``;
a database ``iflow_bench_<random>`` is created and dropped) and ``BENCH_REDIS_URL``
(default ``redis://127.0.0.1:6379/13``, flushed); figures needing a missing
service are reported as not measured.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _ensure_environment() -> None:
    """Standard library only: re-run under the project's virtual environment if needed."""
    venv = ROOT / ".venv"
    in_venv = Path(sys.prefix).resolve() == venv.resolve()
    try:
        import flask  # noqa: F401
    except ImportError:
        in_venv = False
    if in_venv or os.environ.get("BENCH_NO_REEXEC"):
        return
    sys.path.insert(0, str(ROOT))
    import manage

    if not manage.PYTHON.exists():
        manage.ensure_environment()  # a clean checkout: what `manage.py start` does first
    env = dict(os.environ, BENCH_NO_REEXEC="1")
    os.chdir(ROOT)
    os.execve(str(manage.PYTHON), [str(manage.PYTHON), "-m", "bench", *sys.argv[1:]], env)


if __name__ == "__main__":
    _ensure_environment()
    os.chdir(ROOT)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from bench.suite import main

    sys.exit(main(sys.argv[1:]))
