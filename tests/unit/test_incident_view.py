"""One incident mapping (app/incidents/view.py): it covers every column of Incident but
those it names as not shown, and the views built from it keep their own shapes."""

from __future__ import annotations

import sqlalchemy as sa

from app.engine.sample_render import SAMPLE_INCIDENT
from app.incidents.models import Incident
from app.incidents.view import FIELDS, NOT_SHOWN, incident_view, view_columns


def attribute_names_of_columns() -> set[str]:
    """Each column of the incident table, by the attribute name Incident gives it."""
    mapper = sa.inspect(Incident)
    return {mapper.get_property_by_column(column).key for column in Incident.__table__.columns}


def unmapped(columns: set[str]) -> set[str]:
    """Columns neither in the mapping nor named as not shown."""
    return columns - set(FIELDS) - NOT_SHOWN.keys()


def test_the_mapping_covers_every_column_but_those_named_as_not_shown() -> None:
    columns = attribute_names_of_columns()
    assert unmapped(columns) == set()
    assert set(FIELDS) <= columns and NOT_SHOWN.keys() <= columns  # nothing stale either
    assert len(FIELDS) == len(set(FIELDS))


def test_a_new_column_would_be_found_missing() -> None:
    assert unmapped(attribute_names_of_columns() | {"severity_note"}) == {"severity_note"}


def test_an_incident_and_a_stand_in_give_the_same_fields() -> None:
    fields = incident_view(SAMPLE_INCIDENT)
    assert list(fields) == list(FIELDS)
    assert fields["metadata_"] == {} and fields["team_id"] == "sample-team"


def test_the_plain_select_labels_each_column_by_its_attribute_name() -> None:
    assert [column.name for column in view_columns()] == list(FIELDS)
