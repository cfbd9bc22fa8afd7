"""Templates that try to build huge values fail fast, small, and with a clear message."""

from __future__ import annotations

import time
import tracemalloc
from typing import Any

import pytest

from app.definition import templating
from app.definition.templating import TemplateRenderError, render

CONTEXT: dict[str, Any] = {
    "incident": {"title": "Payments down", "metadata": {"region": "eu"}},
    "secrets": {"api_token": "s3cr3t-value"},
}

# Each builds (or would build) gigabytes, or runs for minutes, without the bounds.
AMPLIFYING = [
    "{{ 10 ** 64 ** 64 ** 64 ** 64 }}",
    "{{ 2 ** 100000 }}",
    "{% set x = 10 ** 4000 %}{{ x * x * x }}",
    "{{ ''.ljust(10 ** 9) }}",
    "{{ 'x'.rjust(10 ** 9, '-') }}",
    "{{ 'x'.center(10 ** 9) }}",
    "{{ 'x' | center(10 ** 9) }}",
    "{{ '7'.zfill(10 ** 9) }}",
    "{{ 'a\tb'.expandtabs(10 ** 9) }}",
    "{{ '{:>1000000000}'.format('x') }}",
    "{{ '{0:{1}}'.format('x', 10 ** 9) }}",
    "{{ '{:.1000000000f}'.format(1.5) }}",
    "{{ '{x:^999999999}'.format_map({'x': 1}) }}",
    "{{ '%1000000000s' | format('x') }}",
    "{{ '%*d' % (10 ** 9, 1) }}",
    "{{ '%.999999999f' % 1.0 }}",
    "{{ ('x' * 1000).replace('', 'y' * 1000) }}",
    "{{ ('x' * 1000) | replace('x', 'y' * 1000) }}",
    "{{ ('y' * 1000).join(range(1000) | map('string')) }}",
    "{{ range(1000) | join('z' * 1000) }}",
    "{{ 'a\n' * 1000 | indent(10 ** 6) }}",
    "{{ ('a ' * 1000) | wordwrap(1, wrapstring='w' * 1000) }}",
    "{{ 'x' * 10 ** 9 }}",
    "{{ [0] * 10 ** 9 }}",
    "{{ 'x' * 100000 ~ 'y' * 100001 }}",
    "{{ 'x' * 100000 + 'y' * 100001 }}",
    "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}"
    "{% endfor %}{{ ns.s | length }}",
    "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s + ns.s %}"
    "{% endfor %}{{ ns.s | length }}",
    "{% set ns = namespace(l=[1]) %}{% for i in range(64) %}{{ ns.l.extend(ns.l) }}{% endfor %}",
    "{{ range(10 ** 9) | list }}",
    "{% for i in range(10 ** 9) %}{% endfor %}",
    "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}",
    "{{ [1] | batch(10 ** 9, 'x') | list }}",
    "{{ [1] | slice(10 ** 9, 'x') | list }}",
    "{{ lipsum(10 ** 6) }}",
    "{{ (1).to_bytes(10 ** 9, 'big') }}",
    "{{ ('x' * 1000).translate({120: 'y' * 1000}) }}",
    # Shared references print (and compare) far bigger than they are.
    "{% set a = [1] * 100 %}{% set b = [a] * 100 %}{% set c = [b] * 100 %}{{ c }}",
    "{% set a = [1] * 100 %}{% set b = [a] * 100 %}{% set c = [b] * 100 %}{{ c | tojson }}",
    "{% set a = [1] * 100 %}{% set b = [a] * 100 %}{% set c = [b] * 100 %}{{ 'n: ' ~ c }}",
    "{% set a = ['x'] * 100 %}{% set b = [a] * 100 %}{% set b2 = [a + []] * 100 %}"
    "{% set c = [b] * 100 %}{% set c2 = [b2] * 100 %}{{ c == c2 }}",
    "{% set a = [1] * 100 %}{% set b = [a] * 100 %}{% set c = [b] * 100 %}{{ c | string }}",
    "{{ [1, 2] | tojson(indent=10 ** 9) }}",
    # Many bounded steps add up: the work budget stops them.
    "{% set s = 'x' * 150000 %}{% set ns = namespace(l=[]) %}{% for i in range(100) %}"
    "{{ ns.l.append(s ~ i) }}{% endfor %}",
]


@pytest.mark.parametrize("source", AMPLIFYING)
def test_an_amplifying_template_fails_fast_without_allocating_much(source: str) -> None:
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(TemplateRenderError) as caught:
            render(source, CONTEXT)
        elapsed = time.perf_counter() - started
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert caught.value.args[0].startswith("The template exceeded"), caught.value.args[0]
    # tracemalloc slows Python down several times; unbounded, these take minutes.
    assert elapsed < 5.0
    assert peak < 30 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"


def test_the_messages_say_which_limit_and_what_tried_to_pass_it() -> None:
    with pytest.raises(TemplateRenderError, match=r"'\*\*' would build a number of about"):
        render("{{ 10 ** 64 ** 64 ** 64 ** 64 }}", CONTEXT)
    with pytest.raises(TemplateRenderError, match=r"ljust\(\) would build about 1,000,000,000"):
        render("{{ ''.ljust(10 ** 9) }}", CONTEXT)
    with pytest.raises(TemplateRenderError, match=r"format\(\) would build about 1,000,000,"):
        render("{{ '{:>1000000000}'.format('x') }}", CONTEXT)
    with pytest.raises(TemplateRenderError, match="exceeded its limit of 100,000 loop"):
        render("{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}", {})
    with pytest.raises(TemplateRenderError, match="exceeded its work limit"):
        render(AMPLIFYING[-1], CONTEXT)


