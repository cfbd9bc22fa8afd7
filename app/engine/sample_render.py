"""Webhook bodies rendered against a sample incident, before any run.

A body such as ``{"title": {{ incident.title }}}`` parses as a template but can
never render valid JSON; without this check it is saved, enabled, and fails
every run. Here each webhook body is rendered (in the same bounded sandbox as a
run) against a plain sample incident and parsed as the webhook action would.
A body that depends on what the sample cannot know (an earlier step's result,
a secret) and so does not render is left to the run: only a body that renders
and is not JSON is reported.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from app.definition import WorkflowContext, templating
from app.engine.actions.base import ActionInputError
from app.engine.actions.webhook import check_json
from app.engine.context import AssigneeView, IncidentView, TeamView, seed_context
from app.engine.failures import SAMPLE_FAILURE
from app.incidents.enums import IncidentPriority, IncidentStatus

_SAMPLE_TIME = datetime(2026, 1, 1, 12, tzinfo=UTC)

#: A plain incident, as a run would read it (engine/context.IncidentView).
SAMPLE_INCIDENT = IncidentView(
    id="sample-incident",
    title="Checkout latency above 2 s",
    description="p95 latency of the checkout API is above 2 seconds.",
    priority=IncidentPriority.P1,
    status=IncidentStatus.TRIGGERED,
    service="checkout",
    metadata_={},
    team_id="sample-team",
    assignee_id="sample-user",
    escalation_level=0,
    created_at=_SAMPLE_TIME,
    updated_at=_SAMPLE_TIME,
    acknowledged_at=None,
    resolved_at=None,
    team=TeamView(id="sample-team", name="Payments", chat_channel="#payments"),
    assignee=AssigneeView(
        id="sample-user",
        email="oncall@example.com",
        first_name="Sam",
        last_name="Oncall",
        phone=None,
    ),
)

#: What a run's templates would see for the sample incident (the same mapping as a run's).
SAMPLE_CONTEXT: dict[str, Any] = {
    **seed_context(
        SAMPLE_INCIDENT,
        WorkflowContext(id="sample-workflow", name="Sample", execution_id="sample-run"),
    ),
    "steps": {},
    "secrets": {},
    "failure": SAMPLE_FAILURE,
}


@dataclass(frozen=True)
class BodyProblem:
    loc: str
    message: str


def json_body_problems(definition: Mapping[str, Any]) -> list[BodyProblem]:
    """Webhook bodies that render for the sample incident but are not JSON."""
    problems = []
    nodes = definition.get("nodes")
    for index, node in enumerate(nodes if isinstance(nodes, list) else []):
        data = node.get("data") if isinstance(node, Mapping) else None
        if not isinstance(data, Mapping) or data.get("actionType") != "webhook":
            continue
        config = data.get("config")
        body = config.get("body") if isinstance(config, Mapping) else None
        if not isinstance(body, str) or not body.strip():
            continue
        try:
            text = templating.render(body, SAMPLE_CONTEXT)
        except ValueError:
            continue  # needs what only a run knows (a step's result, a secret): the run checks
        try:
            check_json(text)
        except ActionInputError as error:
            problems.append(
                BodyProblem(
                    f"nodes[{index}].data.config.body",
                    f"For a sample incident this body renders as {_excerpt(text)}, which is "
                    f"not JSON. {error.message}",
                )
            )
    return problems


def _excerpt(text: str, limit: int = 80) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
