from __future__ import annotations

from typing import Any

import pytest
import yaml

from brillo.requests import Request
from brillo.responses import Response
from brillo.routing import Host, Mount, Route, Router, WebSocketRoute
from brillo.schemas import EndpointInfo, OpenAPIResponse, SchemaGenerator
from brillo.websockets import WebSocket
from tests.support.asgi import call_http, http_scope

schemas = SchemaGenerator({"openapi": "3.0.0", "info": {"title": "Example API", "version": "1.0"}})


def ws(session: WebSocket) -> None:
    """websocket: not documented"""


def list_users(request: Request) -> None:
    """
    responses:
      200:
        description: A list of users.
        examples:
          [{"username": "tom"}, {"username": "lucy"}]
    """


def create_user(request: Request) -> None:
    """Create a user.

    Long prose that is not YAML: it stays out of the schema.
    ---
    responses:
      200:
        description: A user.
        examples:
          {"username": "tom"}
    """


class OrganisationsEndpoint:
    def get(self, request: Request) -> None:
        """
        ---
        responses:
          200:
            description: A list of organisations.
        """

    def post(self, request: Request) -> None:
        """
        responses:
          200:
            description: An organisation.
        """


def regular_docstring_and_schema(request: Request) -> None:
    """
    This a regular docstring example (not included in schema)

    ---

    responses:
      200:
        description: This is included in the schema.
    """


def regular_docstring(request: Request) -> None:
    """
    This a regular docstring example (not included in schema)
    """


def no_docstring(request: Request) -> None:
    pass


def subapp_endpoint(request: Request) -> None:
    """
    responses:
      200:
        description: This endpoint is part of a subapp.
    """


def hidden(request: Request) -> None:
    """
    responses:
      200:
        description: hidden
    """


async def schema(request: Request) -> Response:
    return schemas.OpenAPIResponse(request=request)


subapp = Router(routes=[Route("/subapp-endpoint", endpoint=subapp_endpoint)])

router = Router(
    routes=[
        WebSocketRoute("/ws", endpoint=ws),
        Route("/users/{id:int}", endpoint=list_users, methods=["GET", "HEAD"]),
        Route("/users", endpoint=list_users, methods=["GET", "HEAD"]),
        Route("/users", endpoint=create_user, methods=["POST"]),
        Route("/orgs", endpoint=OrganisationsEndpoint),
        Route("/regular-docstring-and-schema", endpoint=regular_docstring_and_schema),
        Route("/regular-docstring", endpoint=regular_docstring),
        Route("/no-docstring", endpoint=no_docstring),
        Route("/hidden", endpoint=hidden, include_in_schema=False),
        Route("/schema", endpoint=schema, methods=["GET"], include_in_schema=False),
        Mount("/subapp/{version:int}", subapp),
        Host("api.example.com", Router(routes=[Route("/on-host", endpoint=subapp_endpoint)])),
    ]
)

EXPECTED: dict[str, Any] = {
    "openapi": "3.0.0",
    "info": {"title": "Example API", "version": "1.0"},
    "paths": {
        "/orgs": {
            "get": {"responses": {200: {"description": "A list of organisations."}}},
            "post": {"responses": {200: {"description": "An organisation."}}},
        },
        "/regular-docstring-and-schema": {
            "get": {"responses": {200: {"description": "This is included in the schema."}}}
        },
        "/subapp/{version}/subapp-endpoint": {
            "get": {"responses": {200: {"description": "This endpoint is part of a subapp."}}}
        },
        "/on-host": {
            "get": {"responses": {200: {"description": "This endpoint is part of a subapp."}}}
        },
        "/users": {
            "get": {
                "responses": {
                    200: {
                        "description": "A list of users.",
                        "examples": [{"username": "tom"}, {"username": "lucy"}],
                    }
                }
            },
            "post": {
                "responses": {200: {"description": "A user.", "examples": {"username": "tom"}}}
            },
        },
        "/users/{id}": {
            "get": {
                "responses": {
                    200: {
                        "description": "A list of users.",
                        "examples": [{"username": "tom"}, {"username": "lucy"}],
                    }
                }
            }
        },
    },
}


def test_schema_generation() -> None:
    assert schemas.get_schema(routes=router.routes) == EXPECTED


def test_base_schema_not_mutated_and_existing_paths_kept() -> None:
    base = {"openapi": "3.0.0", "paths": {"/manual": {"get": {"summary": "manual"}}}}
    generated = SchemaGenerator(base).get_schema(router.routes)
    assert generated["paths"]["/manual"] == {"get": {"summary": "manual"}}
    assert "/users" in generated["paths"]
    assert base == {"openapi": "3.0.0", "paths": {"/manual": {"get": {"summary": "manual"}}}}


def test_get_endpoints() -> None:
    endpoints = schemas.get_endpoints(router.routes)
    assert EndpointInfo("/users/{id}", "get", list_users) in endpoints
    assert EndpointInfo("/users", "post", create_user) in endpoints
    assert not any(e.http_method == "head" for e in endpoints)
    assert not any(e.path in ("/hidden", "/schema", "/ws") for e in endpoints)
    org = [e for e in endpoints if e.path == "/orgs"]
    assert [e.http_method for e in org] == ["get", "post"]


def test_invalid_yaml_names_the_function() -> None:
    def broken(request: Request) -> None:
        """Summary.
        ---
        responses: [unclosed
        """

    with pytest.raises(ValueError, match="broken"):
        schemas.parse_docstring(broken)


@pytest.mark.anyio
async def test_openapi_response_over_asgi() -> None:
    scope = http_scope("/schema")
    scope["app"] = router
    result = await call_http(router, scope)
    assert result.status == 200
    assert result.header("content-type") == "application/vnd.oai.openapi"
    assert yaml.safe_load(result.body) == EXPECTED
    assert result.body.startswith(b"info:\n  title: Example API\n")


def test_openapi_response_requires_dict() -> None:
    with pytest.raises(TypeError, match="dict"):
        OpenAPIResponse(["not", "a", "dict"])


def search_users(request: Request) -> None:
    """
    responses:
      200:
        description: Users matching the query in the body.
    """


class SearchEndpoint:
    def query(self, request: Request) -> None:
        """
        responses:
          200:
            description: Search results.
        """


query_router = Router(
    routes=[
        Route("/users", list_users, methods=["GET"]),
        Route("/users", search_users, methods=["QUERY"]),
        Route("/search", SearchEndpoint),
    ]
)


@pytest.mark.parametrize(
    ("version", "listed"),
    [
        ("3.2.0", True),
        ("3.2", True),
        ("3.10.1", True),
        ("4.0.0", True),
        ("3.1.2", False),
        ("3.0.0", False),
        ("2.0", False),
        (None, False),
    ],
)
def test_query_operations_need_openapi_3_2(version: str | None, listed: bool) -> None:
    base: dict[str, Any] = {"info": {"title": "API", "version": "1"}}
    if version is not None:
        base["openapi"] = version
    paths = SchemaGenerator(base).get_schema(query_router.routes)["paths"]
    assert ("query" in paths.get("/users", {})) is listed
    assert ("query" in paths.get("/search", {})) is listed
    assert "get" in paths["/users"]
    if listed:
        assert paths["/search"]["query"] == {"responses": {200: {"description": "Search results."}}}


def test_get_endpoints_lists_query_operations() -> None:
    endpoints = schemas.get_endpoints(query_router.routes)
    assert EndpointInfo("/users", "query", search_users) in endpoints
    assert [e.http_method for e in endpoints if e.path == "/search"] == ["query"]