class SteppingClock:
    """Every look at the clock takes 10 ms: a render that looks often runs out of time."""

    def __init__(self) -> None:
        self.now = 0.0
        self.looks = 0

    def monotonic(self) -> float:
        self.looks += 1
        self.now += 0.01
        return self.now


def test_the_deadline_is_checked_inside_operations_not_only_between_output_chunks() -> None:
    clock = SteppingClock()
    # One output chunk, many operations: the deadline still stops it.
    source = (
        "{% set ns = namespace(n=0) %}{% for i in range(5000) %}{% set ns.n = ns.n + i %}"
        "{% endfor %}{{ ns.n }}"
    )
    with pytest.raises(TemplateRenderError, match="exceeded its time limit of 1 second"):
        render(source, {}, clock=clock)
    assert clock.looks < 200


def test_a_shared_deadline_that_has_passed_stops_the_next_render() -> None:
    clock = SteppingClock()
    with pytest.raises(TemplateRenderError, match="exceeded its time limit"):
        render("{{ incident.title }}", CONTEXT, clock=clock, deadline=0.0)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ incident.title | upper }}", "PAYMENTS DOWN"),
        ("{{ 'ab' * 3 ~ '-' ~ 2 ** 10 }}", "ababab-1024"),
        ("{{ '{:>6}|{:.2f}'.format('x', 3.14159) }}", "     x|3.14"),
        ("{{ '%-4s|%03d' % ('ab', 7) }}", "ab  |007"),
        ("{{ 'a-b-c'.replace('-', '+') }}", "a+b+c"),
        ("{{ ['a', 'b'] | join(', ') }}", "a, b"),
        ("{{ incident.metadata | tojson }}", '{"region": "eu"}'),
        ("{{ [3, 1, 2] | sort | list }}", "[1, 2, 3]"),
        ("{{ [1, 2, 3] | sum }}", "6"),
        ("{{ 'x' in ['x', 'y'] and 1 < 2 <= 2 }}", "True"),
        ("{{ {('a', 1): 2}[('a', 1)] }}", "2"),
        (
            "{% set ns = namespace(items=[]) %}{% for i in range(3) %}"
            "{{ ns.items.append(i) or '' }}{% endfor %}{{ ns.items }}",
            "[0, 1, 2]",
        ),
        ("{{ 'Hi {{x}}' | length }}", "8"),
        ("Bearer {{ secrets.api_token }}", "Bearer s3cr3t-value"),
    ],
)
def test_ordinary_templates_still_render(source: str, expected: str) -> None:
    assert render(source, CONTEXT) == expected


def test_sum_adds_numbers_only() -> None:
    with pytest.raises(TemplateRenderError, match="adds numbers only"):
        render("{{ ([[1]] * 100) | sum(start=[]) }}", {})


SECRET_MISUSES = [
    "{{ secrets.api_token | reverse }}",
    "{{ secrets.api_token | list }}",
    "{{ secrets.api_token | upper }}",
    "{{ secrets.api_token[0:3] }}",
    "{{ secrets.api_token[0] }}",
    "{{ secrets.api_token.upper() }}",
    "{{ secrets.api_token.startswith('s') }}",
    "{{ 'x' ~ secrets.api_token }}",
    "{{ secrets.api_token + 'x' }}",
    "{{ secrets.api_token == 'guess' }}",
    "{{ 'guess' in secrets.api_token }}",
    "{{ secrets.api_token is string }}",
    "{% if secrets.api_token %}yes{% endif %}",
    "{% for c in secrets.api_token %}{{ c }}{% endfor %}",
    "{{ '{}'.format(secrets.api_token) }}",
    "{{ '%s' % secrets.api_token }}",
    "{{ dict(a=secrets.api_token) }}",
    "{{ {'a': secrets.api_token} | tojson }}",
]


@pytest.mark.parametrize("source", SECRET_MISUSES)
def test_a_secret_is_opaque_when_rendering_even_past_the_syntax_check(
    source: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Defence in depth: with the save-time check switched off, rendering still refuses."""
    with pytest.raises(TemplateRenderError, match="can only be placed whole"):
        render(source, CONTEXT)
    monkeypatch.setattr(templating, "_check_secrets", lambda *args: None)
    templating._compiled.cache_clear()
    try:
        with pytest.raises(TemplateRenderError) as caught:
            render(source, CONTEXT)
    finally:
        templating._compiled.cache_clear()
    assert "s3cr3t" not in caught.value.args[0]
    assert "secret" in caught.value.args[0].lower()


def test_a_secret_inside_a_printed_value_shows_as_a_marker(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(TemplateRenderError, match="can only be placed whole"):
        render("{{ [secrets.api_token] }}", CONTEXT)
    monkeypatch.setattr(templating, "_check_secrets", lambda *args: None)
    templating._compiled.cache_clear()
    try:
        assert render("{{ [secrets.api_token] }}", CONTEXT) == "[[secret]]"
    finally:
        templating._compiled.cache_clear()
