"""Celery entry point: ``celery -A celery_worker:celery worker`` and ``... beat``, run from
the project directory (as ``gunicorn wsgi:app`` is). The configuration is
``app.engine.celery_app.make_celery``."""

from app import create_app
from app.engine.celery_app import make_celery
from app.engine.tasks import run_process_workers

# Not named ``app``: ``celery -A celery_worker`` would take a module's ``app`` for its own.
flask_app = create_app()
celery = make_celery(flask_app)
run_process_workers(flask_app)
