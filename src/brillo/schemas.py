"""Build an OpenAPI schema from the docstrings of your endpoints.

Put the OpenAPI *operation* for an endpoint in its docstring, as YAML after a ``---`` line::

    async def list_users(request):
        \"\"\"List all users.
        ---
        responses:
          200:
            description: A list of users.
        \"\"\"

Then serve ``SchemaGenerator({...}).OpenAPIResponse(request)`` from a route.
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from brillo.requests import Request
from brillo.responses import Response
from brillo.routing import BaseRoute, Host, Mount, Route

yaml: Any
try:
    yaml = importlib.import_module("yaml")
except ImportError:  # pragma: no cover - exercised only without the extra
    yaml = None

__all__ = ["BaseSchemaGenerator", "EndpointInfo", "OpenAPIResponse", "SchemaGenerator"]

_HTTP_METHODS = ("get", "post", "put", "patch", "delete", "options", "query")
_OPENAPI_VERSION = re.compile(r"\s*(\d+)\.(\d+)")
_CONVERTOR = re.compile(r":\w+}")
_SEPARATOR = re.compile(r"^[ \t]*---[ \t]*$", re.MULTILINE)


def _require_yaml() -> Any:
    if yaml is None:  # pragma: no cover
        raise ImportError("brillo.schemas needs PyYAML: pip install pyyaml (or brillo[full]).")
    return yaml


class OpenAPIResponse(Response):
    """Renders ``content`` (a dict) as YAML, served as ``application/vnd.oai.openapi``."""

    media_type = "application/vnd.oai.openapi"

    def render(self, content: Any) -> bytes:
        """Dump ``content`` as block-style YAML."""
        if not isinstance(content, dict):
            raise TypeError(f"OpenAPIResponse content must be a dict, not {type(content).__name__}")
        dumped: str = _require_yaml().dump(content, default_flow_style=False)
        return dumped.encode("utf-8")


class EndpointInfo(NamedTuple):
    """One documented operation: its path (without convertors), lower-case method and callable."""

    path: str
    http_method: str
    func: Callable[..., Any]


class BaseSchemaGenerator:
    """Walks routes and docstrings; subclass it and implement :meth:`get_schema`."""

    def get_schema(self, routes: list[BaseRoute]) -> dict[str, Any]:
        """Return the schema for ``routes``."""
        raise NotImplementedError()  # pragma: no cover

    def get_endpoints(self, routes: Sequence[BaseRoute]) -> list[EndpointInfo]:
        """Every operation reachable through ``routes``.

        Descends into ``Mount`` (prefixing its path) and ``Host`` routes, skips routes with
        ``include_in_schema=False`` and non-HTTP routes, lists one entry per method of function
        endpoints (``HEAD`` excluded, ``GET`` when no methods are given) and one per defined
        handler method (``get``, ``post``, ..., ``query``) of ``HTTPEndpoint`` classes.
        """
        found: list[EndpointInfo] = []
        for route in routes:
            if isinstance(route, Mount | Host):
                prefix = self._remove_converter(route.path) if isinstance(route, Mount) else ""
                for sub in self.get_endpoints(route.routes or []):
                    found.append(EndpointInfo(prefix + sub.path, sub.http_method, sub.func))
                continue
            if not isinstance(route, Route) or not route.include_in_schema:
                continue
            path = self._remove_converter(route.path)
            endpoint = route.endpoint
            if inspect.isfunction(endpoint) or inspect.ismethod(endpoint):
                for method in sorted(route.methods or {"GET"}):
                    if method != "HEAD":
                        found.append(EndpointInfo(path, method.lower(), endpoint))
            else:
                for method in _HTTP_METHODS:
                    handler = getattr(endpoint, method, None)
                    if handler is not None:
                        found.append(EndpointInfo(path, method, handler))
        return found

    def _remove_converter(self, path: str) -> str:
        """``/users/{id:int}`` -> ``/users/{id}``."""
        return _CONVERTOR.sub("}", path)

    def parse_docstring(self, func_or_method: Callable[..., Any]) -> dict[str, Any]:
        """The YAML mapping after the last ``---`` line of the docstring (``{}`` if none).

        Without a ``---`` line the whole docstring is tried. Invalid YAML raises ``ValueError``
        naming the function.
        """
        docstring = func_or_method.__doc__
        if not docstring:
            return {}
        text = _SEPARATOR.split(inspect.cleandoc(docstring))[-1]
        try:
            parsed = _require_yaml().safe_load(text)
        except Exception as exc:
            name = getattr(func_or_method, "__qualname__", repr(func_or_method))
            raise ValueError(f"Invalid YAML in the docstring of {name}: {exc}") from exc
        return parsed if isinstance(parsed, dict) else {}

    def OpenAPIResponse(self, request: Request) -> Response:
        """A response with the schema of ``request.app``'s routes, as YAML."""
        routes = request.app.routes
        return OpenAPIResponse(self.get_schema(routes=routes))


def _openapi_has_query(version: object) -> bool:
    """Whether OpenAPI ``version`` (e.g. ``"3.2.0"``) has the ``query`` operation (3.2 on)."""
    match = _OPENAPI_VERSION.match(version) if isinstance(version, str) else None
    return match is not None and (int(match[1]), int(match[2])) >= (3, 2)


class SchemaGenerator(BaseSchemaGenerator):
    """Merge documented operations into ``base_schema`` under ``paths``.

    ``base_schema`` holds the rest of the document, e.g.
    ``{"openapi": "3.2.0", "info": {"title": "API", "version": "1.0"}}``; it is not modified.
    ``QUERY`` operations are listed (as ``query``) only when ``base_schema["openapi"]`` is 3.2
    or later: earlier versions have no such operation, and a validator would reject it.
    """

    def __init__(self, base_schema: dict[str, Any]) -> None:
        self.base_schema = base_schema

    def get_schema(self, routes: list[BaseRoute]) -> dict[str, Any]:
        """``base_schema`` plus a ``paths`` entry for each documented endpoint."""
        schema = dict(self.base_schema)
        paths: dict[str, Any] = {
            path: dict(operations) for path, operations in schema.get("paths", {}).items()
        }
        schema["paths"] = paths
        with_query = _openapi_has_query(schema.get("openapi"))
        for endpoint in self.get_endpoints(routes):
            if endpoint.http_method == "query" and not with_query:
                continue
            operation = self.parse_docstring(endpoint.func)
            if operation:
                paths.setdefault(endpoint.path, {})[endpoint.http_method] = operation
        return schema
