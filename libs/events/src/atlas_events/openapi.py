"""The OpenAPI document every service publishes, made to say what the error handlers answer.

FastAPI documents its own validation error shape (`HTTPValidationError`), while the services
answer `{"error": "ValidationError", "detail": [{field, message, type}]}` (`errors.py`), and it
documents no 401/403 on endpoints behind a bearer token unless each endpoint lists them. Clients
generated from the document, and the fuzzing in `tests/fuzz`, rely on it being exact, so the kit
rewrites it once: the 422 schema is the project's, every operation behind the bearer scheme
documents 401 and 403 with the error body, and OpenAPI links say which answer feeds which
request (`add_links`): a created resource's id to the operations on it, a list's first item to
its detail, a resource's path to the other operations on the same resource.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from fastapi import FastAPI

from atlas_events.errors import ErrorBody

_FASTAPI_422 = "#/components/schemas/HTTPValidationError"
_VALIDATION_BODY = "ValidationErrorBody"
_ERROR_BODY = "ErrorBody"
_AUTH_STATUSES = {
    "401": "The bearer token is missing, expired, or not signed by the issuer",
    "403": "The token is valid but its roles or its space do not allow this",
}
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def _validation_body_schema() -> dict[str, Any]:
    return {
        "title": _VALIDATION_BODY,
        "description": "The request does not match the documented parameters or body.",
        "type": "object",
        "required": ["error", "detail"],
        "properties": {
            "error": {"type": "string", "title": "Error"},
            "detail": {
                "title": "Detail",
                "description": "One entry per problem; other 422 refusals carry their own detail.",
            },
        },
    }


def _error_body_ref() -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{_ERROR_BODY}"}


def _rewrite_refs(node: Any, old: str, new: str) -> None:
    if isinstance(node, dict):
        if node.get("$ref") == old:
            node["$ref"] = new
        for value in node.values():
            _rewrite_refs(value, old, new)
    elif isinstance(node, list):
        for value in node:
            _rewrite_refs(value, old, new)


def restrict_values(schema: dict[str, Any], values: Sequence[str]) -> None:
    """Make a string schema (or the string branch of an optional one, or the items of an array of
    strings) accept only `values`."""
    if schema.get("type") == "array" and isinstance(schema.get("items"), dict):
        restrict_values(schema["items"], values)
    elif schema.get("type") == "string":
        schema["enum"] = sorted(values)
    for branch in schema.get("anyOf", ()):
        restrict_values(branch, values)


def complete_openapi(document: dict[str, Any]) -> dict[str, Any]:
    """Rewrite FastAPI's document in place as described in the module docstring; return it."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    if _FASTAPI_422.rsplit("/", 1)[1] in schemas:
        schemas.pop("HTTPValidationError")
        schemas.pop("ValidationError", None)
        schemas[_VALIDATION_BODY] = _validation_body_schema()
        _rewrite_refs(document["paths"], _FASTAPI_422, f"#/components/schemas/{_VALIDATION_BODY}")
    schemas.setdefault(_ERROR_BODY, ErrorBody.model_json_schema())
    for _path, _method, operation in _operations(document):
        for parameter in operation.get("parameters", []):
            _drop_null(parameter.get("schema", {}))
    add_links(document)
    for item in document.get("paths", {}).values():
        for method in _METHODS:
            operation = item.get(method)
            if not operation or not operation.get("security"):
                continue
            responses = operation.setdefault("responses", {})
            for status, description in _AUTH_STATUSES.items():
                responses.setdefault(
                    status,
                    {
                        "description": description,
                        "content": {"application/json": {"schema": _error_body_ref()}},
                    },
                )
    return document


def _drop_null(schema: dict[str, Any]) -> None:
    """`str | None = None` makes FastAPI document a parameter as "string or null"; a query, path
    or header value cannot be null (absent is `required: false`), so keep the other branch."""
    branches = schema.get("anyOf")
    if branches and {"type": "null"} in branches:
        kept = [b for b in branches if b != {"type": "null"}]
        schema.pop("anyOf")
        if len(kept) == 1:
            schema.update(kept[0])
        else:
            schema["anyOf"] = kept


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _success_bodies(
    document: dict[str, Any], operation: dict[str, Any]
) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(response, resolved JSON schema) of each 2xx response of an operation."""
    for status, response in operation.get("responses", {}).items():
        schema = response.get("content", {}).get("application/json", {}).get("schema")
        if str(status).startswith("2") and schema:
            yield response, _resolve(document, schema)


def _path_parameters(path: str) -> list[str]:
    return re.findall(r"{([^}]+)}", path)


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document.get("paths", {}).items():
        for method in _METHODS:
            if method in item and "operationId" in item[method]:
                yield path, method, item[method]


def _field_for(parameter: str, fields: Mapping[str, Any], source: str, target: str) -> str | None:
    """Which body field of `source`'s answer gives `target`'s path `parameter`."""
    if parameter in fields:
        return parameter
    collection = source.rstrip("/") + "/{" + parameter + "}"
    if "id" in fields and parameter.endswith("_id") and target.startswith(collection):
        return "id"  # POST /v1/requests answers {"id": ...}; /v1/requests/{request_id}
    return None


def add_links(document: dict[str, Any]) -> None:
    """Add the OpenAPI links described in the module docstring (existing links are kept)."""
    operations = list(_operations(document))
    for source, method, operation in operations:
        source_parameters = set(_path_parameters(source))
        for response, schema in _success_bodies(document, operation):
            fields = schema.get("properties", {})
            items = fields.get("items", {})
            item_fields = _resolve(document, items.get("items", {})).get("properties", {})
            for target, _target_method, target_operation in operations:
                wanted = _path_parameters(target)
                if not wanted or target_operation is operation:
                    continue
                parameters: dict[str, str] = {}
                for parameter in wanted:
                    if parameter in source_parameters and target.startswith(source.split("{")[0]):
                        parameters[parameter] = f"$request.path.{parameter}"
                    elif method != "get" and (
                        name := _field_for(parameter, fields, source, target)
                    ):
                        parameters[parameter] = f"$response.body#/{name}"
                    elif (
                        method == "get"
                        and not source_parameters
                        and (name := _field_for(parameter, item_fields, source, target))
                    ):
                        parameters[parameter] = f"$response.body#/items/0/{name}"
                if len(parameters) == len(wanted):
                    links = response.setdefault("links", {})
                    links.setdefault(
                        target_operation["operationId"],
                        {"operationId": target_operation["operationId"], "parameters": parameters},
                    )


def install_openapi(
    app: FastAPI, refinements: Sequence[Callable[[dict[str, Any]], None]] = ()
) -> None:
    """Serve FastAPI's document of the app, completed (`complete_openapi`) and then refined by
    the service's own `refinements`, at /openapi.json (built once, then cached by FastAPI)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = complete_openapi(build())
            for refine in refinements:
                refine(document)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
