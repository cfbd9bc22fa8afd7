"""Operator settings: a config key, else ``INCIDENTFLOW_<KEY>`` from the environment.

The environment fallback lets these work whether or not ``app.config`` carries
the key (tests set config; deployments usually set the environment).
"""

from __future__ import annotations

import os

from flask import current_app

DEFAULT_WORKER_STALE_SECONDS = 60.0


def setting(name: str, default: str | None = None) -> str | None:
    value = current_app.config.get(name)
    if value is None or value == "":
        value = os.environ.get(f"INCIDENTFLOW_{name}")
    if value is None or value == "":
        return default
    return str(value)


def engine_backend() -> str:
    """``embedded`` (the default) or ``celery``."""
    return (setting("ENGINE_BACKEND", "embedded") or "embedded").strip().lower()


def worker_stale_seconds() -> float:
    """A worker whose last heartbeat is older than this is stale (not alive)."""
    raw = setting("WORKER_STALE_SECONDS")
    try:
        value = float(raw) if raw is not None else DEFAULT_WORKER_STALE_SECONDS
    except ValueError:
        return DEFAULT_WORKER_STALE_SECONDS
    return value if value > 0 else DEFAULT_WORKER_STALE_SECONDS
