"""The embedded worker with SQLite's ``synchronous=NORMAL``: a proposed setting, measured.

``python -m bench.variant_worker`` does what ``flask worker run`` does (same app,
same settings from the environment, same loop), with one difference: every SQLite
connection gets ``PRAGMA synchronous=NORMAL``. In WAL mode (which the app turns
on) that skips the fsync at each commit; a crash of the process loses nothing,
a power cut or kernel crash can lose the last commits but never corrupts the
database. The suite runs it next to the shipped default so the effect of the
setting is a measured figure, not a guess. It is not the shipped configuration.
"""

from __future__ import annotations

import signal
from types import FrameType
from typing import Any

import sqlalchemy as sa

from app import create_app
from app.engine.worker import Worker, WorkerSettings
from app.extensions import db


def _normal(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def main() -> None:
    app = create_app()
    with app.app_context():
        if db.engine.dialect.name != "sqlite":
            raise SystemExit("the synchronous=NORMAL variant is for SQLite only")
        sa.event.listen(db.engine, "connect", _normal)
        db.engine.dispose()
    worker = Worker(app, settings=WorkerSettings.from_config(app.config))

    def stop(_signum: int, _frame: FrameType | None) -> None:
        worker.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    worker.run_forever()


if __name__ == "__main__":
    main()
