"""The Celery backend's tests: ``worker`` is the Celery backend driven by the test
(``celery_driver`` in tests/fixtures/celery.py) instead of the embedded worker."""

from __future__ import annotations

import pytest

from tests.fixtures.celery import CeleryDriver


@pytest.fixture
def worker(celery_driver: CeleryDriver) -> CeleryDriver:
    return celery_driver
