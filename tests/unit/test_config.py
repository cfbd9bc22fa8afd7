"""Settings come from the environment, with working embedded defaults."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from app import create_app
from app.config import load_settings, normalise_database_url


def test_defaults_use_sqlite_in_the_instance_folder(tmp_path: Path) -> None:
    settings = load_settings(str(tmp_path), {})
    assert settings["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'incidentflow.db'}"
    assert settings["SESSION_COOKIE_SECURE"] is True  # production unless told otherwise


def test_secret_key_is_generated_once_into_the_instance_folder(tmp_path: Path) -> None:
    first = load_settings(str(tmp_path), {})["SECRET_KEY"]
    second = load_settings(str(tmp_path), {})["SECRET_KEY"]
    key_file = tmp_path / "secret_key"
    assert first == second == key_file.read_text()
    assert len(first) >= 40
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_environment_overrides_defaults(tmp_path: Path) -> None:
    settings = load_settings(
        str(tmp_path),
        {
            "SECRET_KEY": "from-env",
            "DATABASE_URL": "postgres://u@db/x",
            "INCIDENTFLOW_ENV": "development",
        },
    )
    assert settings["SECRET_KEY"] == "from-env"
    assert settings["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u@db/x"
    assert settings["SESSION_COOKIE_SECURE"] is False
    assert not (tmp_path / "secret_key").exists()


def test_unknown_environment_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="INCIDENTFLOW_ENV"):
        load_settings(str(tmp_path), {"INCIDENTFLOW_ENV": "prod"})


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://a@h/d", "postgresql+psycopg://a@h/d"),
        ("postgres://a@h/d", "postgresql+psycopg://a@h/d"),
        ("postgresql+psycopg://a@h/d", "postgresql+psycopg://a@h/d"),
        ("sqlite:///x.db", "sqlite:///x.db"),
    ],
)
def test_database_urls_pick_the_psycopg_driver(given: str, expected: str) -> None:
    assert normalise_database_url(given) == expected


def test_no_secret_key_literal_in_code() -> None:
    root = Path(__file__).resolve().parents[2] / "app"
    for path in root.rglob("*.py"):
        text = path.read_text()
        assert "SECRET_KEY = " not in text and "SECRET_KEY=" not in text, path


def test_sqlite_foreign_keys_are_on(tmp_path: Path) -> None:
    app = create_app(
        {
            "INSTANCE_PATH": str(tmp_path),
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'x.db'}",
        }
    )
    from app.extensions import db

    with app.app_context(), db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        db.engine.dispose()


def test_the_password_hash_test_hook_is_refused_outside_tests(tmp_path: Path) -> None:
    config = {
        "INSTANCE_PATH": str(tmp_path),
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'x.db'}",
        "TEST_HOOK_PASSWORD_HASH_METHOD": "pbkdf2:sha256:1",
    }
    with pytest.raises(RuntimeError, match="TEST_HOOK_PASSWORD_HASH_METHOD is a test hook"):
        create_app(config)
    assert create_app({**config, "TESTING": True}).config["TESTING"] is True


def test_the_password_hash_test_hook_never_comes_from_the_environment(tmp_path: Path) -> None:
    settings = load_settings(
        str(tmp_path), {"SECRET_KEY": "x", "TEST_HOOK_PASSWORD_HASH_METHOD": "plain"}
    )
    assert settings["TEST_HOOK_PASSWORD_HASH_METHOD"] is None


def test_trusted_proxies_and_metrics_token_come_from_the_environment(tmp_path: Path) -> None:
    defaults = load_settings(str(tmp_path), {})
    assert defaults["TRUSTED_PROXIES"] == 0 and defaults["METRICS_TOKEN"] == ""
    settings = load_settings(
        str(tmp_path),
        {"INCIDENTFLOW_TRUSTED_PROXIES": "2", "INCIDENTFLOW_METRICS_TOKEN": "scrape"},
    )
    assert settings["TRUSTED_PROXIES"] == 2 and settings["METRICS_TOKEN"] == "scrape"
    with pytest.raises(RuntimeError, match="INCIDENTFLOW_TRUSTED_PROXIES"):
        load_settings(str(tmp_path), {"INCIDENTFLOW_TRUSTED_PROXIES": "yes"})


def test_no_module_but_app_config_reads_the_environment() -> None:
    """One configuration path: every other module of app/ reads app.config."""
    import ast

    root = Path(__file__).resolve().parents[2] / "app"
    readers: list[str] = []
    for path in sorted(root.rglob("*.py")):
        if path == root / "config.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            name = None
            if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "environb"):
                name = node.attr
            elif isinstance(node, ast.ImportFrom) and node.module == "os":
                found = {a.name for a in node.names} & {"environ", "getenv", "environb"}
                name = ", ".join(sorted(found)) or None
            if name:
                readers.append(f"{path.relative_to(root.parent)}:{node.lineno} ({name})")
    assert readers == []


def test_every_setting_from_the_environment_lands_in_the_config(tmp_path: Path) -> None:
    environ = {
        "INCIDENTFLOW_SECRET_KEYS": "k1,k2",
        "INCIDENTFLOW_DEMO_PASSWORD": "demo pass",
        "INCIDENTFLOW_CELERY_BROKER_URL": "redis://broker:6379/0",
        "INCIDENTFLOW_OUTBOUND_REQUEST_TIMEOUT": "12",
        "INCIDENTFLOW_WORKER_STALE_SECONDS": "90",
        "INCIDENTFLOW_ENGINE_BACKEND": "celery",
        "INCIDENTFLOW_ENGINE_CONCURRENCY": "7",
        "INCIDENTFLOW_LOG_LEVEL": "warning",
        "INCIDENTFLOW_LOG_FORMAT": "JSON",
    }
    settings = load_settings(str(tmp_path), environ)
    assert settings["SECRET_KEYS"] == "k1,k2"
    assert settings["DEMO_PASSWORD"] == "demo pass"
    assert settings["CELERY_BROKER_URL"] == "redis://broker:6379/0"
    assert settings["OUTBOUND_REQUEST_TIMEOUT"] == "12"
    assert settings["WORKER_STALE_SECONDS"] == "90"
    assert settings["ENGINE_BACKEND"] == "celery"
    assert settings["ENGINE_CONCURRENCY"] == "7"
    assert (settings["LOG_LEVEL"], settings["LOG_FORMAT"]) == ("WARNING", "json")
    unset = load_settings(str(tmp_path), {})
    assert unset["SECRET_KEYS"] is None and "ENGINE_BACKEND" not in unset
    assert (unset["LOG_LEVEL"], unset["LOG_FORMAT"]) == ("INFO", "plain")


def test_the_mapping_given_to_create_app_wins_over_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INCIDENTFLOW_SECRET_KEYS", "from-the-environment")
    monkeypatch.setenv("INCIDENTFLOW_ENGINE_CONCURRENCY", "3")
    app = create_app(
        {"TESTING": True, "INSTANCE_PATH": str(tmp_path), "SECRET_KEYS": "from-the-test"}
    )
    assert app.config["SECRET_KEYS"] == "from-the-test"
    assert app.config["ENGINE_CONCURRENCY"] == "3"
