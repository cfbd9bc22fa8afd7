"""No module under app/ grows past MAX_LINES lines: a module that long does more than one
job and should be split by job (as app/workflows/graph/, drafts/, editor/ and forms/ were).

The exceptions are listed by path, each with its reason; one that shrinks under the limit
must leave the list, so the list only ever gets shorter."""

from __future__ import annotations

from tests.support import ROOT

MAX_LINES = 900

#: Modules allowed over the limit, each with its reason (none today).
EXCEPTIONS: frozenset[str] = frozenset()


def line_counts() -> dict[str, int]:
    return {
        path.relative_to(ROOT).as_posix(): len(path.read_text(encoding="utf-8").splitlines())
        for path in sorted((ROOT / "app").rglob("*.py"))
    }


def test_no_module_under_app_exceeds_the_line_limit() -> None:
    too_long = {
        path: count
        for path, count in line_counts().items()
        if count > MAX_LINES and path not in EXCEPTIONS
    }

    assert too_long == {}, f"split these by job (at most {MAX_LINES} lines each): {too_long}"


def test_every_exception_is_still_a_long_module() -> None:
    counts = line_counts()

    stale = sorted(path for path in EXCEPTIONS if counts.get(path, 0) <= MAX_LINES)

    assert stale == [], f"no longer over {MAX_LINES} lines (or gone): remove from EXCEPTIONS"
