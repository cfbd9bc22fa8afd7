"""The input policy's checks on their own: iterative, located, and complete."""

from __future__ import annotations

import pytest

from app import input_policy
from app.errors import InvalidInput


def test_a_value_nested_far_past_the_recursion_limit_is_walked_without_recursion() -> None:
    value: list = []
    deepest = value
    for _ in range(100_000):
        deepest.append([])
        deepest = deepest[0]
    (problem,) = input_policy.json_problems({"payload": value})
    assert problem.loc == "payload"
    assert "levels deep" in problem.message


def test_text_too_deep_for_the_parser_is_refused_at_its_top_level_member() -> None:
    raw = '{"title": "x", "tags": ["a", {"b": 1}], "metadata": ' + "[" * 100_000 + "]" * 100_000
    with pytest.raises(InvalidInput) as refused:
        input_policy.loads(raw + "}")
    assert [p.loc for p in refused.value.problems] == ["metadata"]


def test_every_problem_is_reported_up_to_the_limit() -> None:
    value = {f"k{i}": "\x00" for i in range(50)}
    problems = input_policy.json_problems(value)
    assert len(problems) == input_policy.MAX_PROBLEMS
    assert problems[0].loc == "k0"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("fine \U0001f4df", None),
        ("a\x00", "NUL"),
        ("\udfff", "surrogate"),
        ("\ud800x", "surrogate"),
    ],
)
def test_text_problems(text, problem) -> None:
    found = input_policy.text_problem(text)
    assert (found is None) if problem is None else (problem in found)


def test_text_that_is_not_json_is_a_syntax_error_with_its_place() -> None:
    with pytest.raises(input_policy.JsonSyntaxError) as error:
        input_policy.loads('{"a": }')
    assert "line 1, column 7" in error.value.message


def test_a_valid_document_comes_back_unchanged() -> None:
    text = '{"a": [1, 2.5, true, null, "\\u00e9"], "b": {"c": -0.0}}'
    assert input_policy.loads(text) == {"a": [1, 2.5, True, None, "é"], "b": {"c": -0.0}}
