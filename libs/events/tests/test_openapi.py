"""The kit's OpenAPI document and error answers say the same thing (found by the API fuzzing)."""

from __future__ import annotations

import re
from typing import Annotated

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Query
from pydantic import BaseModel, StringConstraints, TypeAdapter, ValidationError

from atlas_events.auth import Credentials
from atlas_events.errors import install_error_handlers
from atlas_events.openapi import install_openapi, restrict_values
from atlas_events.schemas._base import EMAIL_PATTERN


class Thing(BaseModel):
    id: str
    name: str


class Things(BaseModel):
    items: list[Thing]


def _app() -> FastAPI:
    router = APIRouter()

    @router.post("/v1/things", status_code=201)
    async def create(body: Thing, _: Credentials) -> Thing:
        return body

    @router.get("/v1/things")
    async def listing(_: Credentials, name: Annotated[str | None, Query()] = None) -> Things:
        return Things(items=[])

    @router.get("/v1/things/count")
    async def count(_: Credentials) -> int:
        return 0

    @router.get("/v1/things/{thing_id}")
    async def read(thing_id: str, _: Credentials) -> Thing:
        return Thing(id=thing_id, name="x")

    @router.delete("/v1/things/{thing_id}", status_code=204, dependencies=[Depends(lambda: None)])
    async def delete(thing_id: str) -> None:
        return None

    app = FastAPI()
    install_error_handlers(app)
    install_openapi(app, [lambda document: document["info"].update(title="refined")])
    app.include_router(router)
    return app


@pytest.fixture
async def client() -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=_app())
    return httpx.AsyncClient(transport=transport, base_url="http://app")


async def test_the_422_documented_is_the_one_answered(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    response_422 = document["paths"]["/v1/things"]["post"]["responses"]["422"]
    ref = response_422["content"]["application/json"]["schema"]["$ref"]
    assert ref == "#/components/schemas/ValidationErrorBody"
    answer = await client.post("/v1/things", json={"id": "a"})
    assert answer.status_code == 422
    assert set(answer.json()) == set(schemas["ValidationErrorBody"]["required"])
    assert document["info"]["title"] == "refined"


async def test_a_body_that_is_not_json_is_the_documented_422(client: httpx.AsyncClient) -> None:
    # FastAPI answered an undocumented 400 "There was an error parsing the body" to non-UTF-8.
    answer = await client.post(
        "/v1/things", content=b"\xff\xfe\x00", headers={"content-type": "application/json"}
    )
    assert answer.status_code == 422
    assert answer.json() == {
        "error": "ValidationError",
        "detail": [{"field": "", "message": "the body is not valid JSON", "type": "json_invalid"}],
    }


async def test_operations_behind_the_bearer_scheme_document_401_and_403(
    client: httpx.AsyncClient,
) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    for method in ("get", "post"):
        assert {"401", "403"} <= set(paths["/v1/things"][method]["responses"])
    assert "401" not in paths["/v1/things/{thing_id}"]["delete"]["responses"]  # no bearer


async def test_a_405_names_every_method_of_the_path(client: httpx.AsyncClient) -> None:
    # Starlette named only the methods of the first route matching the path (GET, not POST).
    answer = await client.request("PUT", "/v1/things")
    assert answer.status_code == 405
    assert answer.headers["allow"] == "GET, POST"
    assert answer.json()["error"] == "MethodNotAllowed"
    detail = await client.request("PATCH", "/v1/things/a")
    assert detail.headers["allow"] == "DELETE, GET"
    literal = await client.request("PATCH", "/v1/things/count")  # not /v1/things/{thing_id}
    assert literal.headers["allow"] == "GET"


async def test_query_parameters_are_never_null_and_links_are_inferred(
    client: httpx.AsyncClient,
) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    [name] = paths["/v1/things"]["get"]["parameters"]
    assert name["schema"] == {"type": "string", "title": "Name"}
    created = paths["/v1/things"]["post"]["responses"]["201"]["links"]
    assert {link["parameters"]["thing_id"] for link in created.values()} == {"$response.body#/id"}
    listed = paths["/v1/things"]["get"]["responses"]["200"]["links"]
    assert {link["parameters"]["thing_id"] for link in listed.values()} == {
        "$response.body#/items/0/id"
    }
    read = paths["/v1/things/{thing_id}"]["get"]["responses"]["200"]["links"]
    assert [link["parameters"] for link in read.values()] == [
        {"thing_id": "$request.path.thing_id"}
    ]


def test_restrict_values_reaches_optional_strings_and_arrays() -> None:
    optional = {"anyOf": [{"type": "string"}, {"type": "null"}]}
    restrict_values(optional, ["b", "a"])
    assert optional["anyOf"][0] == {"type": "string", "enum": ["a", "b"]}
    array = {"type": "array", "items": {"type": "string"}}
    restrict_values(array, ["x"])
    assert array["items"]["enum"] == ["x"]


@pytest.mark.parametrize(
    ("address", "valid"),
    [
        ("camille.martin@example.fr", True),
        ("élodie@mairie-évry.fr", True),
        ("a b@example.fr", False),
        ("a\x85b@example.fr", False),  # NEL: a space to Python's \s, not to ECMA's
        ("a\x1cb@example.fr", False),  # a separator to Python's \s, not to ECMA's
        ("a\u00a0b@example.fr", False),
        ("nobody@localhost", False),
    ],
)
def test_the_email_pattern_means_the_same_to_every_regex_engine(address: str, valid: bool) -> None:
    # Found by the API fuzzing: `[^@\s]` let the fuzzer (ECMA regex) generate addresses that
    # pydantic (Rust regex, Unicode \s) refused, so a documented-valid body got a 422.
    assert "\\s" not in EMAIL_PATTERN
    assert bool(re.match(EMAIL_PATTERN, address)) is valid  # Python's engine
    adapter = TypeAdapter(Annotated[str, StringConstraints(pattern=EMAIL_PATTERN)])  # Rust's
    try:
        adapter.validate_python(address)
        accepted = True
    except ValidationError:
        accepted = False
    assert accepted is valid
