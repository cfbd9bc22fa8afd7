"""Saving a big definition parses each of its templates once."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from app.definition import templating
from app.definition.builders import (
    action_node,
    definition,
    edge,
    trigger_config,
    trigger_node,
    webhook_config,
)
from app.extensions import db
from app.workflows import secrets as secret_store
from app.workflows import service
from app.workflows.enums import ScopeType

NODES = 199  # and the trigger: the 200 nodes a definition may have


def big_definition(marker: str = "") -> dict[str, Any]:
    nodes = [trigger_node()]
    edges = []
    previous = "start"
    for i in range(NODES):
        body = (
            f'{{"node": {i}, "title": {{{{ incident.title | tojson }}}}, '
            f'"run": "{{{{ workflow.executionId }}}}", "token": "{{{{ secrets.tok }}}}", '
            f'"note": "{"static text " * 20}{marker}"}}'
        )
        config = webhook_config(
            url="https://hooks.example.com/{{ incident.id }}",  # the same in every node
            body=body,
            headers={"X-Node": f"node {i}", "X-Run": "{{ workflow.executionId }}"},
        )
        nodes.append(action_node(f"n{i}", "webhook", config))
        edges.append(edge(previous, f"n{i}"))
        previous = f"n{i}"
    return definition(nodes, edges, trigger_config("incident_created"))


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The sources the template environment parses from now on (remembered answers forgotten)."""
    env = templating.template_environment()
    seen: list[str] = []
    parse = env.parse

    def counting(source: str, *args: Any, **kwargs: Any) -> Any:
        seen.append(source)
        return parse(source, *args, **kwargs)

    templating._analysed.cache_clear()
    monkeypatch.setattr(env, "parse", counting)
    yield seen
    templating._analysed.cache_clear()


def test_saving_an_enabled_200_node_workflow_parses_each_template_once(
    app, make_user, parses
) -> None:
    admin = make_user(admin=True)
    workflow = service.create_workflow(
        admin,
        name="Big",
        description="Two hundred nodes.",
        scope=ScopeType.GLOBAL,
        definition=big_definition(),
    )
    secret_store.set_secret(workflow, "tok", "value")
    created = len(parses)
    service.set_enabled(admin, workflow, True)
    db.session.commit()
    # Creating parsed every template once; enabling validated again without parsing,
    # then compiled each webhook body at most once (unless the process has it already)
    # to render it for a sample incident (is it JSON?).
    assert created == len(set(parses[:created])) == NODES + 2
    compiled = parses[created:]
    assert len(compiled) == len(set(compiled)) <= NODES

    parses.clear()
    templating._analysed.cache_clear()
    version = service.save_version(
        admin, workflow, big_definition("changed"), base_version=workflow.version
    )
    db.session.commit()
    assert version.version == 2
    # Validation, the enabled workflow's runnable check (with its secrets) and the
    # secrets lookup all read the same templates: one parse each. Plain text
    # (the X-Node headers) is not parsed at all.
    distinct = NODES + 2  # every body, the shared URL, the shared X-Run header
    assert len(parses) == distinct
    assert len(set(parses)) == distinct

    parses.clear()
    service.save_version(admin, workflow, big_definition("changed"), base_version=2)
    assert parses == []  # nothing new to read
