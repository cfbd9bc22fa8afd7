"""Operator settings, read from ``app.config`` (app/config.py filled it from the
environment once, at start-up; tests pass their own values to ``create_app``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from flask import current_app

DEFAULT_WORKER_STALE_SECONDS = 60.0
ENGINE_BACKENDS = ("embedded", "celery")


def config_setting(config: Mapping[str, Any], name: str) -> Any:
    """``config[name]``; None when unset or empty."""
    value = config.get(name)
    return None if value == "" else value


def engine_overrides(
    config: Mapping[str, Any], fields: Iterable[tuple[str, Callable[[Any], Any]]]
) -> dict[str, Any]:
    """The ``ENGINE_<FIELD>`` settings that are set, converted by each field's type:
    what a settings dataclass's ``from_config`` passes to its constructor."""
    values: dict[str, Any] = {}
    for name, kind in fields:
        raw = config_setting(config, f"ENGINE_{name.upper()}")
        if raw is not None:
            values[name] = kind(raw)
    return values


def setting(name: str, default: str | None = None) -> str | None:
    """A setting of the app in context, as text."""
    value = config_setting(current_app.config, name)
    return default if value is None else str(value)


def engine_backend(config: Mapping[str, Any] | None = None) -> str:
    """``embedded`` (the default: ``flask worker run``) or ``celery``.

    Raises RuntimeError for any other value, naming the setting.
    """
    raw = config_setting(current_app.config if config is None else config, "ENGINE_BACKEND")
    backend = str(raw or "embedded").strip().lower()
    if backend not in ENGINE_BACKENDS:
        raise RuntimeError(
            f"ENGINE_BACKEND must be one of {', '.join(ENGINE_BACKENDS)}, not {backend!r}."
        )
    return backend


def worker_stale_seconds() -> float:
    """A worker whose last heartbeat is older than this is stale (not alive)."""
    raw = setting("WORKER_STALE_SECONDS")
    try:
        value = float(raw) if raw is not None else DEFAULT_WORKER_STALE_SECONDS
    except ValueError:
        return DEFAULT_WORKER_STALE_SECONDS
    return value if value > 0 else DEFAULT_WORKER_STALE_SECONDS
