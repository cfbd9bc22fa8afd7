"""Migrations build, check and remove the whole schema on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask

from app import create_app
from app.extensions import db
from tests.conftest import BACKENDS, app_config

# The seed's fields (task 1), as snake_case columns.
SEED_COLUMNS = {
    "workflow": {
        "id",
        "name",
        "description",
        "version",
        "definition",
        "scope_type",
        "team_id",
        "is_enabled",
        "is_template",
        "template_category",
        "created_by_id",
        "created_at",
        "updated_at",
    },
    "workflow_version": {
        "id",
        "workflow_id",
        "version",
        "definition",
        "changed_by_id",
        "change_note",
        "created_at",
    },
    "workflow_execution": {
        "id",
        "workflow_id",
        "workflow_version",
        "definition_snapshot",
        "incident_id",
        "triggered_by",
        "trigger_event",
        "status",
        "current_node_id",
        "completed_nodes",
        "error",
        "started_at",
        "completed_at",
        "failed_at",
        "created_at",
    },
    "workflow_action_secret": {"id", "workflow_id", "name", "value_hash", "created_at"},
}
SEED_INDEXES = {
    "workflow": {("team_id", "is_enabled"), ("is_template", "template_category"), ("scope_type",)},
    "workflow_execution": {("workflow_id", "status"), ("incident_id",), ("status", "created_at")},
}
SEED_UNIQUES = {
    "workflow_version": {("workflow_id", "version")},
    "workflow_action_secret": {("workflow_id", "name")},
}
# (table, column) -> (referred table, ON DELETE)
FOREIGN_KEYS = {
    ("workflow", "team_id"): ("team", "RESTRICT"),
    ("workflow", "created_by_id"): ("user_account", "RESTRICT"),
    ("workflow_version", "workflow_id"): ("workflow", "CASCADE"),
    ("workflow_version", "changed_by_id"): ("user_account", "RESTRICT"),
    ("workflow_execution", "workflow_id"): ("workflow", "RESTRICT"),
    ("workflow_execution", "incident_id"): ("incident", "RESTRICT"),
    ("workflow_action_secret", "workflow_id"): ("workflow", "CASCADE"),
    ("team_membership", "team_id"): ("team", "CASCADE"),
    ("team_membership", "user_id"): ("user_account", "CASCADE"),
    ("incident", "team_id"): ("team", "RESTRICT"),
    ("incident", "assignee_id"): ("user_account", "SET NULL"),
}
NULLABLE = {
    ("workflow", "team_id"),
    ("workflow", "template_category"),
    ("workflow_version", "change_note"),
    ("workflow_execution", "trigger_event"),
    ("workflow_execution", "current_node_id"),
    ("workflow_execution", "error"),
    ("workflow_execution", "started_at"),
    ("workflow_execution", "completed_at"),
    ("workflow_execution", "failed_at"),
    # Added for the engine and the template gallery (not in the seed).
    ("workflow", "template_key"),
    ("workflow", "retired_at"),
    ("workflow_execution", "trigger_key"),
    ("workflow_execution", "triggered_by_user_id"),
    ("workflow_execution", "due_at"),
    ("workflow_execution", "lease_owner"),
    ("workflow_execution", "parked_until"),
    # Replays and workflow-based templates (issue 15).
    ("workflow", "template_source_id"),
    ("workflow_execution", "replay_of_id"),
    ("workflow_execution", "replay_mode"),
    ("workflow_execution", "caused_by_execution_id"),
}


@pytest.fixture(params=BACKENDS)
def fresh_app(
    request: pytest.FixtureRequest, make_database_url: Callable[[str], str], tmp_path: Path
) -> Flask:
    """An app on a brand-new, empty database of each backend."""
    app = create_app(app_config(make_database_url(request.param), tmp_path / "instance"))
    yield app
    with app.app_context():
        db.engine.dispose()


def run_cli(app: Flask, *args: str) -> str:
    result = app.test_cli_runner().invoke(args=list(args))
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


def inspect_schema(app: Flask) -> sa.Inspector:
    with app.app_context():
        db.engine.dispose()
        return sa.inspect(db.engine)


def test_upgrade_builds_the_seed_schema(fresh_app: Flask) -> None:
    run_cli(fresh_app, "db", "upgrade")
    with fresh_app.app_context():
        inspector = sa.inspect(db.engine)
        tables = set(inspector.get_table_names())
        assert set(SEED_COLUMNS) <= tables
        assert {"user_account", "team", "team_membership", "incident"} <= tables
        for table, expected in SEED_COLUMNS.items():
            columns = {c["name"]: c for c in inspector.get_columns(table)}
            assert expected <= set(columns), f"{table} lacks {expected - set(columns)}"
            for name, column in columns.items():
                assert column["nullable"] == ((table, name) in NULLABLE), (table, name)
        for table, expected in SEED_INDEXES.items():
            found = {tuple(ix["column_names"]) for ix in inspector.get_indexes(table)}
            assert expected <= found, f"{table} indexes {found}"
        for table, expected in SEED_UNIQUES.items():
            found = {tuple(uq["column_names"]) for uq in inspector.get_unique_constraints(table)}
            assert expected <= found, f"{table} unique constraints {found}"
        for (table, column), (referred, ondelete) in FOREIGN_KEYS.items():
            fks = [
                fk
                for fk in inspector.get_foreign_keys(table)
                if fk["constrained_columns"] == [column]
            ]
            assert len(fks) == 1, (table, column)
            assert fks[0]["referred_table"] == referred
            assert (fks[0]["options"].get("ondelete") or "NO ACTION").upper() == ondelete, (
                table,
                column,
            )


@pytest.mark.postgres
def test_postgresql_uses_jsonb_and_timestamptz(
    make_database_url: Callable[[str], str], tmp_path: Path
) -> None:
    fresh_app = create_app(app_config(make_database_url("postgresql"), tmp_path / "instance"))
    run_cli(fresh_app, "db", "upgrade")
    with fresh_app.app_context(), db.engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT table_name, column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = 'public' AND table_name LIKE 'workflow%'"
            )
        ).all()
        db.engine.dispose()
    types = {(t, c): d for t, c, d in rows}
    for json_column in [
        ("workflow", "definition"),
        ("workflow_version", "definition"),
        ("workflow_execution", "definition_snapshot"),
        ("workflow_execution", "completed_nodes"),
    ]:
        assert types[json_column] == "jsonb"
    timestamps = {k: v for k, v in types.items() if k[1].endswith("_at")}
    assert timestamps and set(timestamps.values()) == {"timestamp with time zone"}


def test_check_finds_no_drift_between_models_and_migrations(fresh_app: Flask) -> None:
    run_cli(fresh_app, "db", "upgrade")
    run_cli(fresh_app, "db", "check")  # exits non-zero on drift (next test)


def test_check_fails_when_the_database_lags_the_models(fresh_app: Flask) -> None:
    run_cli(fresh_app, "db", "upgrade")
    with fresh_app.app_context(), db.engine.begin() as conn:
        conn.execute(sa.text("DROP INDEX ix_workflow_scope_type"))
    result = fresh_app.test_cli_runner().invoke(args=["db", "check"])
    assert result.exit_code != 0


def test_downgrade_base_removes_everything(fresh_app: Flask) -> None:
    run_cli(fresh_app, "db", "upgrade")
    run_cli(fresh_app, "db", "downgrade", "base")
    with fresh_app.app_context():
        db.engine.dispose()
        assert set(sa.inspect(db.engine).get_table_names()) <= {"alembic_version"}
    run_cli(fresh_app, "db", "upgrade")  # and back up again cleanly
