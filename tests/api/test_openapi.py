"""The OpenAPI document: valid 3.1, complete, and built from the models that validate."""

from __future__ import annotations

import re

from openapi_spec_validator import OpenAPIV31SpecValidator, validate

from app.api.errors import ERROR_CODES
from app.incidents.schemas import IncidentCreate, IncidentUpdate

PREFIX = "/api/v1"


def test_the_document_is_valid_openapi_31_and_needs_no_token(client, openapi_document) -> None:
    assert openapi_document["openapi"].startswith("3.1.")
    validate(openapi_document, cls=OpenAPIV31SpecValidator)
    assert client.get(f"{PREFIX}/openapi.json").headers["Content-Type"] == "application/json"


def documented_operations(document) -> set[tuple[str, str]]:
    server = document["servers"][0]["url"]
    return {
        (method.upper(), server + path)
        for path, operations in document["paths"].items()
        for method in operations
    }


def test_every_api_route_is_documented_and_nothing_else(app, openapi_document) -> None:
    routes = {
        (method, re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule))
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith(f"{PREFIX}/")
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    # 30, replay preview and start, bulk count and start, and the backtest of a version
    # (GET) and of a draft (POST)
    assert len(routes) == 36
    assert documented_operations(openapi_document) == routes


def test_every_path_parameter_is_declared(openapi_document) -> None:
    for path, operations in openapi_document["paths"].items():
        names = set(re.findall(r"{([^}]+)}", path))
        for operation in operations.values():
            declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert declared == names, path


def test_request_bodies_are_the_validating_models(openapi_document) -> None:
    schemas = openapi_document["components"]["schemas"]
    paths = openapi_document["paths"]
    create = paths["/incidents"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    update = paths["/incidents/{id}"]["patch"]["requestBody"]["content"]["application/json"]
    assert create == {"$ref": "#/components/schemas/IncidentCreate"}
    assert update["schema"] == {"$ref": "#/components/schemas/IncidentUpdate"}
    for model in (IncidentCreate, IncidentUpdate):
        expected = model.model_json_schema(
            by_alias=True, ref_template="#/components/schemas/{model}"
        )
        hoisted = expected.pop("$defs")
        assert schemas[model.__name__] == expected
        assert all(schemas[name] == schema for name, schema in hoisted.items())
    assert schemas["IncidentCreate"]["additionalProperties"] is False
    assert "teamId" in schemas["IncidentCreate"]["properties"]


def test_list_filters_are_query_parameters(openapi_document) -> None:
    parameters = {
        p["name"]: p for p in openapi_document["paths"]["/incidents"]["get"]["parameters"]
    }
    assert set(parameters) == {"team", "status", "priority", "service", "q", "page", "perPage"}
    assert {p["in"] for p in parameters.values()} == {"query"}
    assert parameters["perPage"]["schema"]["maximum"] == 100
    assert parameters["status"]["schema"] == {"$ref": "#/components/schemas/IncidentStatus"}


def test_security_is_bearer_except_for_the_document(openapi_document) -> None:
    scheme = openapi_document["components"]["securitySchemes"]["bearerAuth"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    assert openapi_document["security"] == [{"bearerAuth": []}]
    for path, operations in openapi_document["paths"].items():
        for operation in operations.values():
            public = path == "/openapi.json"
            assert ("security" in operation) == public
            assert ("401" in operation["responses"]) != public


def test_errors_are_documented_with_the_error_schema(openapi_document) -> None:
    responses = openapi_document["components"]["responses"]
    for response in responses.values():
        schema = response["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/ErrorResponse"}
    post = openapi_document["paths"]["/incidents"]["post"]["responses"]
    assert {"201", "400", "401", "403", "413", "415", "422"} <= set(post)
    assert "Location" in post["201"]["headers"]
    resolve = openapi_document["paths"]["/incidents/{id}/resolve"]["post"]["responses"]
    assert {"200", "401", "404", "409"} <= set(resolve)
    description = openapi_document["info"]["description"]
    assert all(f"`{code}`" in description for code in ERROR_CODES)
