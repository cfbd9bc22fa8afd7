"""IncidentFlow: incident automation workflows for on-call teams."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from flask import Flask
from sqlalchemy.engine import Engine
from werkzeug.middleware.proxy_fix import ProxyFix

# ``extensions`` by module: ``app.db`` is the column-types module, not the extension
from app import error_pages, extensions, input_policy, security_headers
from app.config import (
    check_test_hooks,
    engine_options,
    environment,
    instance_path_from_environment,
    load_settings,
)
from app.ops.settings import engine_backend

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app: settings from the environment, then ``config`` on top (tests)."""
    config = dict(config or {})
    app = Flask(
        __name__,
        instance_path=config.pop("INSTANCE_PATH", None)
        or instance_path_from_environment()
        or os.path.join(PROJECT_ROOT, "instance"),
        template_folder=os.path.join(PROJECT_ROOT, "templates"),
        static_folder=os.path.join(PROJECT_ROOT, "static"),
    )
    os.makedirs(app.instance_path, exist_ok=True)
    app.config.from_mapping(load_settings(app.instance_path, environment()))
    if config:
        app.config.from_mapping(config)
        if "SQLALCHEMY_ENGINE_OPTIONS" not in config:
            app.config["SQLALCHEMY_ENGINE_OPTIONS"] = engine_options(
                app.config["SQLALCHEMY_DATABASE_URI"]
            )
    check_test_hooks(app.config)

    if app.config.get("TRUSTED_PROXIES"):
        proxies = int(app.config["TRUSTED_PROXIES"])
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies, x_port=proxies
        )

    from app.engine.outbound import AllowList
    from app.ops.logging import configure_logging

    configure_logging(app)

    # Fail at start-up, not at the first workflow run, on a malformed allow-list.
    AllowList.parse(app.config.get("OUTBOUND_ALLOW"))

    extensions.db.init_app(app)
    extensions.migrate.init_app(
        app, extensions.db, directory=os.path.join(PROJECT_ROOT, "migrations")
    )
    extensions.login_manager.init_app(app)
    extensions.csrf.init_app(app)
    extensions.htmx.init_app(app)
    input_policy.init_app(app)
    error_pages.init_app(app)
    security_headers.init_app(app)

    with app.app_context():
        _configure_engine(extensions.db.engine)

    from app import models  # noqa: F401  (every model registered before migrations run)
    from app.api import bp as api_bp
    from app.auth.admin import bp as admin_bp
    from app.auth.profile import bp as profile_bp
    from app.auth.routes import bp as auth_bp
    from app.cli import register_cli
    from app.home import bp as home_bp
    from app.incidents.routes import bp as incidents_bp
    from app.ops import audit_page as _audit_page  # noqa: F401  (routes on the ops blueprint)
    from app.ops import metrics as _metrics  # noqa: F401  (routes on the ops blueprint)
    from app.ops.health import bp as ops_bp
    from app.runs.routes import bp as runs_bp
    from app.workflows import editor as _editor  # noqa: F401  (routes on the workflows blueprint)
    from app.workflows import gallery as _gallery  # noqa: F401
    from app.workflows import routes as _workflow_routes  # noqa: F401
    from app.workflows.blueprint import bp as workflows_bp

    blueprints = (
        auth_bp,
        home_bp,
        incidents_bp,
        workflows_bp,
        runs_bp,
        admin_bp,
        profile_bp,
        api_bp,
        ops_bp,
    )
    for blueprint in blueprints:
        app.register_blueprint(blueprint)
    # The API takes bearer tokens only, never the session cookie, so CSRF cannot apply.
    extensions.csrf.exempt(api_bp)
    register_cli(app)
    if engine_backend(app.config) == "celery":
        from app.engine.celery_app import wake_by_broker

        wake_by_broker(app)
    from app.ops import unavailable

    unavailable.register(app)

    @app.after_request
    def vary_on_htmx(response: Any) -> Any:
        response.vary.add("HX-Request")
        return response

    return app


def _configure_engine(engine: Engine) -> None:
    if engine.dialect.name == "sqlite":
        from app import sqlite_writer

        sa.event.listen(engine, "connect", _sqlite_pragmas)
        sa.event.listen(engine, "savepoint", _sqlite_begin_before_savepoint)
        sqlite_writer.install(engine)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_begin_before_savepoint(conn: sa.Connection, _name: str) -> None:
    """Open the real transaction before a first savepoint.

    Python's sqlite3 starts a transaction only before a write, so a SAVEPOINT issued
    first (a service's ``begin_nested`` around its first insert) would itself start
    it, and releasing the savepoint would commit everything: a later failure could
    no longer roll the request back.
    """
    dbapi_connection: Any = conn.connection.dbapi_connection
    if dbapi_connection is not None and not dbapi_connection.in_transaction:
        dbapi_connection.execute("BEGIN")
