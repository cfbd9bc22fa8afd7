"""The engine's end-to-end tests (``tests/engine/test_engine_e2e.py``) once more, on the
Celery backend: every run goes through the broker (Redis) as ``advance_run`` messages
and is claimed, driven and handed back by the Celery tasks (the ``worker`` fixture of
this folder), with engine time in the test's hands."""

from tests.engine.test_engine_e2e import *  # noqa: F403
