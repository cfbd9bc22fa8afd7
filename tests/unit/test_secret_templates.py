"""A template may place a secret whole and do nothing else with it: refused at save."""

from __future__ import annotations

import pytest

from app.definition import parse_definition
from app.definition.builders import chain, webhook_node
from app.workflows.drafts import variables as draft_variables
from tests.support import error_at

# (template, what the error says the template does)
MISUSES = [
    ("{{ secrets.api_token | reverse }}", "applies a filter to a secret"),
    ("{{ secrets.api_token | list }}", "applies a filter to a secret"),
    ("{{ secrets.api_token | upper }}", "applies a filter to a secret"),
    ("{{ secrets.api_token | tojson }}", "applies a filter to a secret"),
    ("{{ secrets.api_token | b64encode }}", "Unknown filter"),
    ("{{ secrets.api_token[0:3] }}", "slices a secret"),
    ("{{ secrets.api_token[:-1] }}", "slices a secret"),
    ("{{ secrets.api_token[0] }}", "takes a part of a secret"),
    ("{{ secrets['api_token'][1] }}", "takes a part of a secret"),
    ("{{ secrets[incident.title] }}", "subscripts secrets with something other than a name"),
    ("{{ secrets.api_token.upper() }}", "calls the method 'upper' on a secret"),
    ("{{ secrets.api_token.__class__ }}", "reads the attribute '__class__' of a secret"),
    ("{{ secrets.api_token.real }}", "reads the attribute 'real' of a secret"),
    ("{{ secrets.api_token is string }}", "tests a secret"),
    ("{{ secrets.api_token == 'guess' }}", "compares a secret"),
    ("{{ 'guess' in secrets.api_token }}", "compares a secret"),
    ("{{ 'Bearer ' ~ secrets.api_token }}", "joins a secret to other text"),
    ("{{ secrets.api_token + 'x' }}", "calculates with a secret"),
    ("{{ secrets.api_token * 2 }}", "calculates with a secret"),
    ("{{ -secrets.api_token }}", "calculates with a secret"),
    ("{{ secrets.api_token if incident.title else 'x' }}", "tests or chooses a secret"),
    ("{% if secrets.api_token %}yes{% endif %}", "tests a secret"),
    ("{% for c in secrets.api_token %}{{ c }}{% endfor %}", "loops over a secret"),
    ("{% set s = secrets.api_token %}{{ s | reverse }}", "assigns a secret to a variable"),
    ("{% with s = secrets.api_token %}{{ s }}{% endwith %}", "assigns a secret to a variable"),
    ("{{ '%s' % secrets.api_token }}", "calculates with a secret"),
    ("{{ '{}'.format(secrets.api_token) }}", "passes a secret to a function or macro"),
    ("{{ dict(a=secrets.api_token) }}", "passes a secret to a function or macro"),
    ("{{ [secrets.api_token] }}", "puts a secret in a list"),
    ("{{ {'a': secrets.api_token} }}", "puts a secret in a dictionary"),
    ("{{ secrets }}", "uses secrets without naming one"),
    ("{% for k in secrets %}{{ k }}{% endfor %}", "uses secrets without naming one"),
    ("{{ secrets.items() }}", "calls a secret"),
    (
        "{% filter reverse %}{{ secrets.api_token }}{% endfilter %}",
        "places a secret inside a filter block",
    ),
    (
        "{% set s %}{{ secrets.api_token }}{% endset %}{{ s | reverse }}",
        "places a secret inside a set block",
    ),
    (
        "{% macro m() %}{{ secrets.api_token }}{% endmacro %}{{ m() | reverse }}",
        "places a secret inside a macro",
    ),
    (
        "{% macro m() %}{{ caller() }}{% endmacro %}"
        "{% call m() %}{{ secrets.api_token }}{% endcall %}",
        "places a secret inside a call block",
    ),
    ("{% block b %}{{ secrets.api_token }}{% endblock %}", "places a secret inside a block"),
]


@pytest.mark.parametrize(("source", "what"), MISUSES)
def test_every_transform_of_a_secret_is_refused_at_save_with_its_location(
    source: str, what: str
) -> None:
    data = chain(webhook_node("notify"), webhook_node("page", body=source))
    error = error_at(data, "nodes[2].data.config.body", secret_names={"api_token"})
    assert what in error.message, error.message
    if "Unknown filter" not in what:
        assert error.message.startswith(
            "A secret can only be placed whole in a template, as {{ secrets.<name> }}: line 1 "
        )


@pytest.mark.parametrize(
    "source",
    [
        '{"token": "{{ secrets.api_token }}"}',
        "Bearer {{ secrets.api_token }}",
        "{{ secrets['api_token'] }}",
        "{% if incident.priority == 'P1' %}{{ secrets.api_token }}{% endif %}",
        "{% for i in range(2) %}{{ secrets.api_token }}{% endfor %}",
    ],
)
def test_a_secret_placed_whole_is_accepted(source: str) -> None:
    data = chain(webhook_node("page", body='{"a": 1}', headers={"X-Key": source}))
    parse_definition(data, secret_names={"api_token"})


def test_the_url_and_headers_are_checked_like_the_body() -> None:
    data = chain(
        webhook_node(
            "page",
            url="https://hooks.example.com/{{ secrets.api_token | urlencode }}",
            headers={"X-Key": "{{ secrets.api_token[:4] }}"},
        )
    )
    assert "applies a filter" in error_at(data, "nodes[1].data.config.url").message
    assert "slices a secret" in error_at(data, "nodes[1].data.config.headers.X-Key").message


def test_an_auth_field_names_exactly_one_secret() -> None:
    for token in ("{{ secrets.a }}{{ secrets.b }}", "{{ secrets.a | upper }}", "Bearer x"):
        data = chain(webhook_node("page", auth={"type": "bearer", "token": token}))
        assert "secrets.<name>" in error_at(data, "nodes[1].data.config.auth.token").message


def test_the_editor_live_check_says_the_same() -> None:
    variables = draft_variables.Variables(
        context={}, steps=[], secrets=["api_token"], secrets_allowed=True
    )
    [(message, warning)] = draft_variables.unknown_references(
        "{{ secrets.api_token | reverse }}", variables
    )
    assert "can only be placed whole" in message and not warning
