import re

import pytest

from app import db as db_module
from app.db import ID_LENGTH, new_id


def test_ids_look_like_cuids_and_do_not_collide() -> None:
    ids = [new_id() for _ in range(20_000)]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"c[0-9a-z]{24}", i) for i in ids)
    assert all(len(i) == ID_LENGTH for i in ids)


def test_ids_sort_by_creation_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(db_module.time, "time_ns", lambda: 1_700_000_000_000 * 1_000_000)
    earlier = new_id()
    monkeypatch.setattr(db_module.time, "time_ns", lambda: 1_700_000_000_001 * 1_000_000)
    assert new_id() > earlier
