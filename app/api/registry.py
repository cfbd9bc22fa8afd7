"""The one table of API operations: the routes are registered from it, the OpenAPI
document is generated from it, and the auth hook reads which ones are public.

Declaring a view with ``@routes.operation(...)`` is the only way to add an API
route, so the document cannot forget one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from flask import Blueprint
from pydantic import BaseModel
from pydantic.alias_generators import to_camel

View = TypeVar("View", bound=Callable[..., Any])

_RULE_VARIABLE = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


@dataclass(frozen=True)
class Operation:
    method: str
    rule: str  # Flask rule relative to the blueprint, e.g. "/incidents/<id>"
    endpoint: str
    summary: str
    description: str = ""
    tag: str = "Incidents"
    success_status: int = 200
    success_description: str = "OK"
    response_model: type[BaseModel] | None = None
    success_headers: Mapping[str, str] = field(default_factory=dict)  # name -> description
    body_model: type[BaseModel] | None = None
    query_model: type[BaseModel] | None = None
    extra_errors: tuple[int, ...] = ()
    public: bool = False
    # Takes an ``Idempotency-Key`` header (see ``app.api.idempotency``).
    idempotent: bool = False

    @property
    def operation_id(self) -> str:
        return to_camel(self.endpoint)

    @property
    def path_parameters(self) -> list[str]:
        return _RULE_VARIABLE.findall(self.rule)

    @property
    def openapi_path(self) -> str:
        """``/incidents/<id>`` -> ``/incidents/{id}``."""
        return openapi_path(self.rule)

    @property
    def error_statuses(self) -> list[int]:
        """What can go wrong, derived from what the operation takes, plus its own."""
        statuses = set(self.extra_errors)
        if not self.public:
            statuses.update({401, 503})  # 503: the database cannot be reached
        if self.path_parameters:
            statuses.add(404)
        if self.body_model is not None:
            statuses.update({400, 413, 415, 422})
        if self.query_model is not None or self.idempotent:
            statuses.add(422)
        return sorted(statuses)


def openapi_path(rule: str) -> str:
    return _RULE_VARIABLE.sub(r"{\1}", rule)


class ApiRoutes:
    """Registers views on a blueprint and remembers each one's metadata."""

    def __init__(self, blueprint: Blueprint) -> None:
        self.blueprint = blueprint
        self.operations: list[Operation] = []

    def operation(self, method: str, rule: str, **meta: Any) -> Callable[[View], View]:
        def register(view: View) -> View:
            self.add(view, method, rule, endpoint=view.__name__, **meta)
            return view

        return register

    def add(self, view: Callable[..., Any], method: str, rule: str, **meta: Any) -> None:
        operation = Operation(method=method.upper(), rule=rule, **meta)
        if self.find(operation.endpoint) is not None:
            raise ValueError(f"API endpoint {operation.endpoint!r} is declared twice")
        self.operations.append(operation)
        self.blueprint.add_url_rule(
            rule, endpoint=operation.endpoint, view_func=view, methods=[operation.method]
        )

    def find(self, endpoint: str) -> Operation | None:
        return next((op for op in self.operations if op.endpoint == endpoint), None)

    def is_public(self, endpoint: str | None) -> bool:
        """Whether a blueprint endpoint ("api.openapi" or "openapi") needs no token."""
        if endpoint is None:
            return False
        operation = self.find(endpoint.rpartition(".")[2])
        return operation is not None and operation.public
