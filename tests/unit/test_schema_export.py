"""The JSON Schema of a definition is exported by a command and served by the app."""

from __future__ import annotations

import json

from app.cli import schema_document
from app.definition import definition_json_schema


def test_export_command_writes_the_schema(runner, tmp_path) -> None:
    target = tmp_path / "schema.json"
    result = runner.invoke(args=["workflows", "export-schema", "-o", str(target)])
    assert result.exit_code == 0, result.output
    assert json.loads(target.read_text()) == definition_json_schema()


def test_the_served_copy_is_up_to_date(runner, client) -> None:
    result = runner.invoke(args=["workflows", "export-schema", "--check"])
    assert result.exit_code == 0, result.output
    served = client.get("/static/schema/workflow-definition.schema.json")
    assert served.status_code == 200
    assert served.get_data(as_text=True) == schema_document()


def test_check_fails_on_a_stale_copy(runner, tmp_path) -> None:
    stale = tmp_path / "stale.json"
    stale.write_text("{}")
    result = runner.invoke(args=["workflows", "export-schema", "--check", "-o", str(stale)])
    assert result.exit_code != 0 and "out of date" in result.output
