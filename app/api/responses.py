"""The JSON API's answers: a model as JSON, no content, and one page of a list."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar

import sqlalchemy as sa
from flask import current_app
from pydantic import BaseModel
from werkzeug.wrappers import Response

from app.api.schemas import MAX_PER_PAGE
from app.extensions import db

Envelope = TypeVar("Envelope", bound=BaseModel)


class PageRequest(Protocol):
    """What a list query asks for: the page, from 1, and its size."""

    @property
    def page(self) -> int: ...

    @property
    def per_page(self) -> int: ...


def json_response(
    model: BaseModel, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """The model as JSON, with the field names the API documents (its aliases)."""
    return current_app.response_class(
        model.model_dump_json(by_alias=True),
        status=status,
        headers=headers,
        mimetype="application/json",
    )


def no_content() -> Response:
    return current_app.response_class(status=204)


def page_of(
    query: sa.Select[Any],
    paging: PageRequest,
    envelope: type[Envelope],
    item_out: Callable[[Any], BaseModel],
) -> Envelope:
    """The page the query string asks for, each row turned into its output model.

    A page past the end is empty, not an error: ``total`` and ``pages`` say where it ends.
    """
    page = db.paginate(
        query,
        page=paging.page,
        per_page=paging.per_page,
        max_per_page=MAX_PER_PAGE,
        error_out=False,
    )
    return envelope(
        items=[item_out(row) for row in page.items],
        page=paging.page,
        per_page=paging.per_page,
        total=page.total or 0,
        pages=page.pages,
    )
