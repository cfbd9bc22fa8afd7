"""One mapping from an incident to what is shown of it, so a new column is added here once.

Every view of an incident starts from ``incident_view``: the API's JSON
(``api/schemas.incident_out``), the incident a run reads (``engine/context.read_incident``,
one plain row selected with ``view_columns``), the template context built from either
(``engine/context.incident_context``), the incident rebuilt from its events in a backtest
(``engine/backtest``) and the sample incident webhook bodies are rendered against
(``engine/sample_render``). Each then keeps its own shape: the API shows the team and the
assignee as references, templates see camelCase names and the team's name.
``tests/unit/test_incident_view.py`` fails when a column of ``Incident`` is missing here.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from app.incidents.models import Incident

#: Every column a view shows, by the attribute name ``Incident`` gives it (``metadata_``:
#: SQLAlchemy reserves ``metadata``).
FIELDS = (
    "id",
    "title",
    "description",
    "priority",
    "status",
    "service",
    "metadata_",
    "team_id",
    "assignee_id",
    "escalation_level",
    "created_at",
    "updated_at",
    "acknowledged_at",
    "resolved_at",
)

#: Columns no view shows, and why.
NOT_SHOWN = {
    "row_version": "optimistic locking's counter: the database's business, nobody's view",
}


def incident_view(incident: Any) -> dict[str, Any]:
    """The incident's ``FIELDS``, from an ``Incident``, anything with the same attributes
    (``engine.context.IncidentView``) or a row selected with ``view_columns``."""
    return {name: getattr(incident, name) for name in FIELDS}


def view_columns() -> list[sa.Label[Any]]:
    """The columns of ``FIELDS``, each labelled by its attribute name, for a plain select."""
    return [getattr(Incident, name).label(name) for name in FIELDS]
